"""Whether a song's notes split its beat in halves or in thirds: the snap an estimated timing gets.

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
from core.beatmap.model import TimingPoint
from core.beatmap.ticks import FASTEST_TICK_MS, divisor_for_tempo
from core.tempo import onset_envelope, onset_frame

ALIGN_MS = 35.0  # how far from the red lines' beats their onsets are looked for


def snap_divisor(mel: np.ndarray | torch.Tensor, points: list[TimingPoint]) -> int:
    """The beat snap divisor for estimated timing `points` (uninherited, in beatmap time) of
    a song with log-mel `mel`: 6 (1/2, 1/3 and 1/6 ticks) or 3 where its notes fall on thirds
    of the beat (3 where 1/6 ticks would come faster than FASTEST_TICK_MS), else 1/4 or 1/2 by
    the tempo (core.beatmap.ticks.divisor_for_tempo)."""
    red = [p for p in points if p.uninherited and p.beat_length > 0]
    if not red:
        raise ValueError("no uninherited timing point to snap to")
    beat = red[0].beat_length
    if isinstance(mel, torch.Tensor):
        mel = mel.detach().float().cpu().numpy()
    mel = np.asarray(mel, np.float32)
    if not ternary(onset_envelope(mel), red):
        return divisor_for_tempo(beat)
    return 6 if beat / 6 >= FASTEST_TICK_MS else 3


def ternary(env: np.ndarray, red: list[TimingPoint]) -> bool:
    """Whether the onsets at the beats' thirds outweigh those at their halves, over every red
    line's section (onset strength per frame `env`, core.tempo.onset_envelope). Measured from
    where the onsets on the beats are, up to ALIGN_MS from the lines: hand-made timing can sit
    40-50 ms before its onsets, 20-30 ms off LATENCY_MS (welcome, circles)."""
    red = [p for p in red if p.uninherited and p.beat_length > 0]
    peak = maximum_filter1d(env, 3)  # a frame either side: 5 ms frames, rounded tick times

    def frames(fraction: float) -> np.ndarray:
        out = []
        for i, point in enumerate(red):
            end = red[i + 1].time if i + 1 < len(red) else len(env) * FRAME_MS
            beats = np.arange(max(math.ceil(-point.time / point.beat_length), 0),
                              max(math.ceil((end - point.time) / point.beat_length), 0))
            ms = point.time + (beats + fraction) * point.beat_length
            out.append(np.round(onset_frame(ms)).astype(int))
        return np.concatenate(out) if out else np.zeros(0, dtype=int)

    at = {f: frames(f) for f in (0.0, 1 / 3, 2 / 3, 1 / 2)}  # the beats, thirds and halves

    def strength(fractions: tuple[float, ...], shift: int = 0) -> float:
        idx = np.concatenate([at[f] for f in fractions]) + shift
        idx = idx[(idx >= 0) & (idx < len(env))]
        return float(peak[idx].mean()) if len(idx) else 0.0

    reach = round(ALIGN_MS / FRAME_MS)
    shift = max(range(-reach, reach + 1), key=lambda s: strength((0.0,), s))
    return strength((1 / 3, 2 / 3), shift) > strength((1 / 2,), shift)
