"""Slider paths on hand-written sliders: lengths, shapes and lazer's special rules."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.beatmap.bezier import MAX_BEZIER_PIECES, approximate_bezier, flatten_beziers
from core.beatmap.curves import position_at_time, slider_path, slider_paths
from core.beatmap.model import Slider
from core.beatmap.path_string import control_points
from core.beatmap.timing import path_distance, path_distances

V14 = 14
LAZER = 128


def make(head, points, curve="B", length=None, slides=1, segment_types=None) -> Slider:
    return Slider(x=head[0], y=head[1], time=1000, curve_type=curve, points=list(points),
                  segment_types=dict(segment_types or {}), slides=slides, length=length)


def close(a, b, tol=1e-3) -> bool:
    return math.dist(a, b) <= tol


# -- linear paths, trimming and extension ------------------------------------------------------


def test_linear_length_is_the_pixel_length():
    path = slider_path(make((100, 100), [(400, 500)], "L", length=500), V14)
    assert path.distance == 500
    assert close(path.end_position, (400, 500))
    assert close(path.position_at(0.5), (250, 300))


def test_linear_path_is_trimmed_to_a_shorter_pixel_length():
    path = slider_path(make((0, 0), [(100, 0), (100, 100)], "L", length=150), V14)
    assert path.distance == 150
    assert close(path.end_position, (100, 50))
    assert len(path.points) == 3  # the point beyond the length is gone, as in lazer


def test_linear_path_is_extended_along_its_last_segment():
    path = slider_path(make((0, 0), [(100, 0), (100, 100)], "L", length=260), V14)
    assert path.distance == 260
    assert close(path.end_position, (100, 160))


def test_without_pixel_length_the_path_keeps_its_own_length():
    path = slider_path(make((0, 0), [(30, 40), (30, 100)], "L", length=None), V14)
    assert path.distance == pytest.approx(110)


def test_head_alone_has_zero_distance():
    path = slider_path(make((50, 60), [], "B", length=100), V14)
    assert path.distance == 0
    assert path.end_position == (50, 60)
    assert path_distance(make((50, 60), [], "B", length=100), V14) == 0


def test_all_points_on_the_head_has_zero_distance():
    # The last two path points are equal, so stable's rule forbids extending it.
    path = slider_path(make((50, 60), [(50, 60)], "L", length=100), V14)
    assert path.distance == 0
    assert path.end_position == (50, 60)


# -- stable's no-extension rule ----------------------------------------------------------------


def test_no_extension_when_the_last_two_path_points_are_equal():
    slider = make((0, 0), [(100, 0), (100, 0)], "L", length=200)
    path = slider_path(slider, V14)
    assert path.distance == 100  # not extended to 200
    assert close(path.end_position, (100, 0))
    assert path_distance(slider, V14) == 100
    # Shorter pixel lengths still trim it.
    assert slider_path(make((0, 0), [(100, 0), (100, 0)], "L", length=60), V14).distance == 60


def test_a_bezier_ending_on_a_repeated_point_is_still_extended():
    # Lazer compares *path* points; a Bezier's approximation approaches its last control point
    # without repeating it, so the path is extended even though the anchors end in a red anchor.
    slider = make((0, 0), [(100, 100), (200, 0), (200, 0)], "B", length=400)
    path = slider_path(slider, V14)
    assert path.distance == 400
    assert path_distance(slider, V14) == 400


# -- perfect circles ---------------------------------------------------------------------------


def test_perfect_circle_arc_length_matches_the_circle():
    # A half circle of radius 100 through (0,100), (100,0), (200,100), centre (100,100).
    slider = make((0, 100), [(100, 0), (200, 100)], "P", length=None)
    path = slider_path(slider, V14)
    # The arc is a polygon of equal chords, each bulging at most 0.1 px from the circle
    # (PathApproximator's circular_arc_tolerance): ceil(pi / (2 acos(1 - 0.1 / 100))) points.
    pieces = math.ceil(math.pi / (2 * math.acos(1 - 0.1 / 100))) - 1
    # The head, then the arc's own points: its first is cos/sin of the start angle, a hair
    # from the head (lazer joins segments without duplicates only when points are equal).
    assert len(path.points) == pieces + 2
    assert tuple(path.points[0]) == (0, 100)
    assert path.distance == pytest.approx(2 * 100 * pieces * math.sin(math.pi / pieces / 2),
                                          abs=1e-3)
    assert math.pi * 100 - 0.15 < path.distance < math.pi * 100
    assert close(path.end_position, (200, 100))
    # Every approximated point lies on the circle.
    radii = np.hypot(path.points[:, 0] - 100, path.points[:, 1] - 100)
    assert np.allclose(radii, 100, atol=1e-3)
    # The arc bulges through the middle point, not the other way round.
    assert close(path.position_at(0.5), (100, 0), tol=0.3)


def test_perfect_circle_quarter_arc_at_its_pixel_length():
    quarter = math.pi * 100 / 2
    slider = make((0, 100), [(100 - 100 * math.cos(math.pi / 4), 100 - 100 * math.sin(math.pi / 4)),
                             (100, 0)], "P", length=quarter)
    # Integer anchors as osu! truncates them: (29, 29) is a hair off the circle, fine here.
    path = slider_path(slider, V14)
    assert path.distance == pytest.approx(quarter)
    assert close(path.end_position, (100, 0), tol=0.6)


def test_colinear_perfect_curve_becomes_linear():
    slider = make((0, 0), [(50, 50), (100, 100)], "P", length=None)
    _positions, types = control_points(slider, V14)
    assert types[0] == "L"
    path = slider_path(slider, V14)
    assert path.points.tolist() == [[0, 0], [50, 50], [100, 100]]
    assert path.distance == pytest.approx(100 * math.sqrt(2), rel=1e-6)


def test_colinear_perfect_curve_doubling_back_is_linear():
    slider = make((0, 0), [(100, 0), (50, 0)], "P", length=None)
    assert slider_path(slider, V14).distance == pytest.approx(150)


def test_perfect_curve_with_other_than_three_points_is_a_bezier():
    slider = make((0, 0), [(50, 80), (120, 90), (200, 0)], "P", length=None)
    _, types = control_points(slider, V14)
    assert types[0] == "B"
    cp = np.array([(0, 0), (50, 80), (120, 90), (200, 0)], dtype=np.float32)
    assert np.array_equal(slider_path(slider, V14).points, approximate_bezier(cp))


# -- Bezier approximation ----------------------------------------------------------------------


def test_bezier_approximation_is_flat_within_tolerance_and_ends_on_its_anchors():
    cp = np.array([(0, 0), (100, 300), (300, -200), (400, 100)], dtype=np.float32)
    points = approximate_bezier(cp)
    assert tuple(points[0]) == (0, 0) and tuple(points[-1]) == (400, 100)
    t = np.linspace(0, 1, 2001)[:, None]
    exact = ((1 - t) ** 3 * cp[0] + 3 * (1 - t) ** 2 * t * cp[1] + 3 * (1 - t) * t ** 2 * cp[2]
             + t ** 3 * cp[3])
    # Every approximated point is within the 0.25 px tolerance of the true curve...
    nearest = np.min(np.linalg.norm(points[:, None, :] - exact[None], axis=2), axis=1)
    assert nearest.max() < 0.25
    # ...and the polyline is as long as the curve to a fraction of a pixel.
    polyline = np.sum(np.linalg.norm(np.diff(points, axis=0), axis=1))
    assert polyline == pytest.approx(np.sum(np.linalg.norm(np.diff(exact, axis=0), axis=1)),
                                     abs=0.5)


def lazer_flatten(points: list[complex], out: list[complex]) -> None:
    """PathApproximator's depth-first subdivision of one Bezier, transcribed (in float64).

    Points are complex numbers (x + iy) so that one Python operation moves both coordinates;
    adding them, and scaling them by 0.5, 2 or 0.25, is exactly the per-coordinate float math.
    """
    n = len(points)
    stack = [points]
    pieces = 0
    while stack:
        p = stack.pop()
        flat = True
        for a, b, c in zip(p, p[1:], p[2:], strict=False):  # bezierIsFlatEnough
            d = (a - 2.0 * b) + c
            if d.real * d.real + d.imag * d.imag > 0.25:
                flat = False
                break
        # bezierSubdivide: each row of De Casteljau's triangle averages neighbours of the one
        # before; the left half is every row's first point, the right half every row's last.
        left = [p[0]]
        right = [p[-1]]
        row = p
        for _ in range(n - 1):
            row = [(a + b) * 0.5 for a, b in pairwise(row)]
            left.append(row[0])
            right.append(row[-1])
        right.reverse()
        pieces += 1
        if not flat and pieces < MAX_BEZIER_PIECES:
            stack.append(right)
            stack.append(left)
            continue
        # bezierApproximate: the first point, then 0.25 (l[2i-1] + 2 l[2i] + l[2i+1]).
        sub = left + right[1:]
        out.append(p[0])
        out.extend(((sub[k - 1] + 2.0 * sub[k]) + sub[k + 1]) * 0.25
                   for k in range(2, 2 * n - 2, 2))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-600, 600), st.integers(-600, 600)), min_size=3,
                max_size=14))
def test_subdivision_tree_matches_lazers_depth_first_subdivision(points):
    """The batched tree evaluator gives the same points as lazer's depth-first algorithm."""
    cp = np.array(points, dtype=np.float32)
    reference: list[complex] = []
    lazer_flatten([complex(x, y) for x, y in points], reference)
    reference.append(complex(*points[-1]))
    expected = np.array(reference).view(np.float64).reshape(-1, 2).astype(np.float32)
    assert np.array_equal(flatten_beziers(cp[None])[0], expected)


# -- red anchors and explicit segments ---------------------------------------------------------


def test_red_anchor_starts_a_new_segment():
    slider = make((0, 0), [(100, 100), (200, 0), (200, 0), (300, 100)], "B", length=None)
    positions, types = control_points(slider, V14)
    assert positions == [(0, 0), (100, 100), (200, 0), (300, 100)]
    assert types == ["B", None, "B", None]
    path = slider_path(slider, V14)
    # The corner is on the path, and the second segment is the straight line after it.
    corner = [i for i, p in enumerate(path.points.tolist()) if p == [200, 0]]
    assert len(corner) == 1
    assert path.points.tolist()[corner[0]:] == [[200, 0], [300, 100]]
    first = approximate_bezier(np.array([(0, 0), (100, 100), (200, 0)], dtype=np.float32))
    length = np.sum(np.linalg.norm(np.diff(first, axis=0), axis=1)) + math.hypot(100, 100)
    assert path.distance == pytest.approx(length, rel=1e-6)


def test_repeated_last_point_does_not_start_a_segment():
    _, types = control_points(make((0, 0), [(100, 0), (100, 0)], "B"), V14)
    assert types == ["B", None, None]


def test_legacy_catmull_keeps_repeated_points_in_one_segment():
    slider = make((0, 0), [(100, 0), (100, 0), (200, 50)], "C")
    positions, types = control_points(slider, V14)
    assert positions == [(0, 0), (100, 0), (100, 0), (200, 50)]
    assert types == ["C", None, None, None]
    # From v128 (lazer's format) they split like any other curve.
    positions, types = control_points(slider, LAZER)
    assert positions == [(0, 0), (100, 0), (200, 50)]
    assert types == ["C", "C", None]


def test_catmull_point_equal_to_the_head_is_dropped():
    positions, _types = control_points(make((10, 10), [(10, 10), (100, 0), (200, 0)], "C"), V14)
    assert positions == [(0, 0), (90, -10), (190, -10)]


def test_catmull_passes_through_its_knots():
    slider = make((0, 0), [(100, 50), (200, 0), (300, 80)], "C", length=None)
    path = slider_path(slider, V14, optimise_catmull=False)
    for knot in [(0, 0), (100, 50), (200, 0), (300, 80)]:
        assert np.min(np.linalg.norm(path.points - np.array(knot), axis=1)) < 1e-3
    optimised = slider_path(slider, V14)
    # OptimiseCatmull keeps fewer points but the length it removed still counts.
    assert len(optimised.points) < len(path.points)
    assert optimised.distance == pytest.approx(path.distance, abs=1e-3)


def test_explicit_segments_of_lazers_format():
    # B|100:0|L|100:100|200:0 (v128, as LegacyBeatmapEncoder writes it): the letter comes
    # before the point that ends one segment and starts the next.
    slider = make((0, 0), [(100, 0), (100, 100), (200, 0)], "B", segment_types={1: "L"})
    positions, types = control_points(slider, LAZER)
    assert positions == [(0, 0), (100, 0), (100, 100), (200, 0)]
    assert types == ["B", None, "L", None]
    path = slider_path(slider, LAZER)
    quadratic = approximate_bezier(np.array([(0, 0), (100, 0), (100, 100)], dtype=np.float32))
    assert path.points.tolist() == [*quadratic.tolist(), [200, 0]]


def test_explicit_perfect_segment_with_its_end_point_is_an_arc():
    # P|100:0|L|200:100|300:100: the P segment counts the next segment's first point
    # (convertPoints' endPoint), so it has three points and is an arc.
    slider = make((0, 100), [(100, 0), (200, 100), (300, 100)], "P", segment_types={1: "L"})
    _, types = control_points(slider, LAZER)
    assert types == ["P", None, "L", None]
    path = slider_path(slider, LAZER)
    assert path.distance == pytest.approx(math.pi * 100 + 100, abs=0.15)
    # With one more point before the letter it has four: a Bezier.
    four = make((0, 100), [(100, 0), (200, 100), (300, 100)], "P", segment_types={2: "L"})
    assert control_points(four, LAZER)[1] == ["B", None, None, "L"]


def test_legacy_coordinates_are_truncated_and_lazer_format_keeps_fractions():
    slider = make((10.9, 20.9), [(110.7, 20.2)], "L")
    assert slider_path(slider, V14).points.tolist() == [[10, 20], [110, 20]]
    lazer = slider_path(slider, LAZER).points
    assert np.allclose(lazer, [[10.9, 20.9], [110.7, 20.2]], atol=1e-4)


def test_bspline_of_lazers_format():
    slider = make((0, 0), [(100, 200), (200, -200), (300, 200), (400, 0)], "B3")
    path = slider_path(slider, LAZER)
    assert tuple(path.points[0]) == (0, 0) and tuple(path.points[-1]) == (400, 0)
    # A cubic B-spline over five points is smoother than the Bezier through the same points...
    bezier = slider_path(make((0, 0), slider.points, "B"), LAZER)
    assert not np.array_equal(path.points, bezier.points)
    # ...and degree 1 is the polyline itself.
    linear = slider_path(make((0, 0), slider.points, "B1"), LAZER)
    assert linear.points.tolist() == [[0, 0], [100, 200], [200, -200], [300, 200], [400, 0]]


# -- positions along the path and in time ------------------------------------------------------


def test_position_at_clamps_progress():
    path = slider_path(make((0, 0), [(100, 0)], "L", length=100), V14)
    assert path.position_at(-1) == (0, 0)
    assert path.position_at(2) == (100, 0)
    assert path.position_at(math.nan) == (0, 0)


def test_position_at_time_follows_repeats():
    slider = make((0, 0), [(100, 0)], "L", length=100, slides=3)
    path = slider_path(slider, V14)
    duration = 300.0
    at = lambda ms: position_at_time(slider, path, duration, slider.time + ms)  # noqa: E731
    assert close(at(0), (0, 0))
    assert close(at(50), (50, 0))
    assert close(at(100), (100, 0))
    assert close(at(120), (80, 0))  # coming back
    assert close(at(250), (50, 0))  # going out again
    assert close(at(300), (100, 0))  # odd span count: ends at the far end
    assert close(at(1000), (100, 0))
    two = make((0, 0), [(100, 0)], "L", length=100, slides=2)
    assert close(position_at_time(two, path, 200.0, two.time + 200), (0, 0))


# -- path_distance's shortcut agrees with the full computation ---------------------------------

_letters = st.sampled_from(["L", "B", "P", "C", "X"])


@st.composite
def sliders(draw):
    count = draw(st.integers(0, 7))
    coordinate = st.integers(-100, 612)
    points = []
    for _ in range(count):
        if points and draw(st.integers(0, 4)) == 0:
            points.append(points[-1])  # a red anchor
        else:
            points.append((draw(coordinate), draw(coordinate)))
    segment_types = {}
    if count > 2 and draw(st.booleans()):
        segment_types[draw(st.integers(1, count - 1))] = draw(_letters)
    length = draw(st.one_of(st.none(), st.floats(0.5, 1500)))
    return make((draw(coordinate), draw(coordinate)), points, draw(_letters), length,
                segment_types=segment_types)


@settings(max_examples=400, deadline=None)
@given(sliders(), st.sampled_from([3, 5, 9, 14, 128]))
def test_path_distance_shortcut_equals_the_full_path(slider, version):
    assert path_distance(slider, version) == slider_path(slider, version).distance


@settings(max_examples=50, deadline=None)
@given(st.lists(sliders(), min_size=1, max_size=8))
def test_batched_paths_equal_single_paths(batch):
    together = slider_paths(batch, V14)
    for slider, path in zip(batch, together, strict=True):
        alone = slider_path(slider, V14)
        assert np.array_equal(path.points, alone.points)
        assert np.array_equal(path.cumulative, alone.cumulative)
    assert path_distances(batch, V14) == [path_distance(s, V14) for s in batch]


@settings(max_examples=200, deadline=None)
@given(sliders())
def test_paths_are_finite_and_lengths_nondecreasing(slider):
    path = slider_path(slider, V14)
    assert np.all(np.isfinite(path.points))
    assert np.all(np.diff(path.cumulative) >= 0)
    assert path.distance >= 0


def test_nan_anchors_do_not_raise():
    slider = make((0, 0), [(math.nan, 5), (100, 0)], "B", length=100)
    path = slider_path(slider, V14)
    assert len(path.points) >= 1
    assert path_distance(slider, V14) in (100.0, path.distance) or math.isnan(path.distance)
