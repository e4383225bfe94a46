"""Sliders drawn with the fewest anchors that draw them (core.beatmap.slider_simplify)."""

from __future__ import annotations

import copy
import math

import numpy as np

from core.beatmap.curves import slider_path
from core.beatmap.model import CurveType, Slider
from core.beatmap.slider_simplify import SIMPLE_PX, simplify_path


def _bezier(anchors: list[tuple[float, float]], length: float) -> Slider:
    (x, y), *rest = anchors
    return Slider(x=x, y=y, time=0.0, curve_type=CurveType.BEZIER, points=rest, length=length)


def _end(slider: Slider) -> tuple[float, float]:
    return slider_path(slider, 14).end_position


def test_a_near_straight_many_anchor_bezier_becomes_a_line():
    # as the starter wrote one: 16 anchors 2-8 px apart along a 42.5 px run
    xs = [39, 42, 45, 47, 50, 53, 55, 58, 61, 63, 66, 69, 71, 74, 76, 78, 80]
    slider = _bezier([(x, 187 - (x - 39) * 8 / 41) for x in xs], 42.5)
    end = _end(slider)
    simplify_path(slider)
    assert slider.curve_type == CurveType.LINEAR and len(slider.points) == 1
    assert slider.length == 42.5 and math.dist(_end(slider), end) <= SIMPLE_PX
    assert all(float(v).is_integer() for v in slider.points[0])


def test_an_arc_drawn_by_many_anchors_becomes_a_perfect_circle():
    arc = Slider(x=100, y=200, time=0.0, curve_type=CurveType.PERFECT,
                 points=[(180, 150), (260, 200)], length=190.0)
    along = slider_path(arc, 14).points
    picks = np.linspace(0, len(along) - 1, 12).round().astype(int)
    slider = _bezier([tuple(map(float, p)) for p in along[picks]], 180.0)
    end, middle = _end(slider), slider_path(slider, 14).position_at(0.5)
    simplify_path(slider)
    assert slider.curve_type == CurveType.PERFECT and len(slider.points) == 2
    assert math.dist(slider.points[0], middle) <= 1.0
    assert math.dist(_end(slider), end) <= SIMPLE_PX


def test_a_winding_path_red_anchors_and_simple_sliders_stay():
    winding = _bezier([(100, 100), (150, 40), (200, 160), (250, 40), (300, 100)], 220.0)
    red = _bezier([(100, 100), (150, 100), (150, 100), (150, 150), (150, 200)], 140.0)
    arc = Slider(x=100, y=200, time=0.0, curve_type=CurveType.BEZIER,
                 points=[(180, 150), (260, 200)], length=150.0)
    for slider in (winding, red, arc):
        before = copy.deepcopy(slider)
        simplify_path(slider)
        assert slider == before
