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


def test_a_continuation_redoes_breaks_only_around_its_new_objects():
    # the mapper's objects at 0, 1000, 4000 and 20000, new ones from 8000 (the first exactly at
    # `from`) to 12000
    beatmap = gapped_map(0, 1000, 4000, 8000, 12000, 20000)
    beatmap.events = ["2,1000,3000", "2,4500,6000", "2,9000,11000"]
    update_breaks(beatmap, within=(8000.0, 16000.0))
    # 1000-3000 lies before the stretch the continuation redid (from the mapper's object at
    # 4000 to theirs at 20000): it stays as it was, though it touches their object at 1000;
    # 4500-6000 and 9000-11000 were in it and are redone as lazer places them
    assert spans(beatmap) == [(1000.0, 3000.0), (4200.0, 7000.0), (8200.0, 11000.0),
                              (12200.0, 19000.0)]
    # new combos after the new breaks, on new objects only: not on the mapper's at 20000
    assert [o.new_combo for o in beatmap.hit_objects] == [False, False, False, True, True,
                                                          False]


def test_a_new_map_starts_a_combo_after_each_break():
    beatmap = gapped_map(0, 500, 5000, 5500)
    update_breaks(beatmap)
    assert [o.new_combo for o in beatmap.hit_objects] == [False, False, True, False]


def test_breaks_go_after_the_background_and_a_videos_commands():
    beatmap = gapped_map(0, 5000)
    beatmap.events = ['Video,0,"v.mp4"', " F,0,0,1000,0,1", 'Background,0,"bg.jpg"',
                      'Sprite,Foreground,Centre,"s.png",320,240', "_M,0,0,500,0,0"]
    update_breaks(beatmap)
    assert beatmap.events == ['Video,0,"v.mp4"', " F,0,0,1000,0,1", 'Background,0,"bg.jpg"',
                              "2,200,4000", 'Sprite,Foreground,Centre,"s.png",320,240',
                              "_M,0,0,500,0,0"]


def test_no_objects_no_breaks():
    beatmap = gapped_map()
    beatmap.events = ["2,100,5000"]
    update_breaks(beatmap)
    assert beatmap.events == []
