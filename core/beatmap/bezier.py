"""Bezier and B-spline sliders flattened to polylines, as osu-framework's PathApproximator.

Why a port, and the sources: `core.beatmap.approximator` (which keeps arcs and Catmull curves).
Beziers are subdivided in float64 (lazer: float32), which moves points by ~1e-5 px and could flip
a flatness test only for a piece within ~1e-6 of the tolerance 0.25; the output is rounded to
float32. Three-point Beziers (the most common) run in plain Python, which beats numpy's per-call
cost; higher orders evaluate a precomputed subdivision tree with a few matrix products. Both give
the same points as lazer's depth-first algorithm done in float64 (tests/test_curves.py checks it
bit for bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.beatmap.approximator import F32

# PathApproximator.BEZIER_TOLERANCE (0.25f): flat when |p[i-1] - 2p[i] + p[i+1]|^2 <= 0.25^2 * 4.
BEZIER_FLAT_SQ = 0.25 * 0.25 * 4
# Safety nets only: parsed coordinates (|x| <= 131072) flatten within ~12 halvings.
MAX_BEZIER_DEPTH = 40
MAX_BEZIER_PIECES = 1 << 20


def _subdivide(nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PathApproximator.bezierSubdivide for a batch (M, n, 2) of Bezier control points."""
    n = nodes.shape[1]
    mid = nodes.copy()
    left = np.empty_like(nodes)
    right = np.empty_like(nodes)
    left[:, 0] = mid[:, 0]
    right[:, n - 1] = mid[:, n - 1]
    for i in range(1, n):
        k = n - i
        mid[:, :k] = (mid[:, :k] + mid[:, 1:k + 1]) * 0.5
        left[:, i] = mid[:, 0]
        right[:, k - 1] = mid[:, k - 1]
    return left, right


def _flat_enough(nodes: np.ndarray) -> np.ndarray:
    """PathApproximator.bezierIsFlatEnough for a batch: every (p[i-1] - 2p[i] + p[i+1]) small.

    A NaN compares false, so it counts as flat, as in lazer.
    """
    if nodes.shape[1] < 3:
        return np.ones(nodes.shape[0], dtype=bool)
    d = (nodes[:, :-2] - 2.0 * nodes[:, 1:-1]) + nodes[:, 2:]
    d = d * d
    return ~((d[..., 0] + d[..., 1]) > BEZIER_FLAT_SQ).any(axis=1)


def _subdivide_until_flat(nodes: np.ndarray, starts: np.ndarray, width: float
                          ) -> tuple[np.ndarray, np.ndarray]:
    """PathApproximator's adaptive subdivision, a whole level of many pieces at a time.

    Lazer subdivides depth-first until each piece is flat. The leaves do not depend on the
    visiting order, so this splits every piece that is not flat at once; `starts` (curve index +
    where the piece starts on its curve) orders the leaves afterwards. Returns the leaves.
    """
    leaf_nodes: list[np.ndarray] = []
    leaf_starts: list[np.ndarray] = []
    for _ in range(MAX_BEZIER_DEPTH):
        flat = _flat_enough(nodes)
        if flat.all() or len(nodes) > MAX_BEZIER_PIECES:
            break
        if flat.any():
            leaf_nodes.append(nodes[flat])
            leaf_starts.append(starts[flat])
            nodes = nodes[~flat]
            starts = starts[~flat]
        left, right = _subdivide(nodes)
        width /= 2
        nodes = np.concatenate([left, right])
        starts = np.concatenate([starts, starts + width])
    leaf_nodes.append(nodes)
    leaf_starts.append(starts)
    return np.concatenate(leaf_nodes), np.concatenate(leaf_starts)


@dataclass(frozen=True)
class _Tree:
    """Bezier subdivision of order n as linear maps, precomputed down to `_TREE_DEPTH`.

    Node k (heap order: children 2k+1, 2k+2) has control points T[k] @ P; its second
    differences are S[k] @ P and its approximation (bezierApproximate) A[k] @ P. Every entry is a
    dyadic fraction, so a curve's whole subdivision tree costs a handful of matrix products.
    """

    transforms: np.ndarray  # (N, n, n)
    second: np.ndarray  # (N * (n - 2), n)
    approximate: np.ndarray  # (n - 1, n): bezierApproximate of a piece from its control points
    ancestors: np.ndarray  # (N, N): [a, k] = 1 where a is a proper ancestor of k
    starts: np.ndarray  # (N,) where each node starts on the curve
    deepest: slice  # the nodes of the last level


_TREE_DEPTH = 6
_trees: dict[int, _Tree] = {}


def _halves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The left and right halves of bezierSubdivide as n x n matrices."""
    left = np.zeros((n, n))
    right = np.zeros((n, n))
    for i in range(n):
        for k in range(i + 1):
            left[i, k] = math.comb(i, k) / 2.0 ** i
        j = n - 1 - i
        for k in range(i + 1):
            right[j, j + k] = math.comb(i, k) / 2.0 ** i
    return left, right


def _tree(n: int) -> _Tree:
    tree = _trees.get(n)
    if tree is not None:
        return tree
    left, right = _halves(n)
    count = 2 ** (_TREE_DEPTH + 1) - 1
    transforms = np.empty((count, n, n))
    transforms[0] = np.eye(n)
    starts = np.zeros(count)
    ancestors = np.zeros((count, count))
    for k in range(1, count):
        parent = (k - 1) // 2
        is_right = k % 2 == 0
        transforms[k] = (right if is_right else left) @ transforms[parent]
        depth = int(math.log2(k + 1))
        starts[k] = starts[parent] + (0.5 ** depth if is_right else 0.0)
        ancestors[:, k] = ancestors[:, parent]
        ancestors[parent, k] = 1.0
    second_difference = np.zeros((n - 2, n))
    for i in range(n - 2):
        second_difference[i, i:i + 3] = (1.0, -2.0, 1.0)
    full = np.vstack([left, right[1:]])
    approximate = np.zeros((n - 1, n))
    approximate[0, 0] = 1.0
    for i in range(1, n - 1):
        approximate[i] = 0.25 * (full[2 * i - 1] + 2.0 * full[2 * i] + full[2 * i + 1])
    tree = _Tree(transforms, (second_difference @ transforms).reshape(-1, n), approximate,
                 ancestors, starts, slice(2 ** _TREE_DEPTH - 1, count))
    _trees[n] = tree
    return tree


def _flatten_beziers(beziers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PathApproximator.BSplineToPiecewiseLinear's loop for a batch (M, n >= 3, 2) of Beziers.

    Finds the leaves of each curve's subdivision tree (a piece is a leaf when it is flat and
    none of its ancestors was), first among the precomputed top levels, then by subdividing
    what is still not flat there. Returns the points (without each curve's final point) and
    how many belong to each curve.
    """
    m, n = beziers.shape[:2]
    control = beziers.astype(np.float64)
    tree = _tree(n)
    count = len(tree.starts)
    d = np.matmul(tree.second, control)  # (M, N * (n - 2), 2)
    d = d * d
    # bezierIsFlatEnough (a NaN compares false, so it counts as flat, as in lazer)
    rough = ((d[..., 0] + d[..., 1]) > BEZIER_FLAT_SQ).reshape(m, count, n - 2).any(axis=2)
    examined = (~rough).astype(np.float64) @ tree.ancestors == 0  # no flat ancestor
    curve_index, node = np.nonzero(examined & ~rough)
    leaves = np.matmul(tree.transforms[node], control[curve_index])
    starts = curve_index + tree.starts[node]
    deeper = examined[:, tree.deepest] & rough[:, tree.deepest]
    if deeper.any():
        curve_index, node = np.nonzero(deeper)
        node += tree.deepest.start
        more, more_starts = _subdivide_until_flat(
            np.matmul(tree.transforms[node], control[curve_index]),
            curve_index + tree.starts[node], 0.5 ** _TREE_DEPTH)
        leaves = np.concatenate([leaves, more])
        starts = np.concatenate([starts, more_starts])
    order = np.argsort(starts, kind="stable")
    out = np.matmul(tree.approximate, leaves[order])  # (L, n - 1, 2)
    counts = np.bincount(starts.astype(np.int64), minlength=m) * (n - 1)
    return out.reshape(-1, 2).astype(F32), counts


def _py_flatten_quadratic(points: list[complex], out: list[complex]) -> None:
    """PathApproximator's depth-first subdivision of a three-point Bezier, appending to `out`.

    Points are complex numbers (x + iy) so that one Python operation moves both coordinates;
    adding them, and scaling them by 0.5, 2 or 0.25, is exactly the per-coordinate float math.
    """
    stack = [(points[0], points[1], points[2])]
    pieces = 0
    while stack:
        p0, p1, p2 = stack.pop()
        m01 = (p0 + p1) * 0.5
        m12 = (p1 + p2) * 0.5
        m = (m01 + m12) * 0.5
        d = (p0 - 2.0 * p1) + p2
        pieces += 1
        if d.real * d.real + d.imag * d.imag > 0.25 and pieces < MAX_BEZIER_PIECES:
            stack.append((m, m12, p2))
            stack.append((p0, m01, m))
            continue
        out.append(p0)
        out.append(((m01 + 2.0 * m) + m12) * 0.25)


def flatten_beziers(beziers: np.ndarray) -> list[np.ndarray]:
    """Approximate each Bezier of a batch (M, n, 2); returns each one's points and its end."""
    n = beziers.shape[1]
    if n != 3:
        points, counts = _flatten_beziers(beziers)
        ends = np.cumsum(counts)
        return [np.concatenate([points[end - count:end], curve[-1:]])
                for curve, end, count in zip(beziers, ends, counts, strict=True)]
    result = []
    for curve in beziers.astype(np.float64).view(np.complex128)[..., 0]:
        control = curve.tolist()
        out: list[complex] = []
        _py_flatten_quadratic(control, out)
        out.append(control[-1])
        result.append(np.array(out, dtype=np.complex128).view(np.float64).reshape(-1, 2)
                      .astype(F32))
    return result


def _bspline_to_beziers(cp: np.ndarray, degree: int) -> np.ndarray:
    """PathApproximator.bSplineToBezierInternal: Boehm's knot insertion, float32 (v128 only)."""
    points = [row.copy() for row in cp]
    count = len(points) - 1
    result = []
    for i in range(count - degree):
        sub = [points[i].copy()]
        for j in range(degree - 1):
            sub.append(points[i + 1].copy())
            for k in range(1, degree - j):
                ell = min(k, count - degree - i)
                points[i + k] = (F32(ell) * points[i + k] + points[i + k + 1]) / F32(ell + 1)
        sub.append(points[i + 1].copy())
        result.append(np.stack(sub))
    result.append(np.stack(points[count - degree:]))
    return np.stack(result)


def approximate_bspline(cp: np.ndarray, degree: int) -> np.ndarray:
    """PathApproximator.BSplineToPiecewiseLinear (Bezier when degree >= len(cp) - 1)."""
    if len(cp) < 2:
        return cp.copy()
    degree = min(degree, len(cp) - 1)
    if len(cp) == 2:  # flat at once: its first point, then the last
        return cp.copy()
    if degree == len(cp) - 1:
        return flatten_beziers(cp[None])[0]
    # Each piece's approximation without its end (the next piece starts there), then the end.
    pieces = flatten_beziers(_bspline_to_beziers(cp, degree))
    return np.concatenate([piece[:-1] for piece in pieces] + [cp[-1:]])


def approximate_bezier(cp: np.ndarray) -> np.ndarray:
    """PathApproximator.BezierToPiecewiseLinear, adaptive subdivision with tolerance 0.25."""
    return approximate_bspline(cp, max(1, len(cp) - 1))
