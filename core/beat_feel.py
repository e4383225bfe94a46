"""Whether a song's notes split its beat in halves or in thirds: the snap a new map gets.

A shuffle, swing or triplet feel puts its notes on the 1/3 ticks of the beat, which the
editor's default 1/4 snap does not offer: a map generated at 1/4 can reach its beats and
nothing between them (synthetic shuffles: 50% of their Insane maps' objects within 10 ms of a
1/4 tick). So does a tempo estimated at 2/3 of the true one (core.tempo's x2/3 error, in fast
3/4 and 6/8 songs), whose true beats and eighth notes fall on its 1/3 and 1/6 ticks. The onset
strength at the estimated beats' thirds against their halves tells the two feels apart.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.ndimage import maximum_filter1d

from core.audio import FRAME_MS
from core.beatmap.model import Beatmap, TimingPoint
from core.beatmap.ticks import (
    DEFAULT_BEAT_DIVISOR,
    DIVISORS,
    FASTEST_TICK_MS,
    TickGrid,
    divisor_for_tempo,
)
from core.tempo import onset_envelope, onset_frame

ALIGN_MS = 35.0  # how far from the red lines' beats their onsets are looked for
SNAP_EVIDENCE = 16  # objects a map needs before the snap its objects use is read from them
SNAP_COVERAGE = 0.95  # the share of them a snap must hold (a few stray objects aside)
SNAP_TOLERANCE_MS = 2.0  # stable writes a tick's time truncated to the ms


def snap_divisor(mel: np.ndarray | torch.Tensor, points: list[TimingPoint],
                 estimated: bool = True) -> int:
    """The beat snap divisor for timing `points` (uninherited, in beatmap time) of a song with
    log-mel `mel`: 6 (1/2, 1/3 and 1/6 ticks) or 3 where its notes fall on thirds of the beat
    (3 where 1/6 ticks would come faster than FASTEST_TICK_MS), else, for `estimated` timing,
    1/4 or 1/2 by the tempo (core.beatmap.ticks.divisor_for_tempo: a fast estimate is most
    often a doubled one), and 1/4 for the song's own."""
    red = [p for p in points if p.uninherited and p.beat_length > 0]
    if not red:
        raise ValueError("no uninherited timing point to snap to")
    beat = red[0].beat_length
    if isinstance(mel, torch.Tensor):
        mel = mel.detach().float().cpu().numpy()
    mel = np.asarray(mel, np.float32)
    if not ternary(onset_envelope(mel), red):
        return divisor_for_tempo(beat) if estimated else DEFAULT_BEAT_DIVISOR
    return 6 if beat / 6 >= FASTEST_TICK_MS else 3


def ternary(env: np.ndarray, red: list[TimingPoint]) -> bool:
    """Whether the onsets at the beats' thirds outweigh those at their halves, over every red
    line's section (onset strength per frame `env`, core.tempo.onset_envelope). Measured from
    where the onsets on the beats are, up to ALIGN_MS from the lines: hand-made timing can sit
    40-50 ms before its onsets, 20-30 ms off LATENCY_MS (welcome, circles)."""
    red = [p for p in red if p.uninherited and p.beat_length > 0]
    peak = maximum_filter1d(env, 3)  # a frame either side: 5 ms frames, rounded tick times
    at = {f: beat_frames(red, len(env), f) for f in (0.0, 1 / 3, 2 / 3, 1 / 2)}

    def strength(fractions: tuple[float, ...], shift: int) -> float:
        return _mean_at(peak, np.concatenate([at[f] for f in fractions]) + shift)

    shift = onset_shift(peak, at[0.0], round(ALIGN_MS / FRAME_MS))
    return strength((1 / 3, 2 / 3), shift) > strength((1 / 2,), shift)


def beat_frames(red: list[TimingPoint], frames: int, fraction: float = 0.0) -> np.ndarray:
    """The onset-envelope frames (core.tempo.onset_frame, of an envelope `frames` long) of
    each red line's beats, moved `fraction` of a beat on, up to the next red line."""
    out = []
    for i, point in enumerate(red):
        end = red[i + 1].time if i + 1 < len(red) else frames * FRAME_MS
        beats = np.arange(max(math.ceil(-point.time / point.beat_length), 0),
                          max(math.ceil((end - point.time) / point.beat_length), 0))
        ms = point.time + (beats + fraction) * point.beat_length
        out.append(np.round(onset_frame(ms)).astype(int))
    return np.concatenate(out) if out else np.zeros(0, dtype=int)


def onset_shift(env: np.ndarray, beats: np.ndarray, reach: int) -> int:
    """The shift (frames, within `reach`) that puts `beats` on the strongest onsets of `env`,
    the nearer of equals: hand-made timing can sit 40-50 ms before its onsets (welcome,
    circles), 20-30 ms off LATENCY_MS."""
    return max(range(-reach, reach + 1), key=lambda s: (_mean_at(env, beats + s), -abs(s)))


def _mean_at(env: np.ndarray, frames: np.ndarray) -> float:
    inside = frames[(frames >= 0) & (frames < len(env))]
    return float(env[inside].mean()) if len(inside) else 0.0


def objects_divisor(beatmap: Beatmap) -> int | None:
    """The coarsest editor snap (1/1, 1/2, 1/3, ... 1/16) whose ticks hold SNAP_COVERAGE of
    the map's objects, each on its own red line's ticks; None for a map of fewer than
    SNAP_EVIDENCE objects, with no red line, or off the ticks (unsnapped), which says
    nothing of its snap."""
    grid = TickGrid(beatmap.timing_points)
    times = [o.time for o in beatmap.hit_objects]
    if not grid or len(times) < SNAP_EVIDENCE:
        return None
    for divisor in sorted(DIVISORS):
        ticks = TickGrid(grid.points, (divisor,))
        held = sum(ticks.snap(t, SNAP_TOLERANCE_MS) is not None for t in times)
        if held >= SNAP_COVERAGE * len(times):
            return divisor
    return None


def joint_divisor(*divisors: int | None) -> int:
    """The coarsest editor snap offering the ticks of every one of `divisors` (1/4 and 1/3:
    1/12); the first of them where no editor snap does (1/3 and 1/16: 1/3, the audio's or
    the mapper's own before what objects use)."""
    given = [d for d in divisors if d]
    if not given:
        raise ValueError("no divisor to join")
    for divisor in sorted(DIVISORS):
        if all(divisor % d == 0 for d in given):
            return divisor
    return given[0]


def new_map_divisor(points: list[TimingPoint], mel: np.ndarray | torch.Tensor,
                    sibling: Beatmap | None = None, own_timing: bool = False) -> int:
    """The snap a new difficulty gets on timing `points`: what the audio asks for
    (snap_divisor; on the song's `own_timing`, 1/4 where its notes are not in thirds, however
    fast), joined with the ticks a `sibling` on that same timing has its objects on.
    No editor's BeatDivisor is asked: it is where the editor was left on another difficulty,
    or on a map of timing alone (triangles.osz: 1/3, on a song of halves, whose maps then had
    only whole beats and thirds)."""
    heard = snap_divisor(mel, points, estimated=not own_timing)
    return heard if sibling is None else joint_divisor(heard, objects_divisor(sibling))
