"""The music's pull on when objects come: toward the beats, and toward what is heard.

The model decides when each object comes, and on real songs it did not follow the music: a tick
with an object had no stronger onset than one without (QA, session 24: AUC 0.43-0.59 on four
real songs, against 0.70-0.93 for maps of the synthetic songs the model learnt from), and at
4 stars and above 35-49% of its objects sat on 1/4 off-ticks (ranked maps: 3-35%, median 12%)
while 8-25% of beats had nothing on them (ranked: 0-9%). Mappers put objects where the music
is, on the beat first. So each moment an object may start at gets a bonus in nats: `weight`
times the mean of the onset strength there (the song's onset envelope, core.tempo_grid, its
99.5th percentile 1; where the map's beats have their onsets: hand-made timing can sit 50 ms
before them) and the tick's metrical weight (a beat 1, a half beat 0.6, down to 0 for
1/16). It is added to the gaps that land there and, at the cursor, to placing an object now,
so it moves the choice of when without drawing it (core.constraints keeps the decision).
A tick finer than the half beat where nothing is heard loses QUIET_NATS instead (the pull may be
negative there), unless a retry short of its stars has lowered it (DecodingOptions.quiet_nats).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.ndimage import maximum_filter1d
from torch import Tensor

from core.audio import FRAME_MS
from core.beat_feel import beat_frames, onset_shift
from core.beatmap.ticks import TickGrid
from core.tempo import onset_frame
from core.tempo_grid import onset_envelope

PULL_NATS = 6.0  # the default weight: see benchmarks/music_pull.py
# A tick's weight by the coarsest divisor it is a tick of
METRIC = {1: 1.0, 2: 0.6, 3: 0.3, 4: 0.3, 6: 0.2, 8: 0.1, 12: 0.1, 16: 0.0}
ON_TICK_MS = 2.0  # a time this near a tick is on it (the default: decoding gives its snap's)
ALIGN_MS = 60.0  # how far from the timing's beats their onsets are looked for
REACH_FRAMES = 2  # an onset this many feature frames either side counts (10 ms at 5 ms frames)
# A tick finer than the half beat (1/3, 1/4, ...) where nothing is heard (onset under
# QUIET_ONSET) loses QUIET_NATS more: the bonus alone let the starter stream over plain eighths
# (QA, session 27: 102 heads on 1/4 off-beats of one song, 2 of them on a note)
QUIET_ONSET = 0.15
QUIET_NATS = 6.0


class MusicPull:
    """The pull (nats) on each moment of a song, for one map's timing."""

    def __init__(self, mel: Tensor | np.ndarray, ticks: TickGrid, weight: float = PULL_NATS,
                 tolerance: float = ON_TICK_MS, quiet: float = QUIET_NATS,
                 envelope: np.ndarray | None = None) -> None:
        """`envelope`: the song's onset_envelope where already computed (else from `mel`)."""
        if envelope is None:
            if isinstance(mel, Tensor):
                mel = mel.detach().float().cpu().numpy()
            envelope = onset_envelope(np.asarray(mel, np.float32))
        self.peaks = maximum_filter1d(envelope, 2 * REACH_FRAMES + 1)  # 1: the 99.5th percentile
        self.onsets = np.clip(self.peaks, 0.0, 1.0)
        self.ticks = ticks
        self.weight = weight
        self.quiet = quiet  # nats off a quiet quarter or third (QUIET_NATS)
        self.tolerance = tolerance  # a time this near a tick snaps to it (core.generate's)
        self.lag = self._lag()

    def _lag(self) -> int:
        """Frames from where the timing puts its beats to where their onsets are (within
        ALIGN_MS): hand-made timing sits up to 50 ms before its onsets (circles, welcome)."""
        red = self.ticks.points
        if not red:
            return 0
        return onset_shift(self.onsets, beat_frames(red, len(self.onsets)),
                           round(ALIGN_MS / FRAME_MS))

    def metric(self, times: np.ndarray) -> np.ndarray:
        """Each beatmap time's metrical weight: the coarsest tick within the tolerance's (0 off
        every tick). The decoder's times are 10 ms apart and snap to a tick up to 6 ms away."""
        out = np.zeros(len(times))
        red = self.ticks.points
        if not red:
            return out
        index = np.clip(np.searchsorted([p.time for p in red], times, side="right") - 1, 0,
                        len(red) - 1)
        for i, point in enumerate(red):
            mine = index == i
            if not mine.any():
                continue
            beats = (times[mine] - point.time) / point.beat_length
            weight = np.zeros(int(mine.sum()))
            for divisor in sorted(METRIC, reverse=True):  # the coarsest last: it wins
                off = np.abs(beats * divisor - np.round(beats * divisor))
                on = off * point.beat_length / divisor <= self.tolerance
                weight[on] = METRIC[divisor]
            out[mine] = weight
        return out

    def heard(self, times: np.ndarray, clipped: bool = True) -> np.ndarray:
        """The onset strength at each beatmap time (0 outside the song), at most 1 unless not
        `clipped` (the loudest 0.5% of frames apart)."""
        frames = np.round(onset_frame(times)).astype(int) + self.lag
        inside = (frames >= 0) & (frames < len(self.onsets))
        strength = self.onsets if clipped else self.peaks
        return np.where(inside, strength[np.clip(frames, 0, len(strength) - 1)], 0.0)

    def window(self, origin: float, steps: int, step: float) -> Tensor:
        """The pull at window times 0, step, ... (steps of them) from beatmap time `origin`."""
        times = origin + step * np.arange(steps)
        heard = self.heard(times)
        metric = self.metric(times)
        pull = self.weight * 0.5 * (heard + metric)
        pull -= self.quiet * ((metric > 0.0) & (metric < METRIC[2]) & (heard < QUIET_ONSET))
        return torch.from_numpy(pull.astype(np.float32))


def window_steps(window_ms: float, step: float) -> int:
    """Time steps a window's pull table needs: its length and the longest landing past it."""
    return math.ceil(window_ms / step) + 1


def apply_pull(logits: Tensor, table: Tensor, cursor: float, landings: Tensor, step: float,
               shifts: slice, objects: list[slice]) -> None:
    """Add the pull (`table`, per window time step) in place to the gaps' logits (`shifts`:
    the first len(landings) of them land `landings` ms after `cursor`) and, at the cursor, to
    placing an object now (`objects`)."""
    last = len(table) - 1
    count = min(len(landings), shifts.stop - shifts.start)
    index = torch.round((cursor + landings[:count]) / step).long().clamp(0, last)
    logits[shifts.start: shifts.start + count] += table[index]
    here = table[min(max(round(cursor / step), 0), last)]
    for span in objects:
        logits[span.start: span.stop] += here
