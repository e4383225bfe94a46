"""The beat-snap grid of a map's timing: ticks at 1/1 ... 1/16 of each uninherited beat.

Mappers place objects on these ticks (the editor's beat snap divisor), so kiai's output snaps to
them too when it can (DESIGN §4). Coarser divisors are preferred: a time within tolerance of a
1/2 tick is snapped there even if a 1/16 tick is nearer, as a mapper would read it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable

from core.beatmap.model import TimingPoint
from core.beatmap.timing import ControlPoints

# Preference order: the editor's common divisors first, odd (triplet) ones after.
DIVISORS = (1, 2, 4, 3, 6, 8, 12, 16)


DEFAULT_BEAT_DIVISOR = 4  # the editor's default, and what most maps are snapped with


def divisors_for(beat_divisor: int) -> tuple[int, ...]:
    """The divisors whose ticks the editor offers at beat snap divisor 1/`beat_divisor`
    (1/4: 1/1, 1/2, 1/4; 1/6: 1/1, 1/2, 1/3, 1/6), in DIVISORS' preference order."""
    if beat_divisor not in DIVISORS:
        raise ValueError(f"beat divisor 1/{beat_divisor} is not one of the editor's "
                         f"({', '.join(f'1/{d}' for d in sorted(DIVISORS))})")
    return tuple(d for d in DIVISORS if beat_divisor % d == 0)


FASTEST_TICK_MS = 70.0  # finer ticks than this are streams faster than ~214 BPM 1/4


def divisor_for_tempo(beat_length: float) -> int:
    """The beat snap divisor for estimated timing: 1/4 unless its ticks would come faster than
    FASTEST_TICK_MS, then 1/2. A fast estimate is most often a slow song's doubled tempo (the
    octave error timing estimation makes most), and 1/2 of 240 BPM is 1/4 of the 120 BPM the
    song has; at a true 240 BPM, 1/2 is what maps use most too."""
    return DEFAULT_BEAT_DIVISOR if beat_length / DEFAULT_BEAT_DIVISOR >= FASTEST_TICK_MS else 2


def beat_divisor_of(editor: dict[str, str]) -> int:
    """A map's [Editor] BeatDivisor when it is one of the editor's, else the default (1/4)."""
    try:
        value = int(editor.get("BeatDivisor", "").strip())
    except ValueError:
        return DEFAULT_BEAT_DIVISOR
    return value if value in DIVISORS else DEFAULT_BEAT_DIVISOR


class TickGrid:
    """Snap times to the ticks of the uninherited timing points (before the first: the first).

    The red lines are those lazer's decoder keeps (core.beatmap.timing.ControlPoints): of two
    at the same time in a row, the first. A plain sort had kept the second, and a continuation
    of such a map was snapped to ticks lazer does not draw (QA, session 32)."""

    def __init__(self, timing_points: Iterable[TimingPoint],
                 divisors: tuple[int, ...] = DIVISORS) -> None:
        self.points = [p for p in ControlPoints(timing_points).timing_points
                       if math.isfinite(p.beat_length) and p.beat_length > 0]
        self.times = [p.time for p in self.points]
        self.divisors = divisors

    def __bool__(self) -> bool:
        return bool(self.points)

    def snap(self, time: float, tolerance_ms: float) -> tuple[float, int] | None:
        """(tick time, divisor) of the preferred tick within `tolerance_ms`, or None."""
        if not self.points:
            return None
        index = max(bisect.bisect_right(self.times, time) - 1, 0)
        candidates = [self.points[index]]
        # Near a new timing section, its first ticks compete too.
        if index + 1 < len(self.points) and self.times[index + 1] - time <= tolerance_ms:
            candidates.append(self.points[index + 1])
        best: tuple[int, float, float] | None = None  # (divisor rank, distance, tick)
        for point in candidates:
            for rank, divisor in enumerate(self.divisors):
                step = point.beat_length / divisor
                tick = point.time + round((time - point.time) / step) * step
                distance = abs(tick - time)
                if distance <= tolerance_ms:
                    if best is None or (rank, distance) < best[:2]:
                        best = (rank, distance, tick)
                    break
        if best is None:
            return None
        return best[2], self.divisors[best[0]]

    def snap_ms(self, time: float, tolerance_ms: float) -> float:
        """`time` moved to its tick when one is within tolerance, as the integer ms osu! writes.

        osu! stable truncates a tick's time (93% of the corpus's snapped objects sit on
        floor(tick), 3% on round(tick)); the epsilon keeps 1083.9999999 from becoming 1083.
        """
        snapped = self.snap(time, tolerance_ms)
        if snapped is None:
            return math.floor(time + 0.5)
        return math.floor(snapped[0] + 1e-6)
