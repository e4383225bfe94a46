"""Slider paths exactly as osu!lazer computes them.

Why a port and not exact geometry: the game places a slider's tail, repeats and ticks on a
*piecewise-linear, float32* approximation of the curve, trimmed or extended to the file's pixel
length. An exact curve would put them somewhere else, and a few osu! quirks (colinear perfect
circles, red anchors, no extension after a repeated last point) change a slider's length outright.
Each rule cites the file it comes from:

- ppy/osu `osu.Game/Rulesets/Objects/Legacy/ConvertHitObjectParser.cs`: path string -> control
  points (`convertPathString`, `convertPoints`), in `core.beatmap.path_string`.
- ppy/osu `osu.Game/Rulesets/Objects/SliderPath.cs`: segments, joins, length, `PositionAt`.
- ppy/osu-framework `osu.Framework/Utils/PathApproximator.cs` and `CircularArcProperties.cs`:
  the approximation of each segment (in `core.beatmap.approximator`).

Points are float32 and relative to the slider head while they are computed, as lazer's
`PathControlPoint.Position`; `SliderPath.points` adds the head back.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core.beatmap.approximator import (
    F32,
    approximate_arc,
    approximate_catmull,
    optimise_catmull_path,
)
from core.beatmap.approximator import round_f32 as _f32
from core.beatmap.bezier import approximate_bspline, flatten_beziers
from core.beatmap.model import Slider
from core.beatmap.path_string import Vec, control_points, head

DOUBLE_EPSILON = 1e-7  # osu.Framework Precision.DOUBLE_EPSILON


@dataclass(eq=False)
class _Segment:
    """One segment of SliderPath.calculatePath: its vertices, type and approximation."""

    vertices: np.ndarray
    kind: str  # L, P, C, B or B<degree>; "1" for a lone vertex
    points: np.ndarray | None = None
    removed: float = 0.0  # length optimised out of a Catmull segment


def _segments(positions: list[Vec], types: list[str | None]) -> list[_Segment]:
    """SliderPath.calculatePath: a segment runs from a typed point to the next (or the end)."""
    count = len(positions)
    if count == 0:
        return []
    vertices = np.asarray(positions, dtype=F32)
    segments = []
    start = 0
    for i in range(count):
        if types[i] is None and i < count - 1:
            continue
        if i == start:  # no need to calculate a path for a single vertex
            segments.append(_Segment(vertices[i:i + 1], "1", vertices[i:i + 1]))
        else:
            segments.append(_Segment(vertices[start:i + 1], types[start] or "L"))
        start = i
    return segments


def _approximate(segments: list[_Segment], optimise_catmull: bool) -> None:
    """SliderPath.calculateSubPath for every segment; Beziers of one order are done together."""
    beziers: dict[int, list[_Segment]] = {}
    for seg in segments:
        if seg.points is not None:
            continue
        v = seg.vertices
        if seg.kind == "L":
            seg.points = v
            continue
        if seg.kind == "C":
            sub = approximate_catmull(v)
            seg.points, seg.removed = optimise_catmull_path(sub) if optimise_catmull else (sub, 0.0)
            continue
        if seg.kind == "P" and len(v) == 3:
            arc = approximate_arc(v)
            if arc is not None and len(arc):
                seg.points = arc
                continue
        # Bezier, or a perfect curve that fell back to one; a B<degree> is a B-spline.
        degree = int(seg.kind[1:]) if seg.kind[1:].isdigit() else len(v)
        if len(v) <= 2:
            seg.points = v
        elif degree >= len(v) - 1:
            beziers.setdefault(len(v), []).append(seg)
        else:
            seg.points = approximate_bspline(v, degree)
    for group in beziers.values():
        for seg, points in zip(group, flatten_beziers(np.stack([seg.vertices for seg in group])),
                               strict=True):
            seg.points = points


def _join(segments: list[_Segment]) -> tuple[np.ndarray, float]:
    """Concatenate the segments' points, skipping a first point equal to the previous last."""
    parts: list[np.ndarray] = []
    last: np.ndarray | None = None
    optimised = 0.0
    for seg in segments:
        part = seg.points
        assert part is not None
        optimised += seg.removed
        if (seg.kind != "1" and last is not None and len(part)
                and part[0, 0] == last[0] and part[0, 1] == last[1]):
            part = part[1:]
        if len(part):
            parts.append(part)
            last = part[-1]
    if not parts:
        return np.empty((0, 2), dtype=F32), optimised
    return (np.concatenate(parts) if len(parts) > 1 else parts[0].copy()), optimised


def calculate_path(positions: list[Vec], types: list[str | None],
                   optimise_catmull: bool = True) -> tuple[np.ndarray, float]:
    """SliderPath.calculatePath: (path points, length optimised out of Catmull segments)."""
    segments = _segments(positions, types)
    _approximate(segments, optimise_catmull)
    return _join(segments)


# ---------------------------------------------------------------------------------------------
# Length, trimming/extension and PositionAt (SliderPath.calculateLength / interpolateVertices)
# ---------------------------------------------------------------------------------------------


def calculate_length(path: np.ndarray, optimised: float, expected: float | None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """SliderPath.calculateLength: (path, cumulative lengths) after matching `expected`.

    Segment lengths are float32 (`Vector2.Length`) summed in double. The last segment is cut or
    extended so that the path is exactly `expected` long, except that osu!stable never extends a
    path whose last two points are equal, and a path that cannot be cut has distance 0.
    """
    count = len(path)
    cumulative = np.zeros(max(count, 1))
    calculated = optimised
    if count > 1:
        diff = path[1:] - path[:-1]
        diff *= diff
        seg = np.sqrt(diff[:, 0] + diff[:, 1])
        if optimised:  # calculatedLength starts at the length optimised out of Catmull pieces
            cumulative[1:] = np.cumsum(np.concatenate([[optimised], seg]))[1:]
        else:
            np.cumsum(seg, dtype=np.float64, out=cumulative[1:])
        calculated = cumulative[-1].item()
    if expected is None or calculated == expected:
        return path, cumulative
    if count >= 2:
        (ax, ay), (bx, by) = path[-2:].tolist()
        # In osu-stable, if the last two path points are equal, extension is not performed.
        if ax == bx and ay == by and expected > calculated:
            return path, np.concatenate([cumulative, [calculated]])
    end = count - 1  # the last length is always incorrect: it is replaced below
    if calculated > expected:
        # Trim every length (and its path point) at or beyond the expected distance.
        end = int(np.searchsorted(cumulative[:end], expected, side="left"))
    if end <= 0:
        return path[:1], np.zeros(1)  # the expected distance is negative or zero
    path = path[:end + 1].copy()
    cumulative = cumulative[:end + 1]
    (ax, ay), (bx, by) = path[end - 1:end + 1].tolist()
    # The direction of the segment to shorten or lengthen: osuTK's Normalized() scales by
    # 1 / Length; every step is a float32 operation.
    dx = _f32(bx - ax)
    dy = _f32(by - ay)
    length = _f32(math.sqrt(_f32(_f32(dx * dx) + _f32(dy * dy))))
    if length > 0:
        scale = _f32(1.0 / length)
        ux, uy = _f32(dx * scale), _f32(dy * scale)
    else:
        ux = uy = math.nan
    remaining = _f32(expected - cumulative[end - 1].item())
    path[end] = (_f32(ax + _f32(ux * remaining)), _f32(ay + _f32(uy * remaining)))
    cumulative[end] = expected
    return path, cumulative


@dataclass(eq=False)
class SliderPath:
    """A slider's path as lazer's `SliderPath` holds it after `ensureValid`.

    `points` are absolute osu!pixels (float32, head + lazer's head-relative path); `cumulative`
    are lengths along it (one more entry than points in stable's no-extension case, as lazer).
    """

    head: tuple[float, float]
    relative: np.ndarray
    cumulative: np.ndarray
    points: np.ndarray = field(init=False)
    distance: float = field(init=False)

    def __post_init__(self) -> None:
        self.points = self.relative + np.array(self.head, dtype=F32)
        self.distance = float(self.cumulative[-1]) if len(self.cumulative) else 0.0
        self._cum = self.cumulative.tolist()
        self._xy = self.relative.tolist()

    def relative_at(self, progress: float) -> tuple[float, float]:
        """SliderPath.PositionAt: the head-relative point at `progress` (0..1), float32 values."""
        if not progress > 0:  # also NaN
            progress = 0.0
        d = min(progress, 1.0) * self.distance
        path = self._xy
        if not path:
            return 0.0, 0.0
        i = bisect.bisect_left(self._cum, d)  # List<double>.BinarySearch, ~index when absent
        if i <= 0:
            return path[0][0], path[0][1]
        if i >= len(path):
            return path[-1][0], path[-1][1]
        d0 = self._cum[i - 1]
        d1 = self._cum[i]
        (x0, y0), (x1, y1) = path[i - 1], path[i]
        # Avoid division by an almost-zero number when two points are extremely close.
        if abs(d0 - d1) <= DOUBLE_EPSILON:
            return x0, y0
        # p0 + (p1 - p0) * (float)w, in float32 like osuTK's Vector2.
        w = _f32((d - d0) / (d1 - d0))
        return _f32(x0 + _f32(_f32(x1 - x0) * w)), _f32(y0 + _f32(_f32(y1 - y0) * w))

    def position_at(self, progress: float) -> tuple[float, float]:
        """Absolute position at `progress` along the path: `Position + Path.PositionAt(p)`."""
        x, y = self.relative_at(progress)
        return _f32(self.head[0] + x), _f32(self.head[1] + y)

    @property
    def end_position(self) -> tuple[float, float]:
        """Where the path ends (progress 1); a slider with an even span count ends at its head."""
        return self.position_at(1.0)


def expected_distance(slider: Slider) -> float | None:
    """ConvertHitObjectParser: a length <= 0 (or absent) is no expected distance at all."""
    length = slider.length
    if length is None:
        return None
    length = float(length)
    if not math.isfinite(length) or length <= 0:
        return None
    return length


def slider_paths(sliders: Sequence[Slider], format_version: int,
                 optimise_catmull: bool = True) -> list[SliderPath]:
    """The paths of many sliders of one map, each as `slider_path` gives it (their Beziers of
    one order are subdivided together).
    """
    per_slider = []
    every_segment: list[_Segment] = []
    for slider in sliders:
        segments = _segments(*control_points(slider, format_version))
        per_slider.append(segments)
        every_segment.extend(segments)
    with np.errstate(all="ignore"):
        _approximate(every_segment, optimise_catmull)
        paths = []
        for slider, segments in zip(sliders, per_slider, strict=True):
            path, optimised = _join(segments)
            path, cumulative = calculate_length(path, optimised, expected_distance(slider))
            paths.append(SliderPath(head(slider, format_version), path, cumulative))
    return paths


def slider_path(slider: Slider, format_version: int, optimise_catmull: bool = True) -> SliderPath:
    """The path of `slider` as osu!lazer's osu! ruleset computes it.

    `optimise_catmull` is lazer's `SliderPath.OptimiseCatmull`, which the osu! ruleset's `Slider`
    turns on (stable drops Catmull pieces shorter than 6 px); it only affects C curves.
    """
    return slider_paths([slider], format_version, optimise_catmull)[0]


def position_at_time(slider: Slider, path: SliderPath, duration: float, t: float
                     ) -> tuple[float, float]:
    """Where the slider ball is at time `t` (ms), spans alternating direction.

    Lazer's `CurvePositionAt(progress)` with progress = (t - start) / duration clamped to 0..1, as
    `DrawableSlider` does: p = progress * spans % 1, reversed on odd spans.
    """
    spans = max(1, int(slider.slides))
    if duration > 0 and math.isfinite(duration):
        progress = min(max((t - slider.time) / duration, 0.0), 1.0)
    else:
        progress = 1.0 if t >= slider.time + max(duration, 0.0) else 0.0
    p = progress * spans % 1
    if int(progress * spans) % 2 == 1:
        p = 1 - p
    return path.position_at(p)
