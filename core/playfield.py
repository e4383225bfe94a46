"""Sliders on the playfield: how long one may run before its end leaves it or its path crosses
itself (decoding's length rule) and perfect-circle arcs that would bulge out of it (made Beziers
through the same anchors).
"""

from __future__ import annotations

import math

import numpy as np

from core.beatmap.curves import slider_path
from core.beatmap.model import PLAYFIELD_HEIGHT, PLAYFIELD_WIDTH, CurveType, Slider

ARC_MARGIN = 8.0  # osu!pixels a perfect-circle arc may bulge past the playfield's edge


def curve_reach(slider: Slider) -> float:
    """How long a slider can be before its end leaves the playfield: its curve's length (as
    osu! computes it) plus the straight run from the curve's end to the edge; or before its
    path crosses itself (first_crossing: the starter's 18-anchor Beziers strewn over the
    playfield had played 800 px of a knot, QA session 28)."""
    curve_path = slider_path(slider, 14)
    crossing = first_crossing(curve_path.points)
    if crossing is not None:
        return crossing
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


def first_crossing(points: np.ndarray, spacing: float = 2.0) -> float | None:
    """How far along a path (N, 2) it first crosses itself (two segments, not neighbours,
    intersect; points under `spacing` px from the last kept dropped first): the distance to
    the start of the later segment; None where it never does."""
    kept = [points[0]]
    for point in points[1:]:
        if math.hypot(*(point - kept[-1])) >= spacing:
            kept.append(point)
    p = np.asarray(kept, dtype=np.float64)
    if len(p) < 4:
        return None
    a, d = p[:-1], np.diff(p, axis=0)

    def side(origin: np.ndarray, direction: np.ndarray, point: np.ndarray) -> np.ndarray:
        rel = point[None, :, :] - origin[:, None, :]  # the cross product, pairwise (i, j)
        return direction[:, None, 0] * rel[..., 1] - direction[:, None, 1] * rel[..., 0]

    ends = side(a, d, a) * side(a, d, a + d)  # < 0: segment j's ends on two sides of line i
    straddles = (ends < 0) & (ends.T < 0)
    straddles &= np.subtract.outer(np.arange(len(a)), np.arange(len(a))) <= -2  # i before j
    later = np.flatnonzero(straddles.any(axis=0))
    if not len(later):
        return None
    return float(np.hypot(*d[: later[0]].T).sum())
