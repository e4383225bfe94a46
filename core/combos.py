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
"""

from __future__ import annotations

import math

from core.beatmap.model import Beatmap, Spinner
from core.beatmap.timing import ControlPoints
from core.sections import section_heads

MIN_COMBO = 3  # objects a combo has before a bar line may start the next
HALF_BAR_COMBO = 4  # ... before a half bar may
EPSILON_BEATS = 0.05  # an object this near a line is on it (times are snapped to ms)


def _slots(timing: ControlPoints, time: float) -> tuple[float, int, int]:
    """(red line's time, bar, half bar) of `time`: which of each it lies in (1 ms early is on
    the line: times are whole ms, lines not)."""
    point = timing.timing_point_at(time + 1.0)
    beats = (time - point.time) / point.beat_length + EPSILON_BEATS
    meter = max(1, point.meter)
    half = meter / 2 if meter % 2 == 0 else meter
    return point.time, math.floor(beats / meter), math.floor(beats / half)


def set_new_combos(beatmap: Beatmap, within: tuple[float, float] | None = None) -> None:
    """Set the new-combo flags of the map's objects (those starting `within` (from, until) ms
    only, for a continuation: the mapper's own stay), in place, as the module docstring says.
    A map without red lines is left as it is: it has no bars."""
    if not any(p.uninherited and p.beat_length > 0 for p in beatmap.timing_points):
        return
    timing = ControlPoints(beatmap.timing_points)
    low, high = within if within is not None else (-math.inf, math.inf)
    heads = list(section_heads(beatmap, timing))
    forced = []  # per object: whether it must start a combo (not merely the bar's choice)
    run = 0  # objects in the current combo so far
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
                _, bar, half = slots
                _, before_bar, before_half = previous[1]
                obj.new_combo = ((bar != before_bar and run >= MIN_COMBO)
                                 or (half != before_half and run >= HALF_BAR_COMBO))
            if not obj.new_combo:
                obj.combo_skip = 0  # skipping colours means nothing without a new combo
        run = 1 if obj.new_combo else run + 1
        previous = (obj, slots)
    for i, (obj, _) in enumerate(heads):  # a bar's combo of one joins the one before it
        alone = i + 1 == len(heads) or heads[i + 1][0].new_combo
        if obj.new_combo and alone and not forced[i] and low <= obj.time < high:
            obj.new_combo = False
            obj.combo_skip = 0
