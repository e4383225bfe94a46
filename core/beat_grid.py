"""The map's beat grid as a model input: which tick, if any, each 10 ms audio position is on.

A mapper places objects by the beat: downbeats and beats first, then 1/2, 1/4 and triplet
ticks. The decoder's constraints already keep objects on the ticks (core.constraints), but
without the grid the model has to infer from audio alone which of the allowed ticks are
downbeats or off-beats. Every map has its timing (its own or estimated, core.tempo), so the
encoder gets it too: one class per encoder position (10 ms apart, the positions the audio
pointer reads for each TIME_SHIFT's landing), added to the audio as a learned embedding.

Classes: UNKNOWN (no timing: the model still works, it is trained with some windows so),
OFF (no tick within half a position), then the coarsest tick within it: DOWNBEAT, BEAT and
the divisors 1/2, 1/4, 1/3, 1/6, 1/8 (finer ticks count as OFF).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.beatmap.model import TimingPoint
from core.beatmap.ticks import DIVISORS, TickGrid

UNKNOWN, OFF, DOWNBEAT, BEAT = 0, 1, 2, 3
# 1/2 ... 1/8 in core.beatmap.ticks' preference order, each its own class after BEAT
DIVISOR_CLASSES = {d: BEAT + 1 + i for i, d in enumerate(d for d in DIVISORS if 1 < d <= 8)}
N_CLASSES = BEAT + 1 + len(DIVISOR_CLASSES)
POSITION_MS = 10.0  # encoder positions: 5 ms frames downsampled twice


def grid_classes(timing_points: Sequence[TimingPoint], start_ms: float, count: int,
                 step_ms: float = POSITION_MS) -> np.ndarray:
    """(count,) int64 class of positions start_ms + i * step_ms (beatmap time): the tick each
    lies on within half a step, by the uninherited point in force there (before the first:
    the first, as osu! extends it); all UNKNOWN without one."""
    ticks = TickGrid(timing_points)  # its valid uninherited points, in time order
    points = ticks.points
    out = np.full(count, UNKNOWN, dtype=np.int64)
    if not points:
        return out
    times = start_ms + step_ms * np.arange(count)
    section = np.maximum(np.searchsorted(ticks.times, times, side="right") - 1, 0)
    tolerance = step_ms / 2 + 1e-6  # a tick halfway between two positions marks both
    for index in np.unique(section):
        point = points[index]
        where = np.flatnonzero(section == index)
        beats = (times[where] - point.time) / point.beat_length
        classes = np.full(len(where), OFF, dtype=np.int64)
        open_ = np.ones(len(where), dtype=bool)
        for divisor, label in ((1, BEAT), *DIVISOR_CLASSES.items()):
            scaled = beats * divisor
            nearest = np.round(scaled)
            on = open_ & (np.abs(scaled - nearest) * point.beat_length / divisor <= tolerance)
            if divisor == 1:
                meter = max(int(point.meter), 1)
                classes[on & (np.mod(nearest, meter) == 0)] = DOWNBEAT
                classes[on & (np.mod(nearest, meter) != 0)] = BEAT
            else:
                classes[on] = label
            open_ &= ~on
        out[where] = classes
    return out


def red_line_beats(timing_points: Sequence[TimingPoint], end_ms: float
                   ) -> list[tuple[float, int, int]]:
    """(time, place in the bar, meter) of each beat of the map's red lines up to `end_ms`, from
    0 ms (each red line starts its bars again, up to the next): the bars core.kiai_time marks
    and the beats core.backbeat claps."""
    points = TickGrid(timing_points).points  # its valid uninherited points, in time order
    beats = []
    for i, point in enumerate(points):
        until = points[i + 1].time if i + 1 < len(points) else end_ms
        meter = max(int(point.meter), 1)
        count = max(int(np.ceil((until - point.time) / point.beat_length - 1e-6)), 0)
        beats += [(t, k % meter, meter) for k in range(count)
                  if (t := point.time + k * point.beat_length) >= 0.0]
    return beats
