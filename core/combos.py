"""New combos where mappers put them: at the music's bar lines and half bars.

A combo is what a player reads as a phrase (its colour and numbers restart), so mappers start one
with the music's: ranked maps in the test corpus start 52-89% of their combos on a bar line or half
a bar, and run a median of 4-5.5 objects to a combo (benchmarks/map_style.py). The starter model
put 26-48% there, and combos of 2 to 7. So kiai sets them from the map's timing, once the objects
are placed: an object starts a combo where it is the first on or after a bar line and the
current combo has MIN_COMBO objects, or the first after a half bar and it has HALF_BAR_COMBO;
at a spinner, after one, at a new red line (its bars start again) and where a section starts
(after a pause or a break, at kiai time: core.sections). That gives combos of about four
objects at any density: two bars of a sparse Easy, a bar of 1/1, half a bar of 1/2. A bar's
combo of one object, cut short by a spinner, a section or the end, joins the combo before it
(20 such were found in 23 maps, most before breaks and spinners).
A continuation follows the mapper's combos before it instead (combo_style): half bars only if
they use them, their bars per combo, and their least objects to a combo (a combo of one stays
where theirs are that short).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from core.beatmap.model import Beatmap, Spinner
from core.beatmap.timing import ControlPoints
from core.sections import section_heads

MIN_COMBO = 3  # objects a combo has before a bar line may start the next
HALF_BAR_COMBO = 4  # ... before a half bar may
EPSILON_BEATS = 0.05  # an object this near a line is on it (times are snapped to ms)
# A continuation follows the map's own combos before it (combo_style): half bars only where the
# mapper starts MIN_HALF_SHARE of their combos on one, and as many bars to a combo as theirs
# (the QA's Insane started 30 of 30 combos on a bar line, its continuation 14 of 39 off one)
MIN_HALF_SHARE = 0.1
MIN_STYLE_COMBOS = 8  # combos a map needs before its style is read


@dataclass(frozen=True)
class ComboStyle:
    half_bars: bool = True  # whether a combo may start on a half bar
    bars: int = 1  # bars a combo spans at least before a bar line starts the next
    least: int = MIN_COMBO  # objects a combo has at least before a bar line starts the next


def _slots(timing: ControlPoints, time: float) -> tuple[float, int, int, str]:
    """(red line's time, bar, half bar, place) of `time`: which of each it lies in (1 ms early
    is on the line: times are whole ms, lines not), and whether it is on the bar line ("bar"),
    on the half bar of an even meter ("half") or elsewhere ("other"), within EPSILON_BEATS."""
    point = timing.timing_point_at(time + 1.0)
    beats = (time - point.time) / point.beat_length + EPSILON_BEATS
    meter = max(1, point.meter)
    half = meter / 2 if meter % 2 == 0 else meter
    in_bar = beats % meter  # EPSILON_BEATS past a line on it
    place = "bar" if in_bar <= 2 * EPSILON_BEATS else "half" if (
        meter % 2 == 0 and abs(in_bar - EPSILON_BEATS - half) <= EPSILON_BEATS) else "other"
    return point.time, math.floor(beats / meter), math.floor(beats / half), place


def combo_style(beatmap: Beatmap, until_ms: float) -> ComboStyle:
    """How the map starts its combos before `until_ms` where nothing forces one (a section, a
    spinner, a red line): on half bars or bar lines only, every how many bars (the median
    between combos started on bar lines of one red line), and with how few objects (its median
    combo, up to MIN_COMBO: an Easy's one or two a bar); the default where it has fewer than
    MIN_STYLE_COMBOS such starts or no red line."""
    if not any(p.uninherited and p.beat_length > 0 for p in beatmap.timing_points):
        return ComboStyle()
    timing = ControlPoints(beatmap.timing_points)
    heads = [(o, section) for o, section in section_heads(beatmap, timing) if o.time < until_ms]
    starts = []  # the slots of each start nothing forced
    flags = [True]  # per object but spinners: whether it starts a combo
    slots = [_slots(timing, o.time) for o, _ in heads]
    for i in range(1, len(heads)):
        (before, _), (obj, section) = heads[i - 1], heads[i]
        forced = (section or isinstance(obj, Spinner) or isinstance(before, Spinner)
                  or slots[i][0] != slots[i - 1][0])
        if obj.new_combo and not forced:
            starts.append(slots[i])
        if not isinstance(obj, Spinner):
            flags.append(obj.new_combo or forced)
    if len(starts) < MIN_STYLE_COMBOS:
        return ComboStyle()
    halves = sum(place == "half" for *_, place in starts) / len(starts)
    bars = [b[1] - a[1] for a, b in itertools.pairwise(starts)
            if a[0] == b[0] and a[3] == b[3] == "bar"]
    sizes = np.diff([i for i, flag in enumerate([*flags, True]) if flag])
    return ComboStyle(half_bars=halves >= MIN_HALF_SHARE,
                      bars=max(1, min(4, round(float(np.median(bars))))) if bars else 1,
                      least=max(1, min(MIN_COMBO, int(np.median(sizes)))))


def set_new_combos(beatmap: Beatmap, within: tuple[float, float] | None = None,
                   style: ComboStyle = ComboStyle()) -> None:
    """Set the new-combo flags of the map's objects (those starting `within` (from, until) ms
    only, for a continuation: the mapper's own stay, and their `style` followed), in place, as
    the module docstring says. A map without red lines is left as it is: it has no bars."""
    if not any(p.uninherited and p.beat_length > 0 for p in beatmap.timing_points):
        return
    timing = ControlPoints(beatmap.timing_points)
    low, high = within if within is not None else (-math.inf, math.inf)
    heads = list(section_heads(beatmap, timing))
    forced = []  # per object: whether it must start a combo (not merely the bar's choice)
    run = 0  # objects in the current combo so far
    combo_bar = -math.inf  # the bar the current combo started in
    previous = None
    for obj, starts_section in heads:
        slots = _slots(timing, obj.time)
        must = (previous is None or starts_section or isinstance(obj, Spinner)
                or isinstance(previous[0], Spinner) or slots[0] != previous[1][0])
        forced.append(must)
        if low <= obj.time < high:
            if must:
                obj.new_combo = True
            else:
                _, bar, half, _ = slots
                _, before_bar, before_half, _ = previous[1]
                obj.new_combo = ((bar >= combo_bar + style.bars and bar != before_bar
                                  and run >= style.least)
                                 or (style.half_bars and half != before_half
                                     and run >= HALF_BAR_COMBO))
            if not obj.new_combo:
                obj.combo_skip = 0  # skipping colours means nothing without a new combo
        run = 1 if obj.new_combo else run + 1
        if obj.new_combo or slots[0] != (previous[1][0] if previous else None):
            combo_bar = slots[1]  # the bar the current combo started in
        previous = (obj, slots)
    for i, (obj, _) in enumerate(heads):  # a bar's combo of one joins the one before it
        alone = i + 1 == len(heads) or heads[i + 1][0].new_combo
        if obj.new_combo and alone and not forced[i] and low <= obj.time < high \
                and style.least > 1:
            obj.new_combo = False
            obj.combo_skip = 0
