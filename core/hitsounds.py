"""Hitsounds for the objects kiai writes: the mapper's own pattern continued, and finishes where
a new map's sections start.

Ranked maps in the test corpus put a whistle, finish or clap on the heads of 44-75% of their
objects (benchmarks/map_style.py); kiai's model places objects, not sounds, so its maps had
none, and a continuation of a hitsounded map fell silent where it began. Mappers hitsound by
the bar: a clap on the snare's beats, a finish on a crash. So:
- a continuation takes the additions the map's own objects carry at each 1/4-beat place in the
  bar (those that at least half of its heads there carry, of MIN_HEADS), and the sample sets
  most of them carry there (drum claps, a soft normal on the downbeat), and puts them on its
  new objects' heads and slider ends at the same places; a map not yet hitsounded stays so.
  It adds finishes where sections start if the map has them there. The pattern is read from
  the whole map before the span: the last 16 bars alone matched the mapper's own sounds in the
  span less often (benchmarks/continue_sweep.py: 61.5% against 66.1% of additions);
- a new map gets a finish on its first object and the first after each pause, break or start
  of kiai time, where sections start (a crash, most often). A new map of a bare song also
  claps where its snare plays its backbeat (core.backbeat); a new difficulty of a hitsounded
  set copies the set's sounds (core.hitsound_copy). Whistles are left to the mapper.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from core.beatmap.model import Beatmap, HitObject, Slider, Spinner
from core.beatmap.timing import ControlPoints
from core.sections import section_heads

WHISTLE, FINISH, CLAP = 2, 4, 8
ADDITIONS = WHISTLE | FINISH | CLAP
SLOTS_PER_BEAT = 4  # places in the bar: 1/4 beats
ON_SLOT_MS = 10.0  # a sound this near a 1/4-beat tick is on it
MIN_HEADS = 3  # a place needs this many of the map's heads to tell its sound
MIN_SOUNDED = 16  # ... and the map this many heads before its pattern is read

Place = tuple[int, int]  # (meter, 1/4-beat place in the bar)
Sets = tuple[int, int]  # (normal, addition) sample sets: 0 the timing point's, 1 normal,
# 2 soft, 3 drum
Sound = tuple[int, Sets]  # (additions, sets) at one point


@dataclass
class Pattern:
    """The sounds a map's objects carry, by their place in the bar."""

    additions: dict[Place, int] = field(default_factory=dict)
    sets: dict[Place, Sets] = field(default_factory=dict)
    finishes: bool = False  # a finish where sections start (section_heads)
    # a clap where this says so (a bare song's snare, core.backbeat); None: none
    claps: Callable[[float], bool] | None = None

    def sound(self, timing: ControlPoints, time: float, starts_section: bool) -> Sound:
        """The sound at `time` (of the map whose timing is `timing`): its place's additions
        and sets, a finish where a section starts if the pattern has them, a clap where its
        `claps` has one."""
        place = _place(timing, time)
        extra = FINISH if self.finishes and starts_section else 0
        extra |= CLAP if self.claps is not None and self.claps(time) else 0
        if place is None:
            return extra, (0, 0)
        return self.additions.get(place, 0) | extra, self.sets.get(place, (0, 0))


def _place(timing: ControlPoints, time: float) -> tuple[int, int] | None:
    """(meter, place) of `time` in its bar, where it is within ON_SLOT_MS of a 1/4-beat tick."""
    point = timing.timing_point_at(time + 1.0)
    slots = (time - point.time) / point.beat_length * SLOTS_PER_BEAT
    nearest = round(slots)
    if abs(slots - nearest) * point.beat_length / SLOTS_PER_BEAT > ON_SLOT_MS:
        return None
    meter = max(1, point.meter)
    return meter, nearest % (meter * SLOTS_PER_BEAT)


def map_timing(beatmap: Beatmap) -> ControlPoints | None:
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


def head_sets(obj: HitObject) -> Sets:
    """The sample sets of an object's head (a slider's first edge sets where it has them)."""
    field_ = obj.hit_sample
    if isinstance(obj, Slider) and obj.edge_sets:
        field_ = obj.edge_sets.split("|")[0]
    return parse_sets(field_)


def parse_sets(field_: str | None) -> Sets:
    """(normal, addition) sets of a hitSample or edgeSets entry (`2:3...`); (0, 0) unreadable."""
    parts = (field_ or "").split(":")
    try:
        return int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return 0, 0


def observed_pattern(beatmap: Beatmap, until_ms: float = math.inf) -> Pattern | None:
    """The sounds the map's heads before `until_ms` carry per place in the bar; None where
    the map has fewer than MIN_SOUNDED heads on places, or none hitsounded."""
    timing = map_timing(beatmap)
    if timing is None:
        return None
    objects = [o for o in beatmap.hit_objects if o.time < until_ms and not isinstance(o, Spinner)]
    pattern = _pattern(timing, objects)
    if pattern is not None:
        starts = [obj for obj, starts in section_heads(beatmap, timing)
                  if starts and obj.time < until_ms]
        pattern.finishes = len(starts) >= 2 and sum(
            bool(head_sound(o) & FINISH) for o in starts) * 2 >= len(starts)
    return pattern


def _pattern(timing: ControlPoints, objects: list[HitObject]) -> Pattern | None:
    heads: dict[Place, list[HitObject]] = defaultdict(list)
    for obj in objects:
        place = _place(timing, obj.time)
        if place is not None:
            heads[place].append(obj)
    sounds = [head_sound(o) & ADDITIONS for values in heads.values() for o in values]
    if len(sounds) < MIN_SOUNDED or not any(sounds):
        return None
    pattern = Pattern()
    for place, values in heads.items():
        if len(values) < MIN_HEADS:
            continue
        kept = sum(bit for bit in (WHISTLE, FINISH, CLAP)
                   if sum(bool(head_sound(o) & bit) for o in values) * 2 >= len(values))
        if kept:
            pattern.additions[place] = kept
        sets, count = Counter(head_sets(o) for o in values).most_common(1)[0]
        if sets != (0, 0) and count * 2 >= len(values):
            pattern.sets[place] = sets
    return pattern


def apply_pattern(beatmap: Beatmap, pattern: Pattern, within: tuple[float, float]) -> None:
    """Set the sounds of the objects starting `within` (from, until) ms, in place, from
    `pattern`: a circle's on its head, a slider's on each of its ends (edge sounds and sets;
    its body silent), none on spinners; with its `finishes`, a finish on each object that
    starts a section."""
    timing = map_timing(beatmap)
    if timing is not None:
        apply_sounds(beatmap, lambda time, starts: pattern.sound(timing, time, starts), within,
                     timing)


def apply_sounds(beatmap: Beatmap, sound: Callable[[float, bool], Sound],
                 within: tuple[float, float], timing: ControlPoints) -> None:
    """Set the sounds of the objects starting `within` (from, until) ms, in place:
    `sound(time, starts_section)` for a circle's head and each end of a slider (edge sounds and
    sets; its body silent; `starts_section` only for the head of an object that starts one,
    core.sections), none on spinners."""
    for obj, starts_section in section_heads(beatmap, timing):
        if not within[0] <= obj.time < within[1] or isinstance(obj, Spinner):
            continue
        if isinstance(obj, Slider) and obj.duration:
            span = obj.duration / obj.slides
            edges = [sound(obj.time + i * span, starts_section and i == 0)
                     for i in range(obj.slides + 1)]
            obj.hitsound = obj.hitsound & ~ADDITIONS
            obj.edge_sounds = obj.edge_sets = None
            if any(e != (0, (0, 0)) for e in edges):
                obj.edge_sounds = "|".join(str(e[0]) for e in edges)
                obj.edge_sets = "|".join(f"{e[1][0]}:{e[1][1]}" for e in edges)
        else:
            additions, sets = sound(obj.time, starts_section)
            obj.hitsound = (obj.hitsound & ~ADDITIONS) | additions
            if sets != (0, 0) or obj.hit_sample:
                obj.hit_sample = _with_sets(obj.hit_sample, sets)


def _with_sets(hit_sample: str | None, sets: Sets) -> str:
    """A hitSample field (normal:addition:index:volume:filename) with its sets replaced."""
    parts = (hit_sample or "0:0:0:0:").split(":")
    parts += ["0", "0", "0", "0", ""][len(parts):]
    parts[0], parts[1] = str(sets[0]), str(sets[1])
    return ":".join(parts)
