"""core.beatmap.slider_trim: a slider's anchors cut where it ends, what is played unchanged."""

from __future__ import annotations

import dataclasses
import math

import pytest

from core.beatmap.curves import slider_path
from core.beatmap.model import Slider
from core.beatmap.slider_trim import (
    EDGE_PX,
    MOVED_PX,
    SLACK_PX,
    extend_to_length,
    trim_to_length,
)


def full_length(slider: Slider) -> float:
    """The length of the path the anchors draw, whatever the slider's own length."""
    return slider_path(dataclasses.replace(slider, length=None), 14).distance


@pytest.mark.parametrize("slider", [
    # seen in generated maps: a 716 px arc for a 140 px slider; an anchor 284 px from a 24 px one
    Slider(256, 264, 1238, curve_type="P", points=[(324, 272), (180, 8)], length=140.0),
    Slider(92, 120, 14386, curve_type="P", points=[(232, 220), (216, 376)], length=23.52),
    Slider(100, 100, 0, curve_type="L", points=[(200, 100), (200, 300), (400, 300)],
           length=150.0),
    Slider(100, 100, 0, curve_type="B", points=[(200, 100), (200, 300), (400, 300), (50, 50)],
           length=120.0),
    # a red anchor (a point repeated): the cut falls in the second piece, the first is kept
    Slider(272, 232, 336, curve_type="B", points=[(68, 252), (240, 280), (300, 100), (300, 100),
                                                  (400, 50), (484, 28)], length=400.0),
    # three points nearly on a line (the QA's, session 24): osu! draws a Bezier, not the arc
    Slider(308, 296, 128754, curve_type="P", points=[(36, 60), (248, 244)], length=69.9813),
    # an arc whose played part grazes the playfield's edge (to y 389.7; QA, session 27): its
    # cut anchors lie past the edge too, within EDGE_PX (clamped, the cut was not made)
    Slider(412, 288, 14983, curve_type="P", points=[(44, 196), (92, 104)], length=127.5),
], ids=["arc", "short arc", "polyline", "bezier", "red anchor", "near line", "grazing arc"])
def test_the_path_ends_where_the_slider_does_and_what_is_played_is_kept(slider):
    original = dataclasses.replace(slider, points=list(slider.points))
    played = slider_path(original, 14)
    assert full_length(original) > slider.length + 60
    trim_to_length(slider)
    assert abs(full_length(slider) - slider.length) <= 1.5
    after = slider_path(slider, 14)
    assert math.dist(after.end_position, played.end_position) <= MOVED_PX
    for progress in (0.25, 0.5, 0.75):  # the body follows the same curve
        assert math.dist(after.position_at(progress), played.position_at(progress)) <= 3
    assert all(float(x).is_integer() and float(y).is_integer() for x, y in slider.points)
    assert all(-EDGE_PX <= x <= 512 + EDGE_PX and -EDGE_PX <= y <= 384 + EDGE_PX
               for x, y in slider.points)
    if (300, 100) in original.points[:3]:
        assert slider.points[:4] == [(68, 252), (240, 280), (300, 100), (300, 100)]


def test_paths_that_end_near_the_slider_or_before_it_are_left_alone():
    """A path the slider runs past (osu! extends it straight) or within SLACK_PX of its end."""
    beyond = Slider(392, 120, 8633, curve_type="L", points=[(416, 164)], length=210.15)
    near = Slider(0, 0, 0, curve_type="L", points=[(100, 0)], length=100 - SLACK_PX / 2)
    for slider in (beyond, near):
        points = list(slider.points)
        trim_to_length(slider)
        assert slider.points == points


def test_three_points_on_a_line_are_cut_as_the_lines_osu_draws():
    """osu! cannot fit a circle through colinear points and draws the lines between them (here
    out to 256 and back to 64): the cut is on those lines, and the letter says L."""
    slider = Slider(164, 360, 0, curve_type="P", points=[(256, 360), (64, 360)], length=150.0)
    played = slider_path(slider, 14)
    trim_to_length(slider)
    assert slider.curve_type == "L" and abs(full_length(slider) - 150.0) <= 1.5
    assert slider.points == [(256, 360), (198, 360)]
    assert math.dist(slider_path(slider, 14).end_position, played.end_position) <= MOVED_PX


def test_a_slider_longer_than_its_anchors_has_them_drawn_out_to_its_end():
    line = Slider(x=100, y=100, time=0, curve_type="L", points=[(150.0, 100.0)], length=120.0)
    played = slider_path(line, 14).end_position
    extend_to_length(line)
    assert line.points == [(220.0, 100.0)]
    assert slider_path(dataclasses.replace(line, length=None), 14).end_position == played
    curve = Slider(x=100, y=100, time=0, curve_type="B",
                   points=[(150.0, 60.0), (200.0, 100.0)], length=220.0)
    played = slider_path(curve, 14).end_position
    drawn_before = slider_path(dataclasses.replace(curve, length=None), 14).distance
    assert drawn_before < 220.0 - SLACK_PX
    extend_to_length(curve)
    assert curve.points[:3] == [(150.0, 60.0), (200.0, 100.0), (200.0, 100.0)]  # a red anchor
    drawn = slider_path(dataclasses.replace(curve, length=None), 14)
    assert drawn.distance == pytest.approx(220.0, abs=SLACK_PX)
    assert math.dist(drawn.end_position, played) <= MOVED_PX
    arc = Slider(x=100, y=100, time=0, curve_type="P", points=[(150.0, 60.0), (200.0, 100.0)],
                 length=300.0)
    extend_to_length(arc)  # osu! goes on along the tangent: left as it is
    assert arc.points == [(150.0, 60.0), (200.0, 100.0)]
    short = Slider(x=100, y=100, time=0, curve_type="L", points=[(150.0, 100.0)], length=52.0)
    extend_to_length(short)  # within the slack: left alone
    assert short.points == [(150.0, 100.0)]
