"""Hitsounds for the objects kiai writes: the mapper's own pattern continued, and finishes where
a new map's sections start.

Ranked maps in the test corpus put a whistle, finish or clap on the heads of 44-75% of their
objects (benchmarks/map_style.py); kiai's model places objects, not sounds, so its maps had
none, and a continuation of a hitsounded map fell silent where it began. Mappers hitsound by
the bar: a clap on the snare's beats, a finish on a crash. So:
- a continuation takes the additions the map's own objects carry at each 1/4-beat place in the
  bar (those that at least half of its heads there carry, of MIN_HEADS), and puts them on its
  new objects' heads and slider ends at the same places; a map not yet hitsounded stays so;
- a new map gets a finish on its first object and the first after each pause, break or start
  of kiai time, where sections start (a crash, most often). Its claps and whistles are left to
  the mapper: a clap on beats 2 and 4 is right where the drums have a backbeat, and the
  snare's band (2-8 kHz) did not tell one from the kick's click on synthetic songs whose
  snares are known (1 and 3 measured 1.5-3x stronger than the snares' 2 and 4).
"""

from __future__ import annotations

import math
from collections import defaultdict

from core.beatmap.breaks import break_span
from core.beatmap.model import Beatmap, HitObject, Slider, Spinner
from core.beatmap.timing import ControlPoints

WHISTLE, FINISH, CLAP = 2, 4, 8
ADDITIONS = WHISTLE | FINISH | CLAP
SLOTS_PER_BEAT = 4  # places in the bar: 1/4 beats
ON_SLOT_MS = 10.0  # a sound this near a 1/4-beat tick is on it
MIN_HEADS = 3  # a place needs this many of the map's heads to tell its sound
MIN_SOUNDED = 16  # ... and the map this many heads before its pattern is read
BREAK_BEATS = 8  # a gap of this many beats before an object: a section starts there

Pattern = dict[tuple[int, int], int]  # (meter, 1/4-beat place in the bar) -> additions


def _place(timing: ControlPoints, time: float) -> tuple[int, int] | None:
    """(meter, place) of `time` in its bar, where it is within ON_SLOT_MS of a 1/4-beat tick."""
    point = timing.timing_point_at(time + 1.0)
    slots = (time - point.time) / point.beat_length * SLOTS_PER_BEAT
    nearest = round(slots)
    if abs(slots - nearest) * point.beat_length / SLOTS_PER_BEAT > ON_SLOT_MS:
        return None
    meter = max(1, point.meter)
    return meter, nearest % (meter * SLOTS_PER_BEAT)


def _timing(beatmap: Beatmap) -> ControlPoints | None:
    """The map's timing, None without a usable red line (no bars to place sounds in)."""
    if not any(p.uninherited and p.beat_length > 0 for p in beatmap.timing_points):
        return None
    return ControlPoints(beatmap.timing_points)


def head_sound(obj: HitObject) -> int:
    """The additions on an object's head (a slider's first edge sound where it has them)."""
    if isinstance(obj, Slider) and obj.edge_sounds:
        first = obj.edge_sounds.split("|")[0]
        return int(first) if first.strip().isdigit() else obj.hitsound
    return obj.hitsound


def observed_pattern(beatmap: Beatmap, until_ms: float = math.inf) -> Pattern | None:
    """The additions the map's heads before `until_ms` carry per place in the bar; None where
    it has fewer than MIN_SOUNDED heads on places, or none hitsounded."""
    timing = _timing(beatmap)
    if timing is None:
        return None
    heads: dict[tuple[int, int], list[int]] = defaultdict(list)
    for obj in beatmap.hit_objects:
        if obj.time >= until_ms or isinstance(obj, Spinner):
            continue
        place = _place(timing, obj.time)
        if place is not None:
            heads[place].append(head_sound(obj) & ADDITIONS)
    sounds = [s for values in heads.values() for s in values]
    if len(sounds) < MIN_SOUNDED or not any(sounds):
        return None
    pattern: Pattern = {}
    for place, values in heads.items():
        if len(values) < MIN_HEADS:
            continue
        kept = sum(bit for bit in (WHISTLE, FINISH, CLAP)
                   if sum(bool(v & bit) for v in values) * 2 >= len(values))
        if kept:
            pattern[place] = kept
    return pattern


def section_starts(beatmap: Beatmap) -> list[float]:
    """Where the map's sections start: the end of each break, and each kiai time's start."""
    ends = [span[1] for line in beatmap.events if (span := break_span(line)) is not None]
    kiai, was = [], False
    for point in beatmap.timing_points:
        if point.kiai and not was:
            kiai.append(point.time)
        was = point.kiai
    return sorted(ends + kiai)


def apply_pattern(beatmap: Beatmap, pattern: Pattern, within: tuple[float, float],
                  finishes: bool = False) -> None:
    """Set the additions of the objects starting `within` (from, until) ms, in place, from
    `pattern`: a circle's on its head, a slider's on each of its ends (edge sounds; its body
    silent), none on spinners; with `finishes`, a finish on the first object and on the first
    after BREAK_BEATS of silence, a break or the start of kiai time (`section_starts`)."""
    timing = _timing(beatmap)
    if timing is None:
        return

    def sound(time: float) -> int:
        place = _place(timing, time)
        return pattern.get(place, 0) if place is not None else 0

    pause = BREAK_BEATS * timing.beat_length_at(-math.inf)  # the first red line's beats
    starts = section_starts(beatmap) if finishes else []
    last_end = -math.inf
    for obj in sorted(beatmap.hit_objects, key=lambda o: o.time):
        starts_section = obj.time - last_end >= pause or any(
            last_end < start <= obj.time + 1.0 for start in starts)
        last_end = max(last_end, obj.end_time)
        if not within[0] <= obj.time < within[1] or isinstance(obj, Spinner):
            continue
        extra = FINISH if finishes and starts_section else 0
        if isinstance(obj, Slider) and obj.duration:
            span = obj.duration / obj.slides
            edges = [sound(obj.time + i * span) for i in range(obj.slides + 1)]
            edges[0] |= extra
            obj.hitsound = obj.hitsound & ~ADDITIONS
            if any(edges):
                obj.edge_sounds = "|".join(str(e) for e in edges)
                obj.edge_sets = "|".join("0:0" for _ in edges)
        else:
            obj.hitsound = (obj.hitsound & ~ADDITIONS) | sound(obj.time) | extra
