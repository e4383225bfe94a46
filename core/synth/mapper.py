"""Rule-based beatmaps from a `Score`: what a mapper would click on, per difficulty.

Every note onset is a candidate hit with a salience (a downbeat kick or a crash matters more than
a hi-hat). A difficulty maps the hits above its salience threshold that lie on its beat grid
(1/1, 1/2 or 1/4, coarser when the tempo would make it too fast), most salient first, keeping a
grid step between objects; a held lead note becomes a slider that ends where the note does,
snapped to the difficulty's grid. Each difficulty keeps the easier one's hits, so density grows
with difficulty: Hard fills the 1/2 grid with hi-hats, Insane adds 1/4 fills, and Expert maps
the chorus's 1/4 hi-hats as streams.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from core.beatmap.model import Beatmap, Circle, Difficulty, HitObject, Slider, Spinner, TimingPoint
from core.beatmap.timing import ControlPoints, slider_velocity
from core.synth.layout import MAX_SPAN_PX, Layout, Spacing
from core.synth.score import Score, Section

HITSOUND_FINISH, HITSOUND_CLAP = 4, 8
SAMPLE_SET_SOFT = 2
SV_BY_ENERGY = {0: 0.8, 1: 1.0, 2: 1.0, 3: 1.25}  # -125, -100, -80: exact beat lengths
KIAI = 1  # timing point effect bit


@dataclass(frozen=True)
class Level:
    """One difficulty's settings and mapping rules."""

    name: str
    hp: float
    cs: float
    od: float
    ar: float
    slider_multiplier: float
    vary_sv: bool  # calm sections slower and choruses faster (Hard and up)
    sliders_first: bool  # a held note's slider goes in before the hits it covers
    cover_salience: float  # a slider may cover this level's own weaker hits (harder levels)
    min_salience: float
    divisor: int  # beat grid: 1 (1/1), 2 (1/2; a shuffle's swung eighths) or 4 (every tick)
    min_gap_ms: float  # a coarser grid when the level's would be faster than this
    slider_beats: tuple[float, float]  # a sustain this long (beats) becomes a slider, capped
    slider_snap_beats: float  # slider ends on this grid
    spacing: Spacing


# Grids: Easy keeps 1/1 up to 150 BPM, Normal 1/2 up to 176 BPM, Hard 1/2 up to 222 BPM, Insane
# 1/4 up to 230 BPM, Expert 1/4 up to 250 BPM. Salience (see `_salience` and score.HATS): Easy
# takes strong beats, Normal off-beat melody, Hard on-beat and dense 1/2 hi-hats, Insane every
# 1/2 hi-hat and 1/4 fills, Expert the chorus's 1/4 hi-hats.
LEVELS = {level.name: level for level in (
    Level("Easy", 2, 3, 2, 3, 1, False, True, 0, 0.78, 1, 400, (1.0, 4.0), 1.0,
          Spacing(100, 60, 1.0, 0.0, 0.5)),
    Level("Normal", 3, 3.5, 4, 5, 1.2, False, True, 0, 0.62, 2, 170, (1.0, 3.0), 0.5,
          Spacing(120, 50, 1.0, 0.0, 0.6)),
    Level("Hard", 4, 4, 6, 7.5, 1.5, True, False, 1.0, 0.3, 2, 135, (0.5, 2.0), 0.5,
          Spacing(170, 40, 1.3, 0.3, 0.8)),
    Level("Insane", 5, 4, 8, 9, 1.8, True, False, 1.0, 0.28, 4, 65, (0.5, 2.0), 0.5,
          Spacing(230, 35, 1.6, 0.4, 0.9)),
    Level("Expert", 6, 4.2, 9, 9.5, 2.1, True, False, 1.0, 0.21, 4, 60, (0.5, 1.5), 0.25,
          Spacing(280, 30, 1.8, 0.5, 1.0)),
)}


@dataclass(frozen=True)
class Hit:
    """A moment a mapper may click: every onset at one tick, merged."""

    tick: int
    salience: float
    sustain: int  # ticks the longest lead note starting here is held
    hitsound: int


@dataclass(frozen=True)
class Planned:
    tick: int
    end_tick: int  # == tick for a circle
    kind: str  # "circle", "slider" or "spinner"
    hitsound: int


def held_sections(score: Score) -> list[Section]:
    """The sections mapped as one spinner: the stops and the outro (held chords)."""
    return [s for s in score.sections if s.name in ("stop", "outro")]


def hits(score: Score) -> list[Hit]:
    """The score's onsets outside the held sections, one per tick, with their salience."""
    tpb, tpm = score.ticks_per_beat, score.ticks_per_measure
    held = held_sections(score)
    by_tick: dict[int, list] = {}
    for note in score.notes:
        if not any(s.start_tick <= note.tick < s.end_tick for s in held):
            by_tick.setdefault(note.tick, []).append(note)
    result = []
    for tick, notes in by_tick.items():
        values = [_salience(n.instrument, n.velocity, n.length >= tpb) for n in notes]
        salience = max(values) + 0.05 * (len(values) - 1)
        salience += 0.1 * (tick % tpm == 0) + 0.05 * (tick % tpb == 0)
        sustain = max((n.length for n in notes if n.instrument == "lead"), default=0)
        sound = (HITSOUND_CLAP * any(n.instrument == "snare" for n in notes)
                 | HITSOUND_FINISH * any(n.instrument == "crash" for n in notes))
        result.append(Hit(tick, salience, sustain, sound))
    return result


def _salience(instrument: str, velocity: float, held: bool) -> float:
    base = {"crash": 1.0, "kick": 0.7 + 0.2 * velocity, "snare": 0.5 + 0.3 * velocity,
            "lead": 0.55 + 0.2 * velocity + 0.1 * held, "bass": 0.5,
            "hat": 0.15 + 0.3 * velocity}
    return base[instrument]


def plan_levels(score: Score) -> dict[str, list[Planned]]:
    """Every level's objects, easiest first. Each level keeps the hits of the one below and adds
    its own, as a mapper builds a spread: a harder map's rhythm contains the easier one's, and
    the objects per minute grow with difficulty."""
    plans: dict[str, list[Planned]] = {}
    base: list[int] = []
    for level in LEVELS.values():
        objects = plan(score, level, base)
        if len(objects) <= len(base) + 1 and level.cover_salience > 0:
            # Its sliders covered every hit it added: keep the hits, sliders only where they fit.
            objects = plan(score, replace(level, cover_salience=0), base)
        plans[level.name] = objects
        base = [p.tick for p in objects if p.kind != "spinner"]
    return plans


def plan(score: Score, level: Level, base: list[int]) -> list[Planned]:
    """`level`'s objects in time order: the `base` hits (an easier level's), then the most
    salient others on the level's grid that keep its gap; held notes become sliders.

    Easy and Normal place a held note's slider before the hits under it. Harder levels place
    every hit first, then turn held notes into sliders where they fit, covering hits they added
    on the 1/2 grid (hi-hats, mostly) but never 1/4 runs or an easier level's hits.
    """
    taken = [Planned(s.start_tick, _spinner_end(score, level, s), "spinner", HITSOUND_FINISH)
             for s in held_sections(score)]
    by_tick = {hit.tick: hit for hit in hits(score)}
    # An easier level's grid is a subset of this one's and its gaps no shorter: its hits fit.
    for tick in base:
        bisect.insort(taken, Planned(tick, tick, "circle", by_tick[tick].hitsound),
                      key=lambda p: p.tick)
    if level.sliders_first:
        _make_sliders(score, level, taken, by_tick, lambda p: False)
    placed = set(base)
    for hit in sorted(by_tick.values(), key=lambda h: (-h.salience, h.tick)):
        if hit.salience < level.min_salience:
            break
        grid = _grid(score, level, hit.tick)
        if hit.tick in placed or hit.tick % score.ticks_per_beat not in grid.positions:
            continue
        options = [_slider(score, level, hit)] if level.sliders_first else []
        options.append(Planned(hit.tick, hit.tick, "circle", hit.hitsound))
        for option in options:
            if option is not None and _fits(taken, option, grid.gap):
                bisect.insort(taken, option, key=lambda p: p.tick)
                placed.add(hit.tick)
                break
    half = _grid(score, replace(level, divisor=2, min_gap_ms=0), 0).positions

    def coverable(item: Planned) -> bool:
        return (item.kind == "circle" and item.tick not in base
                and item.tick % score.ticks_per_beat in half
                and by_tick[item.tick].salience < level.cover_salience)

    _make_sliders(score, level, taken, by_tick, coverable)
    return taken


def _spinner_end(score: Score, level: Level, held: Section) -> int:
    """The tick a held section's spinner ends on: the outro's at the song's end, a stop's a
    beat (or the level's gap, if longer) before the next section, time to recover from it."""
    if held.name != "stop":
        return held.end_tick
    return held.end_tick - max(_grid(score, level, held.end_tick).gap, score.ticks_per_beat)


def _make_sliders(score: Score, level: Level, taken: list[Planned], by_tick: dict[int, Hit],
                  coverable: Callable[[Planned], bool]) -> None:
    """Turn circles on held notes into sliders, in time order, where the slider and its gap
    fit before the next object once the `coverable` objects under it are removed."""
    index = 0
    while index < len(taken):
        item = taken[index]
        slider = _slider(score, level, by_tick[item.tick]) if item.kind == "circle" else None
        if slider is not None:
            gap = _grid(score, level, item.tick).gap
            end = index + 1
            while end < len(taken) and taken[end].tick < slider.end_tick + gap:
                if not coverable(taken[end]):
                    break
                end += 1
            else:
                taken[index:end] = [slider]
        index += 1


def _slider(score: Score, level: Level, hit: Hit) -> Planned | None:
    """`hit` as a slider over its held note, capped and snapped to `level`'s grid; or None."""
    tpb = score.ticks_per_beat
    shortest, longest = (max(1, math.floor(b * tpb + 0.5)) for b in level.slider_beats)
    snap = max(1, math.floor(level.slider_snap_beats * tpb + 0.5))
    held = min(hit.sustain, longest) // snap * snap
    return Planned(hit.tick, hit.tick + held, "slider", hit.hitsound) if held >= shortest else None


def _fits(taken: list[Planned], item: Planned, gap: int) -> bool:
    """Whether `item` keeps `gap` ticks from its neighbours in `taken` (sorted by tick)."""
    index = bisect.bisect(taken, item.tick, key=lambda p: p.tick)
    before = taken[index - 1] if index else None
    after = taken[index] if index < len(taken) else None
    return ((before is None or item.tick - before.end_tick >= gap)
            and (after is None or after.tick - item.end_tick >= gap))


@dataclass(frozen=True)
class Grid:
    """Where a level may place objects around one tick: positions within the beat, and the
    shortest gap between objects (ticks)."""

    positions: frozenset[int]
    gap: int


def _grid(score: Score, level: Level, tick: int) -> Grid:
    """`level`'s grid at `tick`, coarsened (1/4 -> 1/2 -> 1/1 -> 2 beats) to last `min_gap_ms`."""
    tpb = score.ticks_per_beat
    beat_ms = score.tempo_at(tick).beat_ms
    divisor = next((d for d in (4, 2, 1) if d <= level.divisor
                    and beat_ms / d >= level.min_gap_ms - 1e-9), 0)
    if divisor == 4:
        return Grid(frozenset(range(tpb)), 1)
    if divisor == 2:
        half = tpb // 2 if tpb % 2 == 0 else 2  # a shuffle's eighths swing: 2/3 then 1/3
        return Grid(frozenset({0, half}), min(half, tpb - half))
    return Grid(frozenset({0}), tpb if divisor == 1 else 2 * tpb)


def timing_points(score: Score, level: Level) -> list[TimingPoint]:
    """One uninherited point per tempo; an inherited one per section for its SV and kiai."""
    kiai = {s.start_tick: KIAI * (s.energy == 3) for s in score.sections}
    points = [TimingPoint(t.start_ms, t.beat_ms, score.meter, SAMPLE_SET_SOFT, 0, 60, True,
                          kiai.get(t.start_tick, 0)) for t in score.tempos]
    for section in score.sections:
        sv = SV_BY_ENERGY[section.energy] if level.vary_sv else 1.0
        points.append(TimingPoint(_ms(score, section.start_tick), -100 / sv, score.meter,
                                  SAMPLE_SET_SOFT, 0, 60, False, kiai[section.start_tick]))
    points.sort(key=lambda p: (p.time, not p.uninherited))
    return points


def _ms(score: Score, tick: int) -> int:
    """osu! writes a tick's time truncated (see core.beatmap.ticks.TickGrid.snap_ms)."""
    return math.floor(score.ms(tick) + 1e-6)


def make_beatmap(score: Score, level: Level, planned: list[Planned],
                 rng: np.random.Generator) -> Beatmap:
    """`level`'s map of `score` from its `planned` objects (`plan_levels`): difficulty, timing
    and placed objects; no metadata (see `songs`)."""
    beatmap = Beatmap(difficulty=Difficulty(hp=level.hp, cs=level.cs, od=level.od, ar=level.ar,
                                            slider_multiplier=level.slider_multiplier,
                                            slider_tick_rate=1),
                      timing_points=timing_points(score, level))
    control_points = ControlPoints(beatmap.timing_points)
    layout = Layout(rng, level.spacing)
    previous: Planned | None = None
    for item in planned:
        gap = (item.tick - previous.end_tick) / score.ticks_per_beat if previous else 1.0
        strong = item.tick % score.ticks_per_beat == 0
        time = _ms(score, item.tick)
        obj: HitObject
        if item.kind == "spinner":
            obj = Spinner(256, 192, time, spinner_end=_ms(score, item.end_tick))
            layout.spinner()
        elif item.kind == "circle":
            x, y = layout.circle(gap, strong)
            obj = Circle(x, y, time)
        else:
            obj = _slider_object(score, beatmap, control_points, layout, item, gap, strong)
        measure = item.tick // score.ticks_per_measure
        # A new combo on each measure's first object; osu! starts one at a spinner anyway.
        obj.new_combo = (previous is None or item.kind == "spinner"
                         or measure != previous.tick // score.ticks_per_measure)
        obj.hitsound, obj.hit_sample = item.hitsound, "0:0:0:0:"
        beatmap.hit_objects.append(obj)
        previous = item
    return beatmap


def _slider_object(score: Score, beatmap: Beatmap, control_points: ControlPoints, layout: Layout,
                   item: Planned, gap: float, strong: bool) -> Slider:
    """A slider that ends on `item.end_tick`: its pixel length is what osu! needs for that.

    osu! derives duration from length (osu! wiki, "hitObjects" > "Sliders"): length per span =
    100 * SliderMultiplier * SV * duration / beatLength. lazer's velocity (float32 SV included,
    `core.beatmap.timing`) gives the same duration the game computes.
    """
    time = _ms(score, item.tick)
    duration = score.ms(item.end_tick) - time  # to the exact tick, not its truncated ms
    velocity = slider_velocity(Slider(0, 0, time), beatmap.difficulty, control_points)
    total = velocity * duration
    slides = max(1, math.ceil(total / MAX_SPAN_PX))
    length = round(total / slides, 4)
    (x, y), shape = layout.slider(gap, strong, length, slides)
    return Slider(x, y, time, curve_type=shape.curve_type, points=shape.points, slides=slides,
                  length=length, edge_sounds="|".join([str(item.hitsound)] + ["0"] * slides),
                  edge_sets="|".join(["0:0"] * (slides + 1)), duration=duration)
