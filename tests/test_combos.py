"""core.combos: new combos on the bars, about four objects each, whatever the density."""

from __future__ import annotations

import math

from companion.mapping import Target, decoding_options, generate_beatmap
from core.beatmap.model import Beatmap, Circle, Spinner, TimingPoint
from core.combos import ComboStyle, combo_style, set_new_combos
from core.song_input import resolve

BEAT = 500.0  # 120 BPM, 4/4: a bar is 2 s


def every(step_beats: float, count: int, start: float = 1000.0) -> list[Circle]:
    return [Circle(x=100, y=100, time=start + i * step_beats * BEAT) for i in range(count)]


def combo_starts(beatmap: Beatmap) -> list[float]:
    return [(o.time - 1000.0) / BEAT for o in beatmap.hit_objects if o.new_combo]


def timed(objects, points=None) -> Beatmap:
    return Beatmap(timing_points=points or [TimingPoint(1000.0, BEAT, meter=4)],
                   hit_objects=objects)


def test_combos_follow_the_bars_at_every_density():
    one = timed(every(1, 16))  # 1/1: a combo a bar
    set_new_combos(one)
    assert combo_starts(one) == [0, 4, 8, 12]
    half = timed(every(0.5, 16))  # 1/2: a combo a half bar
    set_new_combos(half)
    assert combo_starts(half) == [0, 2, 4, 6]
    sparse = timed(every(2, 10))  # two beats apart: a combo every two bars
    set_new_combos(sparse)
    assert combo_starts(sparse) == [0, 8, 16]


def test_an_offbeat_start_takes_the_first_object_after_the_line():
    beatmap = timed(every(1, 12, start=1000.0 + 0.5 * BEAT))  # every object half a beat late
    set_new_combos(beatmap)
    assert combo_starts(beatmap) == [0.5, 4.5, 8.5]


def test_spinners_and_red_lines_start_combos():
    objects = every(1, 6) + [Spinner(x=256, y=192, time=4000.0, spinner_end=5000.0)]
    objects += every(1, 3, start=5500.0)
    points = [TimingPoint(1000.0, BEAT, meter=4), TimingPoint(5250.0, BEAT, meter=4)]
    beatmap = timed(objects, points)
    set_new_combos(beatmap)
    assert [o.new_combo for o in beatmap.hit_objects] == [
        True, False, False, False, True, False,  # bar 2 at 3000 ms
        True,  # the spinner
        True, False, False]  # after it (and a new red line)


def test_a_continuation_sets_only_its_own_objects():
    mapper = every(1, 8)
    for obj in mapper:
        obj.new_combo = True  # the mapper's style: every object
    new = every(1, 8, start=1000.0 + 8 * BEAT)
    beatmap = timed(mapper + new)
    set_new_combos(beatmap, within=(1000.0 + 8 * BEAT, float("inf")))
    assert all(o.new_combo for o in mapper)
    # the combo the mapper's last object began has one object: three more before a bar starts
    # the next
    assert [o.new_combo for o in new] == [False] * 4 + [True] + [False] * 3
    untimed = Beatmap(hit_objects=every(1, 4))
    set_new_combos(untimed)  # no bars to follow: left alone
    assert not any(o.new_combo for o in untimed.hit_objects)


def test_a_continuation_follows_the_mappers_combos():
    """The QA's Insane started 30 of 30 combos on a bar line, its continuation 14 of 39 off
    one: a continuation takes the map's own combo style before it."""
    bars_only = timed(every(0.5, 96))  # 1/2 notes, a combo each bar line (8 objects)
    for i, obj in enumerate(bars_only.hit_objects):
        obj.new_combo = i % 8 == 0
    style = combo_style(bars_only, math.inf)
    assert style == ComboStyle(half_bars=False, bars=1, least=3)
    new = every(0.5, 16, start=1000.0 + 48 * BEAT)
    beatmap = timed(bars_only.hit_objects + new)
    set_new_combos(beatmap, within=(1000.0 + 48 * BEAT, math.inf), style=style)
    assert combo_starts(beatmap)[-2:] == [48, 52]  # bar lines only (no half bars: 50, 54)
    beatmap = timed(bars_only.hit_objects + every(0.5, 16, start=1000.0 + 48 * BEAT))
    set_new_combos(beatmap, within=(1000.0 + 48 * BEAT, math.inf))  # a new map's style
    assert combo_starts(beatmap)[-4:] == [48, 50, 52, 54]
    two_bars = timed(every(1, 80))
    for i, obj in enumerate(two_bars.hit_objects):
        obj.new_combo = i % 8 == 0
    assert combo_style(two_bars, math.inf).bars == 2
    easy = timed(every(2, 20))  # an Easy: a combo every bar, two objects each
    for obj in easy.hit_objects:
        obj.new_combo = (obj.time - 1000.0) % (4 * BEAT) == 0
    assert combo_style(easy, math.inf) == ComboStyle(half_bars=False, bars=1, least=2)
    assert combo_style(timed(every(1, 8)), math.inf) == ComboStyle()  # too few to tell
    # a start forced by a spinner, or starts on beat 2 (no half bar), are no half-bar use
    spun = timed(every(0.5, 96) + [Spinner(x=256, y=192, time=1000.0 + 48.25 * BEAT,
                                           spinner_end=1000.0 + 49 * BEAT)]
                 + every(0.5, 6, start=1000.0 + 49.5 * BEAT))
    for i, obj in enumerate(spun.hit_objects):
        obj.new_combo = (i < 96 and i % 8 == 0) or i == 97
    assert combo_style(spun, math.inf).half_bars is False
    second = timed(every(1, 48, start=1000.0 + BEAT))
    for i, obj in enumerate(second.hit_objects):
        obj.new_combo = i % 4 == 0  # every combo on beat 2
    assert combo_style(second, math.inf).half_bars is False


def test_a_generated_map_starts_its_combos_on_the_bars(starter_generator, timed_song):
    folder, truth = timed_song
    made = generate_beatmap(starter_generator, resolve(folder), Target(stars=4.0),
                            decoding_options(seed=0), max_attempts=1).beatmap
    red = truth[0]
    bar = red.beat_length * red.meter
    objects = made.hit_objects
    starts = [i for i, o in enumerate(objects) if o.new_combo and i > 0
              and not isinstance(o, Spinner) and not isinstance(objects[i - 1], Spinner)]
    assert len(starts) >= 5
    for i in starts:
        # no bar or half-bar line between the previous object and this one's start? then the
        # combo would have begun elsewhere
        half = bar / 2
        before = (objects[i - 1].time - red.time) / half
        at = (objects[i].time - red.time) / half
        assert int(at + 0.05) > int(before + 0.05) or \
            abs(objects[i].time - objects[i - 1].end_time) > 2 * bar, (objects[i - 1], objects[i])


def test_sections_start_combos_and_no_bar_leaves_one_object_alone():
    # two objects, 9 beats of silence, then 1/1 again: a new combo after the pause though the
    # combo before it has two objects
    objects = every(1, 2) + every(1, 8, start=1000.0 + 11 * BEAT)
    beatmap = timed(objects)
    set_new_combos(beatmap)
    assert combo_starts(beatmap) == [0, 11, 16]
    # kiai time from beat 6: a combo starts there, mid-bar
    beatmap = timed(every(1, 12), [TimingPoint(1000.0, BEAT, meter=4),
                                   TimingPoint(1000.0 + 6 * BEAT, -100.0, uninherited=False,
                                               effects=1)])
    set_new_combos(beatmap)
    assert combo_starts(beatmap) == [0, 4, 6, 10]
    # the bar at beat 4 would start a combo of one before the spinner: it joins the one before
    spinner = Spinner(x=256, y=192, time=1000.0 + 5 * BEAT, spinner_end=1000.0 + 8 * BEAT)
    objects = every(1, 5) + [spinner] + every(1, 4, 1000.0 + 9 * BEAT)
    beatmap = timed(objects)
    set_new_combos(beatmap)
    assert combo_starts(beatmap) == [0, 5, 9]
    last = timed(every(1, 5))  # ... and so does the map's last object
    set_new_combos(last)
    assert combo_starts(last) == [0]
