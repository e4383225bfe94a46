"""core.beatmap.breaks: break periods where lazer's editor puts them, none over an object."""

from __future__ import annotations

from core.beatmap.breaks import break_span, update_breaks
from core.beatmap.model import Beatmap, Circle, Difficulty, Slider, TimingPoint
from core.beatmap.timing import annotate_sliders


def gapped_map(*times: float, beat_length: float = 500.0) -> Beatmap:
    beatmap = Beatmap()
    beatmap.difficulty = Difficulty(slider_multiplier=1.0)
    beatmap.timing_points = [TimingPoint(time=0.0, beat_length=beat_length)]
    beatmap.hit_objects = [Circle(x=100, y=100, time=t) for t in times]
    return beatmap


def spans(beatmap: Beatmap) -> list[tuple[float, float]]:
    return [s for s in map(break_span, beatmap.events) if s is not None]


def test_a_long_gap_gets_a_break_with_lazers_margins():
    beatmap = gapped_map(0, 500, 5000, 5500, 6700)
    update_breaks(beatmap)
    # 200 ms after the circle at 500; two beats (1000 ms > 450) before the one at 5000. The
    # 1.2 s gap before 6700 leaves no 650 ms between its margins.
    assert spans(beatmap) == [(700.0, 4000.0)]
    assert beatmap.events == ["2,700,4000"]


def test_fast_tempos_keep_the_approach_time_before_the_next_object():
    beatmap = gapped_map(0, 3000, beat_length=150.0)  # two beats (300 ms) < 450 ms
    update_breaks(beatmap)
    assert spans(beatmap) == [(200.0, 2550.0)]


def test_a_slider_counts_until_its_end():
    beatmap = gapped_map(0, 5000)
    beatmap.hit_objects[0] = Slider(x=100, y=100, time=0, curve_type="L", points=[(300, 100)],
                                    length=200.0)
    annotate_sliders(beatmap)  # 200 px at 100 px per beat: 1000 ms
    update_breaks(beatmap)
    assert spans(beatmap) == [(1200.0, 4000.0)]


def test_breaks_over_objects_go_and_the_others_stay_in_place():
    beatmap = gapped_map(0, 500, 5000, 9000, 9500)
    beatmap.events = ['0,0,"bg.jpg",0,0', "2,600,2000", "Break,4800,8000",
                      "Sprite,Background,Centre,\"x.png\",320,240", " F,0,0,1000,0,1"]
    update_breaks(beatmap)
    # the mapper's 600-2000 stays (no auto break over it), 4800-8000 held the circle at 5000:
    # gone, and the 5000-9000 gap gets its own
    assert spans(beatmap) == [(600.0, 2000.0), (5200.0, 8000.0)]
    assert beatmap.events[0] == '0,0,"bg.jpg",0,0'
    assert beatmap.events[-2:] == ["Sprite,Background,Centre,\"x.png\",320,240",
                                   " F,0,0,1000,0,1"]


def test_within_adds_breaks_only_where_new_objects_are():
    beatmap = gapped_map(0, 4000, 8000, 12000)
    update_breaks(beatmap, within=(7000.0, 20000.0))
    # the gaps 0-4000 (the mapper's) stay as they were; 4000-8000 reaches into the span
    assert spans(beatmap) == [(4200.0, 7000.0), (8200.0, 11000.0)]


def test_no_objects_no_breaks():
    beatmap = gapped_map()
    beatmap.events = ["2,100,5000"]
    update_breaks(beatmap)
    assert beatmap.events == []
