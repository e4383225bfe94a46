"""Sliders on the playfield: how long one may run before its end leaves it (decoding's length
rule) and perfect-circle arcs that would bulge out of it (made Beziers through the same anchors).
"""

from __future__ import annotations

import math

from core.beatmap.curves import slider_path
from core.beatmap.model import PLAYFIELD_HEIGHT, PLAYFIELD_WIDTH, CurveType, Slider

ARC_MARGIN = 8.0  # osu!pixels a perfect-circle arc may bulge past the playfield's edge


def curve_reach(slider: Slider) -> float:
    """How long a slider can be before its end leaves the playfield: its curve's length (as
    osu! computes it) plus the straight run from the curve's end to the edge."""
    curve_path = slider_path(slider, 14)
    points = curve_path.points.tolist()
    (ax, ay), (bx, by) = next(((a, b) for a, b in zip(points[-2::-1], points[::-1]) if a != b),
                              (points[-1], points[-1]))
    length = math.hypot(bx - ax, by - ay)
    if length == 0:
        return math.inf
    ux, uy = (bx - ax) / length, (by - ay) / length
    beyond = min(_to_edge(bx, ux, PLAYFIELD_WIDTH), _to_edge(by, uy, PLAYFIELD_HEIGHT))
    return curve_path.distance + beyond


def keep_arc_inside(slider: Slider, format_version: int = 14) -> None:
    """A perfect-circle slider whose arc leaves the playfield becomes a Bezier through the same
    anchors (decoding then measures its length as such). Three anchors that double back make a
    huge circle; a Bezier stays within its anchors' hull, which decoding keeps on the
    playfield."""
    perfect = CurveType.PERFECT
    if slider.curve_type != perfect and perfect not in slider.segment_types.values():
        return
    points = slider_path(slider, format_version).points
    if ((points < -ARC_MARGIN).any() or (points[:, 0] > PLAYFIELD_WIDTH + ARC_MARGIN).any()
            or (points[:, 1] > PLAYFIELD_HEIGHT + ARC_MARGIN).any()):
        if slider.curve_type == perfect:
            slider.curve_type = CurveType.BEZIER
        slider.segment_types = {i: CurveType.BEZIER if letter == perfect else letter
                                for i, letter in slider.segment_types.items()}


def _to_edge(position: float, direction: float, size: float) -> float:
    """How far from `position` a line moving by `direction` per unit stays within 0..size."""
    if direction > 0:
        return max(size - position, 0.0) / direction
    if direction < 0:
        return max(position, 0.0) / -direction
    return math.inf
