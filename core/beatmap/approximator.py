"""Piecewise-linear approximation of slider curves, as osu-framework's PathApproximator.

Why a port: osu! places a slider's ball, ticks, repeats and tail on these polylines, so their
points and lengths are what a slider's shape and duration are made of. Sources (ppy/osu-framework):
`osu.Framework/Utils/PathApproximator.cs` (Bezier/B-spline with tolerance 0.25, circular arcs with
tolerance 0.1, Catmull with 50 pieces per knot) and `CircularArcProperties.cs`.

Numbers: arcs and Catmull curves are computed in float32 as lazer does. Beziers and B-splines
are in `core.beatmap.bezier`.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

F32 = np.float32
_HALF = F32(0.5)
_TWO = F32(2)
CATMULL_DETAIL = 50  # PathApproximator.catmull_detail
CIRCULAR_ARC_TOLERANCE = F32(0.1)  # PathApproximator.circular_arc_tolerance
FLOAT_EPSILON = float(F32(1e-3))  # osu.Framework Precision.FLOAT_EPSILON (a float)

_F32_STRUCT = struct.Struct("f")


def round_f32(x: float) -> float:
    """Round a Python float to float32 precision (the result of one C# `float` operation)."""
    try:
        return _F32_STRUCT.unpack(_F32_STRUCT.pack(x))[0]
    except OverflowError:  # beyond float32's range: infinity, as a C# float
        return math.copysign(math.inf, x)


@dataclass(frozen=True)
class _Arc:
    """osu.Framework CircularArcProperties (float32 geometry, double angles)."""

    theta_start: float
    theta_range: float
    direction: float
    radius: np.float32
    centre: np.ndarray


def _arc_properties(cp: np.ndarray) -> _Arc | None:
    """CircularArcProperties(controlPoints); None where lazer's IsValid is false."""
    (ax, ay), (bx, by), (cx, cy) = cp[0], cp[1], cp[2]
    # A degenerate triangle (a side-length almost zero): give up, fall back to a Bezier.
    if abs(float((by - ay) * (cx - ax) - (bx - ax) * (cy - ay))) <= FLOAT_EPSILON:
        return None
    d = _TWO * ((ax * (by - cy) + bx * (cy - ay)) + cx * (ay - by))
    a_sq = ax * ax + ay * ay
    b_sq = bx * bx + by * by
    c_sq = cx * cx + cy * cy
    centre = np.array([(a_sq * (by - cy) + b_sq * (cy - ay)) + c_sq * (ay - by),
                       (a_sq * (cx - bx) + b_sq * (ax - cx)) + c_sq * (bx - ax)], dtype=F32) / d
    da = cp[0] - centre
    dc = cp[2] - centre
    radius = np.sqrt(da[0] * da[0] + da[1] * da[1])
    theta_start = math.atan2(float(da[1]), float(da[0]))
    theta_end = math.atan2(float(dc[1]), float(dc[0]))
    while theta_end < theta_start:
        theta_end += 2 * math.pi
    direction = 1.0
    theta_range = theta_end - theta_start
    # Decide in which direction to draw the circle, depending on which side of AC B lies.
    ortho_x, ortho_y = cy - ay, -(cx - ax)
    if ortho_x * (bx - ax) + ortho_y * (by - ay) < 0:
        direction = -direction
        theta_range = 2 * math.pi - theta_range
    return _Arc(theta_start, theta_range, direction, radius, centre)


def _arc_point_count(arc: _Arc) -> int:
    """Points for the tolerance: ceil(range / (2 acos(1 - 0.1 / r))), at least 2."""
    if _TWO * arc.radius <= CIRCULAR_ARC_TOLERANCE:
        return 2
    step = 2 * math.acos(float(F32(1) - CIRCULAR_ARC_TOLERANCE / arc.radius))
    count = arc.theta_range / step
    if not math.isfinite(count):
        return 2 if math.isnan(count) else 1 << 30
    return max(2, math.ceil(count))


def approximate_arc(cp: np.ndarray) -> np.ndarray | None:
    """SliderPath.calculateSubPath's perfect-curve case; None means "use a Bezier instead".

    Lazer falls back to a Bezier when the three points are (almost) colinear and, since 2024, when
    the arc would need 1000 or more points (an arc length of ~120k px).
    """
    arc = _arc_properties(cp)
    if arc is None:
        return None
    count = _arc_point_count(arc)
    if count >= 1000:
        return None
    # PathApproximator.CircularArcToPiecewiseLinear
    fract = np.arange(count, dtype=np.float64) / (count - 1)
    theta = arc.theta_start + arc.direction * fract * arc.theta_range
    unit = np.stack([np.cos(theta), np.sin(theta)], axis=1).astype(F32)
    return arc.centre + unit * arc.radius


def approximate_catmull(cp: np.ndarray) -> np.ndarray:
    """PathApproximator.CatmullToPiecewiseLinear: 50 pieces per knot, each piece's two ends."""
    n = len(cp)
    if n < 2:
        return np.empty((0, 2), dtype=F32)
    v2 = cp[:-1]
    v3 = cp[1:]
    v1 = np.concatenate([cp[:1], cp[:-2]])
    v4 = np.empty_like(v2)
    v4[:-1] = cp[2:]
    v4[-1] = (v3[-1] + v3[-1]) - v2[-1]
    t = (np.arange(CATMULL_DETAIL + 1, dtype=F32) / F32(CATMULL_DETAIL))[None, :, None]
    t2 = t * t
    t3 = t * t2
    v1, v2, v3, v4 = (v[:, None, :] for v in (v1, v2, v3, v4))
    # catmullFindPoint, evaluated in C#'s order, float32 throughout.
    a = F32(2) * v2
    b = -v1 + v3
    c = ((F32(2) * v1 - F32(5) * v2) + F32(4) * v3) - v4
    d = ((-v1 + F32(3) * v2) - F32(3) * v3) + v4
    pts = _HALF * (((a + b * t) + c * t2) + d * t3)  # (knots, 51, 2)
    pairs = np.stack([pts[:, :-1], pts[:, 1:]], axis=2)  # point(c/50), point((c+1)/50)
    return pairs.reshape(-1, 2)


def optimise_catmull_path(sub: np.ndarray) -> tuple[np.ndarray, float]:
    """SliderPath.calculateSubPath with OptimiseCatmull (set by osu!'s Slider since 2025).

    Keeps a piece only once it is 6 px from its start, at each knot's last vertex and at the end,
    and returns the length it removed so that the path is not extended to make up for it.
    """
    if len(sub) == 0:
        return sub, 0.0
    xs = sub[:, 0].tolist()
    ys = sub[:, 1].tolist()
    diff = sub[1:] - sub[:-1]
    step = np.sqrt(diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1]).tolist()
    keep: list[int] = []
    removed = 0.0
    start: int | None = None
    since_start = 0.0
    last = len(xs) - 1
    segment_length = CATMULL_DETAIL * 2
    for i in range(len(xs)):
        if start is None:
            keep.append(i)
            start = i
            continue
        dx = round_f32(xs[i] - xs[start])
        dy = round_f32(ys[i] - ys[start])
        dist = round_f32(math.sqrt(round_f32(round_f32(dx * dx) + round_f32(dy * dy))))
        since_start += step[i - 1]
        # Either 6px from the start, the last vertex at every knot, or the end of the path.
        if dist > 6 or (i + 1) % segment_length == 0 or i == last:
            keep.append(i)
            removed += since_start - dist
            start = None
            since_start = 0.0
    return sub[keep], removed
