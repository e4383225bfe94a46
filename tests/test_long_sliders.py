"""core.object_mix's long-slider floor: sliders whose spans last about a beat, as many as ranked
maps have, where the starter made nearly all of them half a beat long."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from companion.mapping import Target, decoding_options, generate_beatmap
from core.beatmap.model import Beatmap, Slider, TimingPoint
from core.beatmap.timing import ControlPoints
from core.decoding import DecodingOptions
from core.map_rules import continuation_rules
from core.object_mix import (
    is_long,
    long_share_for_stars,
    observed_long_share,
    tilt_body_to_long,
    tilt_to_long,
)
from core.song_input import resolve

BEAT = 500.0


def slider(time: float, beats: float, slides: int = 1) -> Slider:
    return Slider(x=100, y=100, time=time, points=[(200.0, 100.0)], length=100.0,
                  slides=slides, duration=beats * BEAT * slides)


def test_a_long_slider_spans_most_of_a_beat():
    assert is_long(450.0, BEAT) and not is_long(440.0, BEAT)
    objects = [slider(i * 2000.0, 1.0 if i < 3 else 0.5) for i in range(10)]
    objects.append(slider(30_000.0, 0.5, slides=2))  # two half-beat spans: not long
    beatmap = Beatmap(timing_points=[TimingPoint(0.0, BEAT)], hit_objects=objects)
    assert observed_long_share(beatmap) == pytest.approx(3 / 11)
    assert observed_long_share(beatmap, until_ms=10_000.0) is None  # 5 sliders: too few
    assert continuation_rules(DecodingOptions(), beatmap, 40_000.0).long_share == \
        pytest.approx(3 / 11)
    assert long_share_for_stars(3.0) > long_share_for_stars(6.0) > 0


def test_short_ends_and_shifts_are_lowered_by_the_longs_missing():
    ends = torch.zeros(5)
    tilt_to_long(ends, slice(0, 5), 0.5, sliders=4, longs=0, body_ms=1000.0, beat_ms=BEAT)
    # spans of 1000, 500, 333, 250, 200 ms: the first two are long
    assert ends.tolist() == [0.0, 0.0, -6.0, -6.0, -6.0]
    ends = torch.zeros(5)
    tilt_to_long(ends, slice(0, 5), 0.5, sliders=4, longs=2, body_ms=1000.0, beat_ms=BEAT)
    assert ends.tolist() == [0.0] * 5  # the floor is met
    shifts = torch.zeros(4)
    tilt_body_to_long(shifts, torch.tensor([125.0, 250.0, 500.0, 1000.0]), 0.0, 0.3,
                      sliders=2, longs=0, beat_ms=BEAT)
    assert shifts.tolist() == pytest.approx([-1.8, -1.8, 0.0, 0.0])


def test_a_new_map_has_its_long_sliders(starter_generator, timed_song):
    folder, _ = timed_song
    shares = []
    for long_share in (None, 0.0, 0.6):
        options = dataclasses.replace(decoding_options(seed=0), long_share=long_share)
        made = generate_beatmap(starter_generator, resolve(folder), Target(stars=3.0), options,
                                max_attempts=1).beatmap
        timing = ControlPoints(made.timing_points)
        sliders = [o for o in made.hit_objects if isinstance(o, Slider)]
        assert len(sliders) >= 10
        shares.append(sum(is_long(o.duration / o.slides, timing.beat_length_at(o.time))
                          for o in sliders) / len(sliders))
    floor = long_share_for_stars(3.0)
    assert shares[0] >= floor - 0.1  # the stars' floor (None: the rule's default)
    assert shares[2] > shares[1] + 0.05  # a floor over the model's own raises it
