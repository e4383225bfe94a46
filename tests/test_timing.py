"""Control points and slider durations as lazer's decoder and osu! ruleset compute them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from corpus_files import resource

from core.beatmap.model import Beatmap, Difficulty, Slider, TimingPoint
from core.beatmap.parser import parse_file, parse_text
from core.beatmap.timing import (
    ControlPoints,
    annotate_sliders,
    precision_adjusted_beat_length,
    slider_duration,
    slider_velocity,
)


def red(time: float, beat: float) -> TimingPoint:
    return TimingPoint(time=time, beat_length=beat, uninherited=True)


def green(time: float, beat: float) -> TimingPoint:
    return TimingPoint(time=time, beat_length=beat, uninherited=False)


def test_timing_point_lookup_falls_back_to_the_first():
    cps = ControlPoints([red(1000, 500), red(5000, 400)])
    assert cps.timing_point_at(0).time == 1000  # before the first: the first
    assert cps.timing_point_at(4999.9).beat_length == 500
    assert cps.timing_point_at(5000).beat_length == 400
    assert cps.beat_length_at(1e9) == 400


def test_no_timing_at_all_is_60_bpm():
    cps = ControlPoints([])
    assert cps.beat_length_at(123) == 1000
    assert cps.slider_velocity_at(123) == 1


def test_beat_lengths_are_clamped_like_lazers_bindable():
    assert ControlPoints([red(0, 2)]).beat_length_at(0) == 6
    assert ControlPoints([red(0, 100_000)]).beat_length_at(0) == 60_000
    assert ControlPoints([red(0, 2)]).timing_point_at(0).beat_length == 2  # the file's value


def test_slider_velocity_from_inherited_points():
    cps = ControlPoints([red(0, 500), green(1000, -50), green(2000, -200), red(3000, 500),
                         green(4000, -1000), green(5000, -5), green(6000, 100)])
    assert cps.slider_velocity_at(-10) == 1  # before any point: the default
    assert cps.slider_velocity_at(500) == 1
    assert cps.slider_velocity_at(1000) == 2
    assert cps.slider_velocity_at(2500) == 0.5
    assert cps.slider_velocity_at(3000) == 1  # an uninherited point resets it
    assert cps.slider_velocity_at(4000) == 0.1  # clamped 0.1..10
    assert cps.slider_velocity_at(5000) == 10
    assert cps.slider_velocity_at(6000) == 1  # a positive inherited beat length means 1x


@pytest.mark.parametrize("order", ["red first", "green first"])
def test_inherited_point_at_the_same_time_as_a_timing_point_wins(order):
    lines = [red(1000, 500), green(1000, -50)]
    if order == "green first":
        lines.reverse()
    cps = ControlPoints(lines)
    assert cps.slider_velocity_at(1000) == 2
    assert cps.beat_length_at(1000) == 500


def test_last_of_several_inherited_points_at_one_time_wins():
    cps = ControlPoints([red(0, 500), green(1000, -50), green(1000, -200)])
    assert cps.slider_velocity_at(1000) == 0.5


def test_first_of_several_timing_points_at_one_time_wins():
    # Timing lines go to the front of lazer's pending list, which is read from the back.
    cps = ControlPoints([red(1000, 500), red(1000, 300)])
    assert cps.beat_length_at(1000) == 500


def test_negative_uninherited_beat_length_also_sets_slider_velocity():
    cps = ControlPoints([red(0, -50)])
    assert cps.beat_length_at(0) == 6
    assert cps.slider_velocity_at(0) == 2


def test_nan_slider_velocity_hides_ticks_and_keeps_1x():
    cps = ControlPoints([red(0, 500), green(1000, math.nan), green(2000, -100)])
    assert cps.slider_velocity_at(1500) == 1
    assert not cps.generate_ticks_at(1500)
    assert cps.generate_ticks_at(2500)


def test_nan_timing_point_is_rejected():
    cps = ControlPoints([red(0, math.nan), red(1000, 500)])
    assert cps.timing_point_at(0).time == 1000


def test_nan_control_points_from_lazers_tests(corpus: Path):
    beatmap = parse_file(resource(corpus, "nan-control-points.osu")).beatmap
    cps = ControlPoints(beatmap.timing_points)
    assert cps.timing_point_at(0).beat_length == 500  # the NaN bpm line is rejected
    assert cps.slider_velocity_at(2000) == 1 and not cps.generate_ticks_at(2000)
    assert cps.slider_velocity_at(3000) == 1 and cps.generate_ticks_at(3000)


def test_speed_multiplier_reset_from_lazers_tests(corpus: Path):
    beatmap = parse_file(resource(corpus, "timingpoint-speedmultiplier-reset.osu")).beatmap
    cps = ControlPoints(beatmap.timing_points)
    assert cps.slider_velocity_at(1000) == 0.5
    assert cps.slider_velocity_at(2000) == 1


def test_precision_adjusted_beat_length_goes_through_float32():
    assert precision_adjusted_beat_length(500, 1.0) == 500
    sv = 100 / 133.333333333333  # a green line of -133.333333333333
    expected = 500 * float(np.float32(100 / sv)) / 100
    assert precision_adjusted_beat_length(500, sv) == expected
    assert precision_adjusted_beat_length(500, sv) != 500 / sv  # the float32 step shows
    # osu! clamps the multiplier to 10..1000 (0.1x..10x), taiko and mania to 10..10000.
    assert precision_adjusted_beat_length(500, 0.05) == 500 * 10


def test_slider_duration_from_multiplier_velocity_and_beat():
    slider = Slider(x=0, y=0, time=1000, curve_type="L", points=[(140, 0)], length=140)
    difficulty = Difficulty(slider_multiplier=1.4)
    cps = ControlPoints([red(0, 500)])
    assert slider_velocity(slider, difficulty, cps) == pytest.approx(0.28)
    assert slider_duration(slider, difficulty, cps) == pytest.approx(500)
    slider.slides = 3
    assert slider_duration(slider, difficulty, cps) == pytest.approx(1500)
    fast = ControlPoints([red(0, 500), green(0, -50)])
    assert slider_duration(slider, difficulty, fast) == pytest.approx(750)


def test_slider_multiplier_is_clamped_as_lazer_reads_it():
    slider = Slider(x=0, y=0, time=0, curve_type="L", points=[(360, 0)], length=360)
    cps = ControlPoints([red(0, 1000)])
    assert slider_duration(slider, Difficulty(slider_multiplier=10), cps) == pytest.approx(1000)


def test_zero_length_sliders_use_their_path_length(corpus: Path):
    beatmap = parse_file(resource(corpus, "zero-length-sliders.osu")).beatmap
    linear = next(h for h in beatmap.hit_objects if isinstance(h, Slider))
    velocity = 100 * 0.799999999999999 / 260.869565217391
    assert linear.duration == pytest.approx(252 / velocity)


def test_annotate_sliders_never_raises_on_odd_data():
    beatmap = Beatmap(timing_points=[red(0, math.nan), green(10, math.inf), red(math.nan, 5)])
    beatmap.difficulty.slider_multiplier = math.nan
    odd = [
        Slider(x=math.nan, y=0, time=0, curve_type="B", points=[(1, 1), (2, 2)], length=100),
        Slider(x=0, y=0, time=math.inf, curve_type="L", points=[(10, 0)], length=100),
        Slider(x=0, y=0, time=0, curve_type="B", points=[(math.inf, 0)], length=None),
        Slider(x=0, y=0, time=0, curve_type="Q", points=[], length=None, slides=0),
        Slider(x=0, y=0, time=0, curve_type="P", points=[(1e9, 1), (3, -1e9)], length=50),
    ]
    beatmap.hit_objects = list(odd)
    annotate_sliders(beatmap)
    for slider in odd:
        assert slider.duration is not None and math.isfinite(slider.duration)
        assert slider.duration >= 0


def test_parser_annotates_every_slider():
    text = """osu file format v14

[Difficulty]
SliderMultiplier:1.4

[TimingPoints]
0,500,4,2,0,100,1,0

[HitObjects]
0,0,1000,2,0,L|140:0,1,140
"""
    slider = parse_text(text).beatmap.hit_objects[0]
    assert slider.duration == pytest.approx(500)
    assert slider.end_time == pytest.approx(1500)
