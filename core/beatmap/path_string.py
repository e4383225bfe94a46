"""A slider's path string as lazer reads it: control points and their segment types.

A port of ppy/osu `osu.Game/Rulesets/Objects/Legacy/ConvertHitObjectParser.cs`
(`convertPathString`, `convertPoints`): the integer truncation before v128, float32 from v128,
and stable's edge cases (colinear perfect circles, red anchors, legacy Catmull paths). What the
game then does with the points is `core.beatmap.curves`.
"""

from __future__ import annotations

import math

from core.beatmap.approximator import F32, FLOAT_EPSILON
from core.beatmap.approximator import round_f32 as _f32
from core.beatmap.model import CurveType, Slider

FIRST_LAZER_VERSION = 128  # LegacyBeatmapEncoder.FIRST_LAZER_VERSION

Vec = tuple[float, float]


def coordinate(value: float, lazer_format: bool) -> float:
    """A coordinate as the parser reads it: `(int)` truncation before v128, float32 from v128.

    NaN and infinities (which lazer's parser rejects) pass through and poison the path.
    """
    if lazer_format or not math.isfinite(value):
        return _f32(value)
    return float(math.trunc(value))


def head(slider: Slider, format_version: int) -> tuple[float, float]:
    """The slider's head as the parser reads it (the origin its control points are relative to)."""
    lazer = format_version >= FIRST_LAZER_VERSION
    return coordinate(slider.x, lazer), coordinate(slider.y, lazer)


def control_points(slider: Slider, format_version: int) -> tuple[list[Vec], list[str | None]]:
    """Lazer's `PathControlPoint`s of a slider: head-relative positions and their segment types.

    A type (a curve letter, or "B<n>" for a v128 B-spline) starts a segment that runs to the next
    typed point, as in `SliderPath.calculatePath`. The first point is the head itself (0, 0).
    """
    lazer = format_version >= FIRST_LAZER_VERSION
    hx, hy = head(slider, format_version)
    if lazer:  # float32 subtraction, as `readPoint(...) - startPos` on Vector2
        points = [(_f32(coordinate(x, True) - hx), _f32(coordinate(y, True) - hy))
                  for x, y in slider.points]
    else:
        try:  # int() truncates like C#'s (int) cast
            points = [(float(int(x)) - hx, float(int(y)) - hy) for x, y in slider.points]
        except (ValueError, OverflowError):  # NaN or infinite
            points = [(coordinate(x, False) - hx, coordinate(y, False) - hy)
                      for x, y in slider.points]
    # convertPathString: the first segment is prepended by a zero point (the head); a letter in
    # the middle of the path starts an explicit segment at the point after it.
    allpoints: list[Vec] = [(0.0, 0.0), *points]
    starts = [(slider.curve_type or CurveType.CATMULL, 0)]
    for index in sorted(slider.segment_types):
        if 0 <= index < len(points):
            starts.append((slider.segment_types[index], index + 1))
    out_pos: list[Vec] = []
    out_types: list[str | None] = []
    for i, (letter, start) in enumerate(starts):
        if i + 1 < len(starts):
            end = starts[i + 1][1]
            _convert_points(letter, allpoints[start:end], allpoints[end], lazer, out_pos, out_types)
        else:
            _convert_points(letter, allpoints[start:], None, lazer, out_pos, out_types)
    return out_pos, out_types


def path_type(letter: str) -> str:
    """ConvertHitObjectParser.convertPathType: unknown letters are Catmull; "B3" a B-spline."""
    head = letter[:1]
    if head == "B":
        degree = letter[1:]
        return letter if degree.isdigit() and int(degree) > 0 else "B"
    if head in ("L", "P"):
        return head
    return "C"


def _is_linear(p: list[Vec]) -> bool:
    """ConvertHitObjectParser.isLinear: Precision.AlmostEquals(0, cross product) in float32."""
    (x0, y0), (x1, y1), (x2, y2) = (tuple(map(F32, q)) for q in p)
    cross = (y1 - y0) * (x2 - x0) - (x1 - x0) * (y2 - y0)
    return abs(float(cross)) <= FLOAT_EPSILON


def _convert_points(letter: str, points: list[Vec], end_point: Vec | None, lazer_format: bool,
                    out_pos: list[Vec], out_types: list[str | None]) -> None:
    """ConvertHitObjectParser.convertPoints: one explicit segment, split at repeated points.

    `end_point` (the next segment's first point) takes part in the edge-case rules but is not
    returned. A point equal to the one before it starts a new implicit segment (a red anchor),
    except in legacy Catmull paths and at the segment's last point.
    """
    ptype = path_type(letter)
    vertices = points + ([end_point] if end_point is not None else [])
    if not vertices:
        return  # lazer throws on `vertices[0]`; the object would be dropped
    end_len = 1 if end_point is not None else 0
    # Edge-case rules (to match stable).
    if ptype == "P":
        if len(vertices) != 3:
            ptype = "B"
        elif _is_linear(vertices):
            ptype = "L"  # osu-stable special-cased colinear perfect curves to a linear path
    types: list[str | None] = [None] * len(vertices)
    types[0] = ptype
    limit = len(vertices) - end_len
    start = 0
    end = 0
    while True:
        end += 1
        if end >= limit:
            break
        if vertices[end] != vertices[end - 1]:
            continue
        # Legacy Catmull sliders don't support multiple segments (not applied to the first point).
        if ptype == "C" and end > 1 and not lazer_format:
            continue
        # The last control point of each segment is not allowed to start a new implicit segment.
        if end == limit - 1:
            continue
        types[end - 1] = ptype
        out_pos.extend(vertices[start:end])
        out_types.extend(types[start:end])
        start = end + 1  # skip the repeated point: it is implicit in the path
    if end > start:
        out_pos.extend(vertices[start:end])
        out_types.extend(types[start:end])
