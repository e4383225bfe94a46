"""Where a map's sections start: what mappers mark with a finish and a new combo.

A section starts at the map's first object, at the first after BREAK_BEATS of silence or a
break, and where kiai time starts (the chorus, most often).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from core.beatmap.breaks import break_span
from core.beatmap.model import Beatmap, HitObject
from core.beatmap.timing import ControlPoints

BREAK_BEATS = 8  # a gap of this many beats before an object: a section starts there


def section_starts(beatmap: Beatmap) -> list[float]:
    """Where the map's sections start: the end of each break, and each kiai time's start."""
    ends = [span[1] for line in beatmap.events if (span := break_span(line)) is not None]
    kiai, was = [], False
    for point in beatmap.timing_points:
        if point.kiai and not was:
            kiai.append(point.time)
        was = point.kiai
    return sorted(ends + kiai)


def section_heads(beatmap: Beatmap, timing: ControlPoints
                  ) -> Iterator[tuple[HitObject, bool]]:
    """(object, whether a section starts there) in time order: the first object, the first
    after BREAK_BEATS of silence, a break or the start of kiai time (`section_starts`)."""
    pause = BREAK_BEATS * timing.beat_length_at(-math.inf)  # the first red line's beats
    starts = section_starts(beatmap)
    last_end = -math.inf
    for obj in sorted(beatmap.hit_objects, key=lambda o: o.time):
        yield obj, obj.time - last_end >= pause or any(
            last_end < start <= obj.time + 1.0 for start in starts)
        last_end = max(last_end, obj.end_time)
