"""Break periods for a map's long gaps, as lazer's editor makes them on every change
(EditorBeatmapProcessor.autoGenerateBreaks, BreakPeriod's constants).

Without a break, HP drains through a gap and the storyboard's break layer never shows: a map kiai
writes must carry breaks where its objects leave room for one, and a continuation must not keep
a break its new objects now fall inside. Breaks are `[Events]` lines `2,start,end` (stable also
reads `Break,start,end`); other event lines are kept as they are.
"""

from __future__ import annotations

import itertools
import math

from core.beatmap.model import Beatmap, HitObject
from core.beatmap.timing import ControlPoints

GAP_BEFORE_BREAK = 200.0  # ms from the previous object's end to the break
GAP_AFTER_BREAK = 450.0  # ms from the break to the next object (the approach time at AR 10)
MIN_BREAK_DURATION = 650.0  # shorter breaks have no effect in game


def break_span(line: str) -> tuple[float, float] | None:
    """(start, end) ms of a break event line; None for any other event line."""
    fields = [f.strip() for f in line.split(",")]
    if len(fields) < 3 or fields[0] not in ("2", "Break"):
        return None
    try:
        start, end = float(fields[1]), float(fields[2])
    except ValueError:
        return None
    return (start, end) if math.isfinite(start) and math.isfinite(end) else None


def update_breaks(beatmap: Beatmap, within: tuple[float, float] | None = None) -> None:
    """Set the map's breaks for its objects, in place, and start a new combo after each.

    Without `within` (a map kiai wrote whole): keep each break no object overlaps (and that lies
    between the first and last object), drop the others, and add one in every other gap with
    room for MIN_BREAK_DURATION between GAP_BEFORE_BREAK after the previous object's end and
    max(GAP_AFTER_BREAK, two beats) before the next object; the first object after each break
    starts a new combo, as osu! stable does and lazer's editor enforces.

    `within` (from, until) ms, a continuation's span, whose objects are the new ones: only the
    stretch from the last object before it to the first after it is redone (the mapper's breaks
    there dropped, one added in each gap with room, new combos set on new objects only); the
    mapper's breaks and objects elsewhere stay exactly as they were. Sliders need their
    durations (core.beatmap.timing.annotate_sliders)."""
    objects = sorted(beatmap.hit_objects, key=lambda o: o.time)
    timing = ControlPoints(beatmap.timing_points)
    last_end = max((_end(o) for o in objects), default=-math.inf)
    if within is None:
        low, high = -math.inf, math.inf
    else:
        low = max((_end(o) for o in objects if o.time < within[0]), default=-math.inf)
        high = min((o.time for o in objects if o.time >= within[1]), default=math.inf)
    kept = []
    for line in beatmap.events:
        span = break_span(line)
        if span is None:
            continue
        outside = within is not None and (span[1] <= low or span[0] >= high)
        if outside or (within is None and _keeps(span, objects, last_end)):
            kept.append(span)
    added = []
    latest_end = -math.inf
    for previous, following in itertools.pairwise(objects):
        latest_end = max(latest_end, _end(previous))
        if within is not None and not (previous.time < within[1] and following.time >= within[0]):
            continue
        start = math.ceil(latest_end + GAP_BEFORE_BREAK)
        end = math.floor(following.time - max(GAP_AFTER_BREAK,
                                              2 * timing.beat_length_at(following.time)))
        if end - start < MIN_BREAK_DURATION:
            continue
        if any(s < end and start < e for s, e in kept):
            continue
        added.append((float(start), float(end)))
        if within is None or within[0] <= following.time < within[1]:
            following.new_combo = True
    spans = sorted(kept + added)
    others = [line for line in beatmap.events if break_span(line) is None]
    at = _insert_at(others)
    beatmap.events = others[:at] + [f"2,{_number(s)},{_number(e)}" for s, e in spans] + \
        others[at:]


def _keeps(span: tuple[float, float], objects: list[HitObject], last_end: float) -> bool:
    """lazer's rule for a break the mapper placed: inside the objects' span (from the first
    object to `last_end`, the latest end), overlapping none."""
    start, end = span
    if not objects or end <= start:
        return False
    if end <= objects[0].time or start >= last_end:
        return False
    return not any(o.time <= end and _end(o) >= start for o in objects)


def _end(obj: HitObject) -> float:
    end = obj.end_time
    return end if math.isfinite(end) else float(obj.time)


def _insert_at(events: list[str]) -> int:
    """Where breaks go among the other event lines: after the background and video lines
    (0, 1, Background, Video) and the indented commands a video may carry, before the
    storyboard, as stable writes them."""
    at = 0
    for i, line in enumerate(events):
        if line.split(",", 1)[0].strip() in ("0", "1", "Background", "Video"):
            at = i + 1
            while at < len(events) and events[at][:1] in (" ", "_"):
                at += 1
    return at


def _number(ms: float) -> str:
    return str(int(ms)) if float(ms).is_integer() else repr(ms)
