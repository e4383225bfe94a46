"""What lazer's `OsuBeatmapConversionTest` writes for a map: objects, slider parts, stacked.

The `*-expected-conversion.json` files beside lazer's test maps list, for every hit object (and
for a slider, every nested object: head, ticks, repeats, tail), its StartTime, EndTime and
`StackedPosition`. Two things in there are lazer display/judgement details rather than part of the
map, so they live here in the tests and not in `core`:

- the *legacy tail*: the test moves a slider's tail to `max(end - 36, start + duration / 2)`
  (`SliderEventGenerator.TAIL_LENIENCY`, `OsuBeatmapConversionTest.createConvertValue`);
- *stacking*: objects near each other in place and time are drawn offset by
  `-stackHeight * scale * 6.4` px on both axes (`OsuHitObject.StackOffset`), stack heights from
  `OsuBeatmapProcessor.applyStacking` (format v6+) or `applyStackingOld` (older formats), and
  scale from the circle size (`LegacyRulesetExtensions.CalculateScaleFromCircleSize`). The
  stacking window is stable's: a float32 `(int)preempt * StackLeniency`, and circles compare
  integer times (`OsuBeatmapProcessor.calculateStackThreshold`, lazer PR #36056).

`BeatmapConversionTest` decodes with `ApplyOffsets = false`, so for formats before v5 its times
lack the +24 ms that the parser (as lazer's decoder) adds; `convert` takes it back off.

Everything else (times, durations, path positions) comes from `core.beatmap.curves`/`timing`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from core.beatmap.curves import SliderPath, slider_path
from core.beatmap.model import Beatmap, Circle, Slider, Spinner
from core.beatmap.path_string import FIRST_LAZER_VERSION
from core.beatmap.timing import (
    SLIDER_TICK_RATE_RANGE,
    ControlPoints,
    slider_velocity,
)

F32 = np.float32
TAIL_LENIENCY = -36.0  # SliderEventGenerator.TAIL_LENIENCY
STACK_DISTANCE = 3  # OsuBeatmapProcessor.stack_distance
MAX_TICK_LENGTH = 100_000.0  # SliderEventGenerator.Generate's max_length
OLD_VERSION_OFFSET_MS = 24.0  # LegacyBeatmapDecoder.EARLY_VERSION_TIMING_OFFSET (formats < v5)


@dataclass
class Part:
    """One converted object as the JSON lists it; `kind` says what it is."""

    kind: str  # circle, spinner, head, tick, repeat, tail
    start: float
    end: float
    x: float
    y: float


@dataclass
class Obj:
    """A top-level object during stacking (lazer's OsuHitObject)."""

    kind: str
    start: float
    end: float
    pos: tuple[float, float]
    end_pos: tuple[float, float]
    path_end: tuple[float, float]  # Position + Path.PositionAt(1), for the old stacking
    slider: Slider | None = None
    path: SliderPath | None = None
    stack: int = 0
    velocity: float = 0.0  # osu!px per ms, for sliders
    parts: list[Part] = field(default_factory=list)


def difficulty_range(value: float, low: float, mid: float, high: float) -> float:
    """IBeatmapDifficultyInfo.DifficultyRange: 0 -> low, 5 -> mid, 10 -> high."""
    if value > 5:
        return mid + (high - mid) * ((value - 5) / 5)
    if value < 5:
        return mid + (mid - low) * ((value - 5) / 5)
    return mid


def time_preempt(approach_rate: float) -> float:
    """OsuHitObject.TimePreempt = DifficultyRangeInt(AR, 1800, 1200, 450); AR is a float32."""
    return float(int(difficulty_range(float(F32(approach_rate)), 1800, 1200, 450)))


def circle_scale(circle_size: float) -> np.float32:
    """CalculateScaleFromCircleSize(cs, applyFudge: true), float32 as lazer."""
    cs = float(F32(min(max(circle_size, 0.0), 10.0)))
    return F32(1.0 - float(F32(0.7)) * ((cs - 5) / 5)) / F32(2) * F32(1.00041)


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    dx = F32(a[0]) - F32(b[0])
    dy = F32(a[1]) - F32(b[1])
    return float(np.sqrt(dx * dx + dy * dy))


def _f32pair(x: float, y: float) -> tuple[float, float]:
    return float(F32(x)), float(F32(y))


def slider_parts(slider: Slider, path: SliderPath, beatmap: Beatmap,
                 cps: ControlPoints) -> list[Part]:
    """Slider.CreateNestedHitObjects with SliderEventGenerator.Generate, before stacking."""
    start = float(slider.time)
    spans = max(1, slider.slides)
    duration = float(slider.duration or 0.0)
    span_duration = duration / spans
    difficulty = beatmap.difficulty
    velocity = slider_velocity(slider, difficulty, cps, beatmap.mode)
    # Slider.ApplyDefaultsToSelf: scoringDistance = Velocity * BeatLength (not the SV-adjusted
    # beat), and OsuBeatmapConverter: before v8, speed multipliers don't change tick spacing.
    scoring = velocity * cps.beat_length_at(start)
    tick_rate = min(max(float(difficulty.slider_tick_rate), SLIDER_TICK_RATE_RANGE[0]),
                    SLIDER_TICK_RATE_RANGE[1])
    multiplier = 1.0
    if beatmap.format_version < 8:
        multiplier = 1.0 / cps.slider_velocity_at(start)
    # A NaN slider velocity hides ticks (LegacyBeatmapDecoder: GenerateTicks).
    tick_distance = scoring / tick_rate * multiplier if cps.generate_ticks_at(start) else math.inf
    length = min(MAX_TICK_LENGTH, path.distance)
    tick_distance = min(max(tick_distance, 0.0), length)
    min_from_end = velocity * 10

    def at(progress: float) -> tuple[float, float]:
        return path.position_at(progress)

    events: list[Part] = [Part("head", start, start, *_f32pair(*path.head))]
    if tick_distance != 0:
        for span in range(spans):
            span_start = start + span * span_duration
            reverse = span % 2 == 1
            ticks = []
            d = tick_distance
            while d <= length:
                if d >= length - min_from_end:
                    break
                progress = d / length
                time_progress = 1 - progress if reverse else progress
                t = span_start + time_progress * span_duration
                ticks.append(Part("tick", t, t, *at(progress)))
                d += tick_distance
            if reverse:
                ticks.reverse()
            events.extend(ticks)
            if span < spans - 1:
                t = start + (span + 1) * span_duration
                events.append(Part("repeat", t, t, *at((span + 1) % 2)))
    tail_time = start + spans * span_duration
    # EndPosition = Position + CurvePositionAt(1): the head again after an even number of spans.
    events.append(Part("tail", tail_time, tail_time, *at(spans % 2)))
    events.sort(key=lambda p: p.start)  # HitObject.ApplyDefaults sorts nested objects by time
    for part in events:
        if part.kind == "tail":  # OsuBeatmapConversionTest's legacy last tick
            legacy = max(part.start + TAIL_LENIENCY, start + duration / 2)
            part.start = part.end = legacy
    return events


def convert(beatmap: Beatmap) -> list[Obj]:
    """The objects of an osu! map with their parts at lazer's stacked positions."""
    cps = ControlPoints(beatmap.timing_points)
    lazer = beatmap.format_version >= FIRST_LAZER_VERSION
    objects: list[Obj] = []
    for h in beatmap.hit_objects:
        head = (float(F32(h.x)), float(F32(h.y))) if lazer else (
            float(math.trunc(h.x)), float(math.trunc(h.y)))
        if isinstance(h, Slider):
            path = slider_path(h, beatmap.format_version)
            duration = float(h.duration or 0.0)
            end_pos = path.position_at(max(1, h.slides) % 2)
            obj = Obj("slider", float(h.time), float(h.time) + duration, head, end_pos,
                      path.position_at(1.0), h, path)
            obj.parts = slider_parts(h, path, beatmap, cps)
            obj.velocity = slider_velocity(h, beatmap.difficulty, cps, beatmap.mode)
        elif isinstance(h, Spinner):
            end = float(h.time) + max(0.0, float(h.spinner_end) - float(h.time))
            centre = (256.0, 192.0)
            obj = Obj("spinner", float(h.time), end, centre, centre, centre)
            obj.parts = [Part("spinner", obj.start, obj.end, *centre)]
        elif isinstance(h, Circle):
            obj = Obj("circle", float(h.time), float(h.time), head, head, head)
            obj.parts = [Part("circle", obj.start, obj.end, *head)]
        else:
            continue
        objects.append(obj)
    preempt = time_preempt(beatmap.difficulty.approach_rate)
    # calculateStackThreshold: (int)TimePreempt * StackLeniency, a float32 product.
    threshold = float(F32(int(preempt)) * F32(beatmap.stack_leniency))
    if objects:
        if beatmap.format_version >= 6:
            _apply_stacking(objects, threshold)
        else:
            _apply_stacking_old(objects, threshold)
    shift = OLD_VERSION_OFFSET_MS if beatmap.format_version < 5 else 0.0
    scale = circle_scale(beatmap.difficulty.cs)
    for obj in objects:
        for part in obj.parts:
            part.start -= shift
            part.end -= shift
        if obj.kind == "spinner" or obj.stack == 0:
            continue
        offset = F32(obj.stack) * scale * F32(-6.4)  # OsuHitObject.StackOffset
        for part in obj.parts:
            part.x = float(F32(part.x) + offset)
            part.y = float(F32(part.y) + offset)
    return objects


def _apply_stacking(objects: list[Obj], threshold: float) -> None:
    """OsuBeatmapProcessor.applyStacking over the whole map (format v6 and later)."""
    for i in range(len(objects) - 1, 0, -1):
        n = i
        obj_i = objects[i]
        if obj_i.stack != 0 or obj_i.kind == "spinner":
            continue
        if obj_i.kind == "circle":
            while True:
                n -= 1
                if n < 0:
                    break
                obj_n = objects[n]
                if obj_n.kind == "spinner":
                    continue
                # Truncation to integers is required to match stable.
                if math.trunc(obj_i.start) - math.trunc(obj_n.end) > threshold:
                    break  # no longer within stacking range of the previous object
                # Circles under the *last* slider of a stack move down and right instead.
                if obj_n.kind == "slider" and _distance(obj_n.end_pos, obj_i.pos) < STACK_DISTANCE:
                    offset = obj_i.stack - obj_n.stack + 1
                    for j in range(n + 1, i + 1):
                        if _distance(obj_n.end_pos, objects[j].pos) < STACK_DISTANCE:
                            objects[j].stack -= offset
                    break
                if _distance(obj_n.pos, obj_i.pos) < STACK_DISTANCE:
                    obj_n.stack = obj_i.stack + 1
                    obj_i = obj_n
        elif obj_i.kind == "slider":
            while True:
                n -= 1
                if n < 0:
                    break
                obj_n = objects[n]
                if obj_n.kind == "spinner":
                    continue
                if obj_i.start - obj_n.start > threshold:
                    break
                if _distance(obj_n.end_pos, obj_i.pos) < STACK_DISTANCE:
                    obj_n.stack = obj_i.stack + 1
                    obj_i = obj_n


def _apply_stacking_old(objects: list[Obj], threshold: float) -> None:
    """OsuBeatmapProcessor.applyStackingOld (formats before v6)."""
    for i, current in enumerate(objects):
        if current.stack != 0 and current.kind != "slider":
            continue
        start_time = current.end
        slider_stack = 0
        end_position = current.path_end if current.kind == "slider" else current.pos
        for j in range(i + 1, len(objects)):
            if objects[j].start - threshold > start_time:
                break
            if _distance(objects[j].pos, current.pos) < STACK_DISTANCE:
                current.stack += 1
                start_time = objects[j].start
            elif _distance(objects[j].pos, end_position) < STACK_DISTANCE:
                # Case for sliders: bump notes down and right, rather than up and left.
                slider_stack += 1
                objects[j].stack -= slider_stack
                start_time = objects[j].start
