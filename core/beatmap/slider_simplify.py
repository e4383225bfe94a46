"""A slider's path redrawn with the fewest anchors that draw it: a line, or an arc.

The starter ends some paths only at the anchor limit: in one new map 59 of 79 sliders were
16-anchor Beziers, anchors 2-8 px apart, nearly all within 3 px of a line or an arc (QA,
session 27). They play as drawn, but no mapper can edit them, and ranked maps have 0-1 such
sliders a map. Where the played path (its pixel length) lies within SIMPLE_PX of the straight
line from its head to its end, it becomes a linear slider with one anchor at its end; else
within SIMPLE_PX of the circle through its head, middle and end, a perfect-circle arc through
those three; else it stays. The length (and so the timing) is kept; anchors are whole pixels,
as v14 writes them, the redrawn end may move by SIMPLE_PX at most, and the redrawn path stays
within slider_trim's EDGE_PX of the playfield.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from core.beatmap.curves import slider_path
from core.beatmap.model import PLAYFIELD_HEIGHT, PLAYFIELD_WIDTH, CurveType, Slider
from core.beatmap.slider_trim import EDGE_PX

SIMPLE_PX = 3.0
MIN_ANCHORS = 3  # a slider with fewer anchors after its head is simple already


def simplify_path(slider: Slider, format_version: int = 14) -> None:
    """Redraw `slider`'s path, in place, as a line or an arc where one draws it (see the
    module docstring); a slider with red anchors or several curve types stays."""
    if len(slider.points) < MIN_ANCHORS or slider.segment_types or not slider.length \
            or any(a == b for a, b in zip(slider.points, slider.points[1:])):
        return
    try:
        played = slider_path(slider, format_version)
    except (ValueError, ArithmeticError):
        return
    points = played.points.astype(np.float64)
    if len(points) < 2:
        return
    head, end = points[0], points[-1]
    middle = np.array(played.position_at(0.5), dtype=np.float64)
    whole_end, whole_middle = _whole(end), _whole(middle)
    if whole_end == _whole(head):
        return
    candidates = []  # the simplest first
    if _line_deviation(points, head, end) <= SIMPLE_PX:
        candidates.append((CurveType.LINEAR, [whole_end]))
    if _arc_deviation(points, head, middle, end) <= SIMPLE_PX:
        candidates.append((CurveType.PERFECT, [whole_middle, whole_end]))
    for curve, anchors in candidates:
        redrawn = dataclasses.replace(slider, curve_type=curve, points=anchors)
        try:
            path = slider_path(redrawn, format_version)
        except (ValueError, ArithmeticError):
            continue
        drawn = path.points
        inside = bool((drawn >= -EDGE_PX).all() and (drawn[:, 0] <= PLAYFIELD_WIDTH + EDGE_PX).all()
                      and (drawn[:, 1] <= PLAYFIELD_HEIGHT + EDGE_PX).all())
        if inside and math.dist(path.end_position, tuple(end)) <= SIMPLE_PX:
            slider.curve_type, slider.points = curve, anchors
            return


def _whole(point: np.ndarray) -> tuple[float, float]:
    return float(round(point[0])), float(round(point[1]))


def _line_deviation(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The farthest any of `points` lies from the segment a-b."""
    direction = b - a
    t = np.clip((points - a) @ direction / float(direction @ direction), 0.0, 1.0)
    return float(np.max(np.hypot(*(points - (a + t[:, None] * direction)).T)))


def _arc_deviation(points: np.ndarray, a: np.ndarray, m: np.ndarray, b: np.ndarray) -> float:
    """The farthest any of `points` lies from the circle through a, m and b (infinite where
    they are in a line)."""
    (x1, y1), (x2, y2), (x3, y3) = a, m, b
    d = 2.0 * (x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2))
    if abs(d) < 1e-6:
        return math.inf
    s1, s2, s3 = x1 * x1 + y1 * y1, x2 * x2 + y2 * y2, x3 * x3 + y3 * y3
    cx = (s1 * (y2 - y3) + s2 * (y3 - y1) + s3 * (y1 - y2)) / d
    cy = (s1 * (x3 - x2) + s2 * (x1 - x3) + s3 * (x2 - x1)) / d
    radius = math.hypot(x1 - cx, y1 - cy)
    return float(np.max(np.abs(np.hypot(points[:, 0] - cx, points[:, 1] - cy) - radius)))
