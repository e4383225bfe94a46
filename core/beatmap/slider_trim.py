"""A slider's anchors cut (or drawn out) to where the slider ends.

osu! plays a slider for its pixel length along the path its anchors draw, and ignores the rest
of the path. A generated slider's length comes from its timing, so its anchors may draw far
more: 82% of generated sliders used under half their path, an anchor 284 px from a 24 px
slider. In the editor the unused anchors litter the playfield, and osu! stable recomputes the
length from them as soon as the slider is touched. Cutting the path at the length keeps what is
played, point for point: a polyline is cut on its segment, a Bezier split at the parameter
where its length runs out (de Casteljau), an arc's end moved back along its circle.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from core.beatmap.approximator import approximate_arc
from core.beatmap.curves import expected_distance, slider_path
from core.beatmap.model import PLAYFIELD_HEIGHT, PLAYFIELD_WIDTH, CurveType, Slider

Point = tuple[float, float]
SLACK_PX = 4.0  # paths at most this much longer than the slider are left as they are
MOVED_PX = 4.0  # a cut whose anchors (whole, within EDGE_PX of the playfield) move the end
# further: not made
SAMPLES = 256  # points per Bezier piece to measure it
EDGE_PX = 8.0  # how far past the playfield a cut's anchor may lie (core.playfield.ARC_MARGIN)


def trim_to_length(slider: Slider, format_version: int = 14) -> None:
    """Cut `slider`'s anchors to its length, in place, where its path runs on past it (L, P and
    B curves of one type; red anchors kept). Anchors are whole pixels as v14 writes them. A cut
    that would move the slider's end by over MOVED_PX (osu!'s own approximation of the curve
    differing from the exact one) is not made."""
    length = expected_distance(slider)
    if length is None or slider.segment_types or not slider.points:
        return
    if slider_path(dataclasses.replace(slider, length=None), format_version).distance \
            <= length + SLACK_PX:
        return
    played = slider_path(slider, format_version)
    points = [(float(slider.x), float(slider.y)), *map(_float_point, slider.points)]
    for cut, curve in _cuts(points, slider.curve_type, length):
        if cut is None:
            continue
        trimmed = dataclasses.replace(slider, points=[_whole(p) for p in cut[1:]],
                                      curve_type=curve)
        if trimmed.points and math.dist(slider_path(trimmed, format_version).end_position,
                                        played.end_position) <= MOVED_PX:
            slider.points, slider.curve_type = trimmed.points, trimmed.curve_type
            return


def _cuts(points: list[Point], curve: str, length: float
          ) -> list[tuple[list[Point] | None, str]]:
    """The cuts of a path of `curve` to `length` worth trying, as (anchors, curve letter)."""
    if curve == CurveType.LINEAR:
        return [(_cut_polyline(points, length), CurveType.LINEAR)]
    if curve == CurveType.PERFECT and len(points) == 3:
        if approximate_arc(np.asarray(points, np.float32)) is not None:
            return [(_cut_arc(points, length), CurveType.PERFECT)]
        # three points (nearly) on a line, an arc of 24k-250k px radius: osu! falls back to
        # a Bezier, whose approximation there can be the lines between them; whichever cut
        # ends where the slider is played is kept
        return [(_cut_polyline(points, length), CurveType.LINEAR),
                (_cut_beziers(points, length), CurveType.BEZIER)]
    if curve in (CurveType.BEZIER, CurveType.PERFECT):
        # osu! draws a "perfect circle" of other than 3 points as a Bezier: cut as one, say so
        return [(_cut_beziers(points, length), CurveType.BEZIER)]
    return []


def extend_to_length(slider: Slider, format_version: int = 14) -> None:
    """Draw `slider`'s anchors out to its length, in place, where it runs on past them (osu!
    then goes on in a straight line from the path's end, unseen in the editor: 118 generated
    sliders in 30 maps did, up to 127 px): a polyline's last anchor moved to where the slider
    ends, a Bezier given that straight line as a last segment (a red anchor, then the end).
    Arcs are left as osu! extends them. A change that moves the end over MOVED_PX is not made."""
    length = expected_distance(slider)
    if length is None or slider.segment_types or not slider.points or \
            slider.curve_type not in (CurveType.LINEAR, CurveType.BEZIER):
        return
    if slider_path(dataclasses.replace(slider, length=None), format_version).distance \
            >= length - SLACK_PX:
        return
    end = _whole(slider_path(slider, format_version).end_position)
    last = _float_point(slider.points[-1])
    if slider.curve_type == CurveType.LINEAR:
        points = [*slider.points[:-1], end]
    else:
        points = [*slider.points, _whole(last), end]
    drawn = dataclasses.replace(slider, points=points)
    if math.dist(slider_path(drawn, format_version).end_position, end) > MOVED_PX:
        return
    slider.points = points


def _float_point(point: tuple[float, float]) -> Point:
    return float(point[0]), float(point[1])


def _whole(point: Point) -> Point:
    """A whole-pixel anchor on the playfield or within EDGE_PX of it, where an arc's played
    part may graze its edge (clamped onto the playfield, the cut moved the end of such an arc
    past MOVED_PX and was not made: a 127.5 px arc kept anchors of a 686 px circle, QA)."""
    return (float(min(max(round(point[0]), -EDGE_PX), PLAYFIELD_WIDTH + EDGE_PX)),
            float(min(max(round(point[1]), -EDGE_PX), PLAYFIELD_HEIGHT + EDGE_PX)))


def _cut_polyline(points: list[Point], length: float) -> list[Point] | None:
    travelled = 0.0
    for i in range(1, len(points)):
        step = math.dist(points[i - 1], points[i])
        if step > 0 and travelled + step >= length:
            w = (length - travelled) / step
            (x0, y0), (x1, y1) = points[i - 1], points[i]
            return [*points[:i], (x0 + (x1 - x0) * w, y0 + (y1 - y0) * w)]
        travelled += step
    return None


def _cut_arc(points: list[Point], length: float) -> list[Point] | None:
    """The circle through head, middle and end, its end moved to `length` along it and its
    middle to half way; None for three points on a line (osu! draws those straight)."""
    (ax, ay), (bx, by), (cx, cy) = points
    d = 2 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    if abs(d) < 1e-6:
        return None
    a, b, c = ax**2 + ay**2, bx**2 + by**2, cx**2 + cy**2
    ux = (a * (by - cy) + b * (cy - ay) + c * (ay - by)) / d
    uy = (a * (cx - bx) + b * (ax - cx) + c * (bx - ax)) / d
    radius = math.dist((ux, uy), (ax, ay))
    start = math.atan2(ay - uy, ax - ux)
    turn = 1.0 if (bx - ax) * (cy - ay) - (by - ay) * (cx - ax) > 0 else -1.0
    swept = length / radius

    def at(angle: float) -> Point:
        return (ux + radius * math.cos(start + turn * angle),
                uy + radius * math.sin(start + turn * angle))

    return [(ax, ay), at(swept / 2), at(swept)]


def _cut_beziers(points: list[Point], length: float) -> list[Point] | None:
    """Bezier pieces joined at red anchors (a point repeated); the piece where `length` runs
    out is split there, the pieces after it dropped."""
    pieces, start = [], 0
    for i in range(1, len(points)):
        if points[i] == points[i - 1] or i == len(points) - 1:
            end = i if i == len(points) - 1 else i - 1
            pieces.append((start, end))
            start = i
    travelled = 0.0
    for first, last in pieces:
        control = np.array(points[first:last + 1])
        t = np.linspace(0.0, 1.0, SAMPLES * max(1, len(control) - 1))
        curve = _bezier(control, t)
        steps = np.hypot(*np.diff(curve, axis=0).T)
        total = float(steps.sum())
        if travelled + total >= length:
            cumulative = np.concatenate([[0.0], np.cumsum(steps)])
            split = float(np.interp(length - travelled, cumulative, t))
            left = _de_casteljau_left(control, split)
            return [*points[:first], *map(_float_point, left)]
        travelled += total
    return None


def _bezier(control: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points of the Bezier curve of `control` (n, 2) at parameters `t` (m,): (m, 2)."""
    n = len(control) - 1
    coefficients = np.array([math.comb(n, k) for k in range(n + 1)], dtype=float)
    powers = np.arange(n + 1)
    basis = coefficients * t[:, None] ** powers * (1 - t[:, None]) ** (n - powers)
    return basis @ control


def _de_casteljau_left(control: np.ndarray, t: float) -> np.ndarray:
    """The control points of the curve's part from 0 to `t`: the same curve, cut there."""
    left = [control[0]]
    level = control
    while len(level) > 1:
        level = (1 - t) * level[:-1] + t * level[1:]
        left.append(level[0])
    return np.array(left)
