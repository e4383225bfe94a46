"""Spacing: how far apart a map's objects are for the time between them (osu!pixels per ms).

Jumps decide most of an osu!standard map's star rating (aim strain grows with distance over
time), so kiai bounds them while decoding (DecodingOptions.spacing, a ceiling like the editor's
distance snap): from the stars asked for when writing a new map, from the map's own spacing
when continuing one.

The ceiling per star rating is set from two measurements. Ranked maps in the test corpus (25
osu!standard maps of 100+ objects, 2.5-6.6 stars) have a 90th percentile of spacing from
0.25-0.4 px/ms at 2.5 stars to 1.4-1.7 at 6 (`spacings` below). As a ceiling, those values made
the starter model's maps 1-3 stars too hard (it spreads its jumps over the whole reach and
writes denser rhythms than a ranked map), so the table is lower: the ceilings that gave the
requested stars on the synthetic songs of `benchmarks/generated_maps.py`.

A continuation also keeps the map's own floor and spread (core.spacing_limit: neighbours kept
clear, moves of one rhythm of one spacing): `observed_min_distance`, `observed_spread`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

from core.beatmap.curves import slider_path
from core.beatmap.model import (
    PLAYFIELD_HEIGHT,
    PLAYFIELD_WIDTH,
    Beatmap,
    Circle,
    HitObject,
    Slider,
    Spinner,
)
from core.spacing_limit import OVERLAP_GAP_MS, SAME_GAP_MS, STACK_PX, circle_diameter

# stars -> the spacing ceiling (px/ms) that gives that rating (see the module docstring)
_TYPICAL = [(1.0, 0.2), (2.0, 0.27), (3.0, 0.47), (4.0, 0.63), (5.0, 0.84), (6.0, 1.08),
            (7.0, 1.3), (8.0, 1.55), (10.0, 2.2)]
SPINNER_POSITION = (PLAYFIELD_WIDTH / 2, PLAYFIELD_HEIGHT / 2)  # where a spinner leaves the cursor
MAX_GAP_MS = 1000.0  # longer gaps are pauses, not jumps
QUANTILE = 0.9
# A map whose neighbours a gap of OVERLAP_GAP_MS or more apart overlap (centres STACK_PX to
# CLEAR_SHARE of a diameter apart) more often than this is continued without the floor: its
# mapper overlaps them on purpose. Ranked maps in the corpus: 1-12% (benchmarks/map_style.py).
CLEAR_SHARE, MAX_OVERLAP_SHARE = 0.8, 0.2
# stars -> distance snap's spread (core.spacing_limit): ranked maps differ by a median 1-2.4%
# between neighbouring moves of one gap up to 4.5 stars, 11-19% above (map_style); 5% is a 4 px
# cell at 80 px. A continuation keeps at least MIN_SPREAD of freedom.
_SPREAD = [(2.0, 0.05), (3.0, 0.07), (4.5, 0.12), (5.5, 0.25), (7.0, 0.35)]
MIN_SPREAD = 0.1
SNAP_MOVES = 8  # moves of one gap a map needs before its distance for that gap is read
# ... and the share of them within SNAP_TOLERANCE of their median: the corpus's ranked maps put
# 0.6-1.0 of their commonest gap's moves within 10% of its median up to 4 stars (but one, 0.15),
# 0.1-0.5 from 4.5 stars (but one, 0.78): jumps, not distance snap
SNAP_SHARE, SNAP_TOLERANCE = 0.5, 0.1
# the least ceiling a map's own spacing gives: a map whose objects are all stacked measures 0,
# which would forbid any move (and is no ceiling DecodingOptions takes); 0.05 px/ms stays
# within a circle's radius over the gaps of a stream
MIN_SPACING = 0.05


def observed_min_distance(beatmap: Beatmap, until_ms: float = math.inf,
                          minimum_pairs: int = 8) -> float | None:
    """The floor a continuation keeps to (DecodingOptions.min_distance): a circle's diameter,
    as ranked maps keep their neighbours OVERLAP_GAP_MS or more apart clear of each other;
    None where this map overlaps them by design (over MAX_OVERLAP_SHARE of them before
    `until_ms`, of at least `minimum_pairs`: fewer tell nothing, as in a dense Insane)."""
    diameter = circle_diameter(beatmap.difficulty.cs)
    clear = [not STACK_PX <= distance < CLEAR_SHARE * diameter
             for gap, distance in moves(beatmap, until_ms) if gap >= OVERLAP_GAP_MS]
    if len(clear) >= minimum_pairs and 1 - float(np.mean(clear)) > MAX_OVERLAP_SHARE:
        return None
    return diameter


def spread_for_stars(stars: float) -> float:
    """How far a move may stray from the last one of the same gap (DecodingOptions.
    spacing_spread) in a map of `stars`: ranked maps' median spreads, a little above."""
    return float(np.interp(stars, [s for s, _ in _SPREAD], [v for _, v in _SPREAD]))


def observed_spread(beatmap: Beatmap, until_ms: float = math.inf,
                    minimum_pairs: int = 8) -> float | None:
    """A continuation's spread: the map's own median difference between neighbouring moves of
    the same gap before `until_ms` (at least MIN_SPREAD); None with fewer pairs to tell."""
    made = list(moves(beatmap, until_ms))
    spreads = [abs(d1 - d2) / max(d1, d2) for (g1, d1), (g2, d2) in itertools.pairwise(made)
               if abs(g1 - g2) <= SAME_GAP_MS and max(d1, d2) >= STACK_PX]
    if len(spreads) < minimum_pairs:
        return None
    return max(float(np.median(spreads)), MIN_SPREAD)


def observed_snap_distances(beatmap: Beatmap, until_ms: float = math.inf,
                            minimum_moves: int = SNAP_MOVES) -> tuple[tuple[float, float], ...]:
    """The map's own distance snap before `until_ms`: (gap ms, median px) of each gap it moves
    over at least `minimum_moves` times (gaps within SAME_GAP_MS of each other are one: its
    snapped times fall on whole ms), its stacks (under STACK_PX) left out; none for a gap it
    mostly stacks, nor for one whose moves are not SNAP_SHARE within SNAP_TOLERANCE of their
    median. A mapper keeps one distance per rhythm: the Insane continued in QA kept 1/2 moves
    at 115 px (79% within 10%) where the new ones, each snapped to the last one's, drifted
    (12% within 10% of 115). A jump map does not: held to its median (145 px), a 5-star map's
    continuation lost its 74-210 px jumps and 0.5 of its stars (QA round 6)."""
    made = sorted(moves(beatmap, until_ms))
    out: list[tuple[float, float]] = []
    start = 0
    for end in range(1, len(made) + 1):
        if end < len(made) and made[end][0] - made[end - 1][0] <= SAME_GAP_MS:
            continue
        group = made[start:end]
        start = end
        spaced = np.array([d for _, d in group if d >= STACK_PX])
        if len(spaced) < minimum_moves or 2 * len(spaced) < len(group):
            continue
        median = float(np.median(spaced))
        if np.mean(np.abs(spaced - median) <= SNAP_TOLERANCE * median) >= SNAP_SHARE:
            out.append((float(np.median([g for g, _ in group])), median))
    return tuple(out)


def spacing_for_stars(stars: float) -> float:
    """The spacing ceiling for a map of `stars` (interpolated, clamped at the table's ends)."""
    keys = [s for s, _ in _TYPICAL]
    return float(np.interp(stars, keys, [v for _, v in _TYPICAL]))


def moves(beatmap: Beatmap, until_ms: float = math.inf) -> Iterator[tuple[float, float]]:
    """(gap ms, distance px) from where each object ends to where the next one starts, for the
    objects (not spinners) that start before `until_ms` and follow the previous one within
    MAX_GAP_MS."""
    last: tuple[float, float] | None = None
    last_end = 0.0
    for obj in beatmap.hit_objects:
        if obj.time >= until_ms:
            break
        gap = obj.time - last_end
        if last is not None and 0 < gap <= MAX_GAP_MS and not isinstance(obj, Spinner):
            yield gap, math.dist(last, (obj.x, obj.y))
        last, last_end = end_position(obj, beatmap.format_version), obj.end_time


def spacings(beatmap: Beatmap, until_ms: float = math.inf) -> list[float]:
    """px/ms of each of the map's moves (`moves`) before `until_ms`."""
    return [distance / gap for gap, distance in moves(beatmap, until_ms)]


def observed_spacing(beatmap: Beatmap, until_ms: float = math.inf,
                     minimum_jumps: int = 8) -> float | None:
    """The map's spacing ceiling (its QUANTILE, at least MIN_SPACING) over the objects before
    `until_ms`; None when it has fewer than `minimum_jumps` to measure."""
    values = spacings(beatmap, until_ms)
    if len(values) < minimum_jumps:
        return None
    return max(float(np.quantile(values, QUANTILE)), MIN_SPACING)


def end_position(obj: object, format_version: int) -> tuple[float, float]:
    """Where the cursor is when an object ends: a spinner at the centre, a slider at its tail
    (back at its head after an even number of spans)."""
    if isinstance(obj, Spinner):
        return SPINNER_POSITION
    if isinstance(obj, Slider) and obj.slides % 2 == 1:
        try:
            return slider_path(obj, format_version).end_position
        except (ValueError, ArithmeticError):  # a degenerate path ends where it starts
            pass
    return float(obj.x), float(obj.y)


JOIN_SLACK = 1.1  # a jump into a kept object this much over the ceiling is eased (lead_into)


def lead_into(previous: HitObject, circle: Circle, kept: HitObject, spacing: float,
              format_version: int, floor: float | None = None) -> bool:
    """Ease the last new object's jump into the first kept one, in place: where `circle`'s
    jump into `kept` is over JOIN_SLACK x `spacing` (px/ms), move it onto the line from where
    `previous` ends to `kept`, as far along as its time is but within the ceiling of
    `previous` (a jump between new objects keeps to the ceiling; the join is best effort), if
    that narrows the jump into `kept`. The decoding's join (core.spacing_limit) limits heads,
    not where a slider's body ends: after one, the last circle had jumped 2.5-4.9x the map's
    ceiling into the kept object. Not where the point is off the playfield, or within
    `floor` px of either end across a gap of OVERLAP_GAP_MS or more (an overlap). Whether it
    moved."""
    first = circle.time - previous.end_time
    second = kept.time - circle.time
    if first <= 0 or second <= 0:
        return False
    start, here, goal = end_position(previous, format_version), (circle.x, circle.y), \
        (kept.x, kept.y)
    if math.dist(here, goal) / second <= JOIN_SLACK * spacing:
        return False
    # as far along as its time is, but no further from `previous` than the ceiling reaches
    length = math.dist(start, goal)
    along = min(first / (first + second) * length, spacing * first) / max(length, 1e-9)
    moved = (round(start[0] + along * (goal[0] - start[0])),
             round(start[1] + along * (goal[1] - start[1])))
    if math.dist(moved, goal) / second >= math.dist(here, goal) / second:
        return False
    if not (0 <= moved[0] <= PLAYFIELD_WIDTH and 0 <= moved[1] <= PLAYFIELD_HEIGHT):
        return False
    if floor and any(gap >= OVERLAP_GAP_MS and math.dist(moved, end) < floor
                     for gap, end in ((first, start), (second, goal))):
        return False
    circle.x, circle.y = moved
    return True
