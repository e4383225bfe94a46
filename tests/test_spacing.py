"""core.spacing: jumps measured from where objects end, and the ceiling decoding keeps to."""

from __future__ import annotations

import itertools
import math
import zipfile

import pytest
from corpus_files import require_corpus, resource

from companion.continuation import continue_beatmap
from companion.mapping import load_generator
from core.beatmap.model import Beatmap, Circle, Difficulty, Slider, Spinner, TimingPoint
from core.beatmap.parser import parse_file
from core.decoding import DecodingOptions
from core.spacing import (
    MIN_SPACING,
    end_position,
    observed_spacing,
    spacing_for_stars,
    spacings,
)


def small_map() -> Beatmap:
    beatmap = Beatmap()
    beatmap.difficulty = Difficulty(slider_multiplier=1.0)
    beatmap.timing_points = [TimingPoint(time=0.0, beat_length=500.0)]
    beatmap.hit_objects = [
        Circle(x=0, y=0, time=0),
        # 100 px to the right in 500 ms (velocity 100 px per beat), then a circle below its end
        Slider(x=100, y=0, time=200, curve_type="L", points=[(200, 0)], length=100.0,
               duration=500.0),
        Circle(x=200, y=100, time=900),
        Spinner(x=256, y=192, time=1200, spinner_end=2000),
        Circle(x=256, y=292, time=2100),
        Circle(x=0, y=0, time=4000),  # after a pause: no jump
    ]
    return beatmap


def test_jumps_are_measured_from_where_objects_end():
    beatmap = small_map()
    assert end_position(beatmap.hit_objects[1], 14) == pytest.approx((200.0, 0.0))
    # circle -> slider head: 100 px in 200 ms; slider end -> circle: 100 px in 200 ms;
    # the spinner is reached, not jumped to; spinner centre -> circle: 100 px in 100 ms
    assert spacings(beatmap) == pytest.approx([0.5, 0.5, 1.0])
    assert spacings(beatmap, until_ms=1000) == pytest.approx([0.5, 0.5])


def test_a_slider_with_an_even_number_of_spans_ends_at_its_head():
    slider = small_map().hit_objects[1]
    slider.slides = 2
    assert end_position(slider, 14) == (100.0, 0.0)


def test_too_few_jumps_tell_nothing():
    assert observed_spacing(small_map()) is None
    assert observed_spacing(small_map(), minimum_jumps=3) == pytest.approx(0.9)


def test_a_stacked_map_still_gives_a_ceiling_decoding_takes():
    beatmap = small_map()
    beatmap.hit_objects = [Circle(x=256, y=192, time=100 * i) for i in range(12)]
    assert spacings(beatmap) == [0.0] * 11
    assert observed_spacing(beatmap) == MIN_SPACING
    DecodingOptions(spacing=observed_spacing(beatmap))  # 0 px/ms was refused here


def test_the_ceiling_rises_with_the_stars():
    values = [spacing_for_stars(s) for s in (0.0, 1.0, 2.5, 4.0, 5.5, 7.0, 10.0, 12.0)]
    assert values == sorted(values) and len(set(values)) == len(values) - 2  # clamped ends


def test_a_continuation_keeps_the_maps_spacing(tmp_path):
    root = require_corpus()
    source = resource(root, "Soleily - Renatus (Gamu) [Insane].osu")
    beatmap = parse_file(source).beatmap
    # The ranked map's own mp3 is not in the corpus; a real track under its name stands in.
    with zipfile.ZipFile(root / "osu-resources" / "triangles.osz") as z:
        audio = tmp_path / beatmap.audio_filename
        audio.write_bytes(z.read("audio.mp3"))
    from_ms = 60_000.0
    ceiling = observed_spacing(beatmap, from_ms)
    assert 0.3 < ceiling < 3.0
    result = continue_beatmap(load_generator(None), beatmap, audio, from_ms, 80_000.0,
                              DecodingOptions(seed=1, max_tokens=400))
    new = [o for o in result.hit_objects if 60_000 <= o.time < 80_000]
    assert len(new) > 10
    checked = 0
    for previous, obj in itertools.pairwise(result.hit_objects):
        if not from_ms <= obj.time < 80_000 or not isinstance(previous, Circle) \
                or isinstance(obj, Spinner):
            continue
        gap = obj.time - previous.time
        # decoding measures in 10 ms steps before times snap to ticks (up to 10 ms closer),
        # and in 4 px cells (a circle of the mapper's may sit 3 px from its cell)
        reach = ceiling * (gap + 10.0) + 9.0
        assert math.dist((previous.x, previous.y), (obj.x, obj.y)) <= reach, (previous, obj)
        checked += 1
    assert checked >= 5
