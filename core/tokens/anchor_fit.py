"""Choosing a slider's anchor cells so that its quantized path ends where the original's does.

Quantizing anchors to the grid moves each by at most ~2.8 px, but curvature amplifies it: a
perfect circle's arc can end 15 px away. Where the end misses by more than `GOOD_ENOUGH_PX`,
each anchor (a red-anchor pair moves as one) tries its 8 neighbouring cells, last anchor first,
keeping a move when the end gets closer (only the last `SEARCHED_GROUPS` anchors: they steer
the end most).

The search compares end positions from `approximate_end`, a fast numpy stand-in for lazer's path
(`core.beatmap.curves`, ~1 ms a slider): Bernstein-sampled Beziers, sampled circular arcs, the
same trimming and extension to the pixel length. Target and candidates are measured the same
way, so its small approximation error cancels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from typing import NamedTuple

import numpy as np

Point = tuple[float, float]
Cell = tuple[int, int]

GOOD_ENOUGH_PX = 3.0  # quantizing a head alone moves it up to 2.8 px
PASSES = 2
SEARCHED_GROUPS = 3  # the last anchors steer the end most; searching all costs 10x for ~nothing
_SAMPLES = 48  # points per Bezier or arc segment
_NEIGHBOURS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy]


@cache
def _bernstein(degree: int) -> np.ndarray:
    """(samples, degree + 1) Bernstein basis: `basis @ control_points` samples the curve."""
    t = np.linspace(0.0, 1.0, _SAMPLES)[:, None]
    k = np.arange(degree + 1)[None, :]
    binomial = np.array([math.comb(degree, i) for i in range(degree + 1)], dtype=float)
    return binomial * t**k * (1 - t) ** (degree - k)


class _Circle(NamedTuple):
    x: float
    y: float
    radius: float
    start: float  # angle of the first point
    direction: float  # +1 or -1: the way that passes through the middle point
    sweep: float  # angle from the first to the last point, that way round


def _circle(p: Sequence[Point]) -> _Circle | None:
    """The circle through three points, as CircularArcProperties; None when (nearly) colinear."""
    (ax, ay), (bx, by), (cx, cy) = p
    d = 2 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    if abs(d) < 1e-3:
        return None
    a2, b2, c2 = ax * ax + ay * ay, bx * bx + by * by, cx * cx + cy * cy
    ux = (a2 * (by - cy) + b2 * (cy - ay) + c2 * (ay - by)) / d
    uy = (a2 * (cx - bx) + b2 * (ax - cx) + c2 * (bx - ax)) / d
    start = math.atan2(ay - uy, ax - ux)
    direction = 1.0 if (bx - ax) * (cy - ay) - (by - ay) * (cx - ax) > 0 else -1.0
    sweep = (math.atan2(cy - uy, cx - ux) - start) * direction % (2 * math.pi)
    return _Circle(ux, uy, math.hypot(ax - ux, ay - uy), start, direction, sweep)


def _arc(p: np.ndarray) -> np.ndarray | None:
    """Samples of the circular arc through three points; None when they are colinear."""
    c = _circle(p.tolist())
    if c is None:
        return None
    angles = c.start + c.direction * np.linspace(0.0, c.sweep, _SAMPLES)
    return np.stack([c.x + c.radius * np.cos(angles), c.y + c.radius * np.sin(angles)], axis=1)


def _segment(letter: str, points: np.ndarray) -> np.ndarray:
    if letter == "L" or len(points) < 3:
        return points
    if letter == "P" and len(points) == 3:
        arc = _arc(points)
        return points if arc is None else arc
    if letter == "C":
        return points
    return _bernstein(len(points) - 1) @ points


def _line_end(a: Point, b: Point, length: float | None) -> Point:
    """The end of a one-segment line trimmed or extended to `length`."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    norm = math.hypot(dx, dy)
    if norm == 0 or length is None or length <= 0:
        return b
    return a[0] + dx / norm * length, a[1] + dy / norm * length


def _arc_end(p: Sequence[Point], length: float | None) -> Point | None:
    """The end of a circular arc through three points at arc length `length` (past the arc's end,
    along its tangent, as lazer extends the last path segment); None when colinear."""
    c = _circle(p)
    if c is None:
        return None
    if length is None or length <= 0:
        return p[2]
    angle = min(length / c.radius, c.sweep)
    theta = c.start + c.direction * angle
    x, y = c.x + c.radius * math.cos(theta), c.y + c.radius * math.sin(theta)
    beyond = length - angle * c.radius
    if beyond > 0:  # along the tangent at the arc's end
        x -= c.direction * math.sin(theta) * beyond
        y += c.direction * math.cos(theta) * beyond
    return x, y


def _segments(head: Point, points: Sequence[Point], curve: str,
              segment_types: dict[int, str]) -> list[tuple[str, list[Point]]]:
    """Split the control points as lazer does: at explicit letters (the point after a letter
    ends one segment and starts the next) and at red anchors (a repeated point)."""
    letter = segment_types.get(0, curve)[:1] or "B"
    segments: list[tuple[str, list[Point]]] = []
    current = [head]
    for index, point in enumerate(points):
        last = index == len(points) - 1
        if index > 0 and index in segment_types:
            current.append(point)
            segments.append((letter, current))
            letter, current = segment_types[index][:1], [point]
        elif point == current[-1] and not last:
            segments.append((letter, current))
            current = [point]
        else:
            current.append(point)
    segments.append((letter, current))
    return segments


def approximate_end(head: Point, points: Sequence[Point], curve: str,
                    segment_types: dict[int, str], length: float | None) -> Point:
    """Where a slider's path ends, to within a pixel or so of lazer's (see module docstring)."""
    segments = _segments(head, points, curve, segment_types)
    if len(segments) == 1:  # closed forms for the two commonest shapes, ~10x faster
        letter, chunk = segments[0]
        if len(chunk) == 2:
            return _line_end(chunk[0], chunk[1], length)
        if letter == "P" and len(chunk) == 3:
            end = _arc_end(chunk, length)
            if end is not None:
                return end
        if letter == "B" and length:
            return _polyline_end(_bernstein(len(chunk) - 1) @ np.asarray(chunk), length)
    pieces = [_segment(letter, np.asarray(chunk, dtype=float))
              for letter, chunk in segments if len(chunk) >= 2]
    if not pieces:
        return head
    return _polyline_end(np.concatenate(pieces), length)


def _polyline_end(path: np.ndarray, length: float | None) -> Point:
    """The end of a sampled path trimmed or extended to `length`, as lazer's calculateLength."""
    if len(path) < 2:
        return float(path[0][0]), float(path[0][1])
    steps = path[1:] - path[:-1]  # (n - 1, 2)
    cumulative = np.cumsum(np.sqrt(steps[:, 0] ** 2 + steps[:, 1] ** 2))
    total = float(cumulative[-1])
    if length is None or length <= 0:
        length = total
    if length >= total:
        last = steps[-1]
        norm = math.hypot(last[0], last[1])
        if norm == 0:  # stable does not extend past a repeated last point
            return float(path[-1][0]), float(path[-1][1])
        x, y = path[-1] + last / norm * (length - total)
        return float(x), float(y)
    i = int(np.searchsorted(cumulative, length))
    before = float(cumulative[i - 1]) if i else 0.0
    span = float(cumulative[i]) - before
    w = 0.0 if span == 0 else (length - before) / span
    x, y = path[i] + steps[i] * w
    return float(x), float(y)


class AnchorFit:
    """One slider's anchor search.

    The target is the original slider's end (its own head, anchors and pixel length); candidates
    are the decoded head and anchor cells under `decoded_length`, the length the reader will
    compute. `cell_point` turns a cell into the position the reader writes.
    """

    def __init__(self, original_head: Point, original_points: Sequence[Point],
                 original_length: float | None, decoded_head: Point, cells: list[Cell],
                 curve: str, segment_types: dict[int, str], decoded_length: float,
                 cell_point: Callable[[Cell], Point], bins: tuple[int, int]) -> None:
        self.cells = cells
        self.curve = curve
        self.segment_types = segment_types
        self.length = decoded_length
        self.cell_point = cell_point
        self.bins = bins
        self.head = decoded_head
        self.original_points = original_points
        self.target = approximate_end(original_head, original_points, curve, segment_types,
                                      original_length)

    def groups(self) -> list[list[int]]:
        """Runs of indices that must stay equal (red anchors), built only when searching."""
        groups: list[list[int]] = []
        cells, points = self.cells, self.original_points
        for index, cell in enumerate(cells):
            if index and cell == cells[index - 1] and points[index] == points[index - 1]:
                groups[-1].append(index)
            else:
                groups.append([index])
        return groups

    def error(self, cells: list[Cell]) -> float:
        points = [self.cell_point(c) for c in cells]
        end = approximate_end(self.head, points, self.curve, self.segment_types, self.length)
        return math.dist(end, self.target)

    def refine(self) -> list[Cell]:
        cells = self.cells
        best = self.error(cells)
        if best <= GOOD_ENOUGH_PX:
            return cells
        groups = self.groups()
        for _ in range(PASSES):
            if best <= GOOD_ENOUGH_PX:
                break
            improved = False
            for group in groups[: -SEARCHED_GROUPS - 1: -1]:
                for dx, dy in _NEIGHBOURS:
                    trial = list(cells)
                    for i in group:
                        trial[i] = (_clamp(cells[i][0] + dx, self.bins[0]),
                                    _clamp(cells[i][1] + dy, self.bins[1]))
                    if not _keeps_relations(trial, group):
                        continue
                    error = self.error(trial)
                    if error < best - 1e-6:
                        cells, best, improved = trial, error, True
            if not improved:
                break
        return cells


def _clamp(index: int, size: int) -> int:
    return min(max(index, 0), size - 1)


def _keeps_relations(cells: list[Cell], group: list[int]) -> bool:
    """A moved group must not merge with the anchors beside it."""
    before, after = group[0] - 1, group[-1] + 1
    if before >= 0 and cells[before] == cells[group[0]]:
        return False
    return not (after < len(cells) and cells[after] == cells[group[-1]])
