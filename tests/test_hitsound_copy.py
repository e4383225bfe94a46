"""core.hitsound_copy: a new difficulty sounds like the set it joins, point by point where a
sibling has a point at the same time, by the place in the bar elsewhere."""

from __future__ import annotations

from companion.continuation import continue_beatmap
from companion.mapping import Target, decoding_options, generate_beatmap
from core.beatmap.model import Beatmap, Circle, Slider, Spinner, TimingPoint
from core.beatmap.parser import parse_file
from core.beatmap.timing import ControlPoints
from core.difficulty import star_rating
from core.hitsound_copy import SAME_MS, SetSounds, copy_set_hitsounds, hitsounded, sound_points
from core.hitsounds import CLAP, FINISH, WHISTLE, head_sets, head_sound, observed_pattern
from core.sections import section_heads
from core.song_input import resolve, set_siblings

BEAT = 500.0  # 120 BPM in 4/4


def at(beats: float, sound: int = 0, sets: str = "0:0:0:0:") -> Circle:
    return Circle(x=100, y=100, time=1000.0 + beats * BEAT, hitsound=sound, hit_sample=sets)


def timed(objects) -> Beatmap:
    return Beatmap(timing_points=[TimingPoint(1000.0, BEAT, meter=4)], hit_objects=objects)


def clapping(bars: int, skip: set[float] = frozenset()) -> list[Circle]:
    """Claps with drum additions on 2 and 4, a soft whistle on 1, for `bars` bars."""
    objects = []
    for bar in range(bars):
        for beat, sound, sets in ((0, WHISTLE, "2:0:0:0:"), (1, CLAP, "0:3:0:0:"),
                                  (2, 0, "0:0:0:0:"), (3, CLAP, "0:3:0:0:")):
            if 4 * bar + beat not in skip:
                objects.append(at(4 * bar + beat, sound, sets))
    return objects


def copied_where_matched(objects, library: SetSounds) -> int:
    """How many of the objects' sound points meet a sibling's point, asserting each of those
    carries that point's sound."""
    matched = 0
    for obj in objects:
        if isinstance(obj, Spinner):
            continue
        for time, sound in sound_points(obj):
            copied = library.at(time)
            if copied is not None:
                matched += 1
                assert sound == copied, (obj, time)
    return matched


def test_a_sliders_ends_are_its_sound_points():
    slider = Slider(x=0, y=0, time=1000.0, points=[(100.0, 0.0)], slides=2, length=100.0,
                    duration=1000.0, hitsound=WHISTLE, edge_sounds=f"{CLAP}|0",
                    edge_sets="0:3|1:0", hit_sample="2:0:0:0:")
    # the edge lists name two ends of three: the last falls back to the slider's own
    assert sound_points(slider) == [(1000.0, (CLAP, (0, 3))), (1500.0, (0, (1, 0))),
                                    (2000.0, (WHISTLE, (2, 0)))]
    spinner = Spinner(x=256, y=192, time=1000.0, spinner_end=3000.0, hitsound=FINISH)
    assert sound_points(spinner) == [(3000.0, (FINISH, (0, 0)))]
    assert not hitsounded(timed([at(0), at(1)])) and hitsounded(timed([at(0), at(1, CLAP)]))


def test_the_nearest_difficulty_with_a_point_there_gives_its_sound():
    near = timed([at(0, CLAP)])
    far = timed([at(0, WHISTLE), at(1, FINISH)])
    sounds = SetSounds([near, far])
    assert sounds.at(1000.0 + SAME_MS) == (CLAP, (0, 0))  # both have it: the nearer's
    assert sounds.at(1000.0 + BEAT - 3) == (FINISH, (0, 0))  # only the farther has it
    assert sounds.at(1000.0 + SAME_MS + 1) is None


def test_a_new_difficulty_copies_its_sets_sounds_by_time_then_by_place():
    """The sibling claps (drum) on 2 and 4 and whistles (soft) on 1 for 8 bars, but not in bar
    3: the new map's objects at its times get its sounds, a slider each end's; those on the
    same places where the sibling has no object (bar 3, and the 'and' of beats) follow its bar
    pattern; other places stay silent."""
    sibling = timed(clapping(8, skip={8, 9, 10, 11}))
    slider = Slider(x=0, y=0, time=1000.0 + 13 * BEAT, points=[(100.0, 0.0)], slides=1,
                    length=100.0, duration=2 * BEAT)  # head on 2 of bar 4, tail on 4
    new = [at(0), at(1), at(8), at(9), at(9.5), slider, at(20), at(21.5)]
    beatmap = timed(new)
    copied, placed = copy_set_hitsounds(beatmap, [sibling])
    assert (copied, placed) == (5, 4)  # beats 0, 1, 13, 15 and 20; 8, 9, 9.5 and 21.5
    assert [head_sound(o) for o in new[:5]] == [WHISTLE, CLAP, WHISTLE, CLAP, 0]
    assert [head_sets(o) for o in new[:5]] == [(2, 0), (0, 3), (2, 0), (0, 3), (0, 0)]
    assert slider.edge_sounds == f"{CLAP}|{CLAP}" and slider.edge_sets == "0:3|0:3"
    assert head_sound(new[6]) == WHISTLE and head_sound(new[7]) == 0


def test_a_sets_finishes_where_sections_start_follow_into_the_new_map():
    """Where the sibling starts a section on a point the new map lacks, the new map's section
    still starts with a finish, as the sibling's sections do."""
    objects = []
    for section in range(3):  # two bars, then 8 beats of silence
        objects += [at(16 * section, FINISH), *[at(16 * section + b) for b in range(1, 8)]]
    for obj in objects[1::2]:
        obj.hitsound = CLAP
    sibling = timed(objects)
    assert observed_pattern(sibling).finishes
    new = [at(0.5), at(1.5), at(16.5), at(17.5)]  # off the sibling's points
    beatmap = timed(new)
    copy_set_hitsounds(beatmap, [sibling])
    assert [head_sound(o) & FINISH for o in new] == [FINISH, 0, FINISH, 0]


def test_a_set_not_yet_hitsounded_gives_nothing_to_copy():
    """Nothing changes, and the caller keeps its own rule (a new map's finishes)."""
    sibling = timed([at(b) for b in range(40)])
    new = [at(b, CLAP if b == 2 else 0) for b in range(4)]
    assert copy_set_hitsounds(timed(new), [sibling]) is None
    assert copy_set_hitsounds(Beatmap(hit_objects=new), [timed(clapping(4))]) is None  # no bars
    assert [head_sound(o) for o in new] == [0, 0, CLAP, 0]


def test_a_generated_difficulty_sounds_like_its_set(starter_generator, timed_song):
    """A new difficulty of a synthetic song whose maps are hitsounded: each of its sound points
    at a sibling's point (the nearest difficulty's first) carries that point's sound, and it
    is hitsounded where the first version (finishes only) was not."""
    folder, _ = timed_song
    source = resolve(folder)
    made = generate_beatmap(starter_generator, source, Target(stars=3.0),
                            decoding_options(seed=0), max_attempts=1).beatmap
    siblings = [s for s in source.siblings_by_stars(3.0) if hitsounded(s)]
    assert siblings
    library = SetSounds(siblings)
    starts = {o.time for o, s in section_heads(made, ControlPoints(made.timing_points)) if s}
    matched = copied_where_matched(made.hit_objects, library)
    sounded = sum(sound[0] & (CLAP | WHISTLE) != 0 for obj in made.hit_objects
                  if not isinstance(obj, Spinner) for _, sound in sound_points(obj))
    assert matched >= len(made.hit_objects) // 2
    # claps and whistles beyond the finishes at section starts, which were all the first
    # version (finishes only) gave
    assert sounded >= 5
    assert sum(bool(head_sound(o) & (CLAP | WHISTLE)) for o in made.hit_objects
               if o.time not in starts) >= 5


def test_a_continuation_sounds_like_the_other_difficulties_of_its_set(starter_generator,
                                                                      timed_song):
    """Continuing the Normal of a hitsounded synthetic set from 12 s: its new points at the
    other difficulties' points carry their sounds (the nearest's first), its own file left out;
    its objects before 12 s keep theirs."""
    folder, _ = timed_song
    normal = parse_file(next(folder.glob("*[[]Normal[]].osu"))).beatmap
    from_ms = 12_000.0
    normal.hit_objects = [o for o in normal.hit_objects if o.time < from_ms]
    before = [(o.time, sound_points(o)) for o in normal.hit_objects]
    made = continue_beatmap(starter_generator, normal, folder / "audio.ogg", from_ms, None,
                            decoding_options(seed=0))
    siblings = set_siblings(folder / "audio.ogg", normal, star_rating(normal))
    assert siblings and all(s.version != "Normal" for s in siblings)
    library = SetSounds([s for s in siblings if hitsounded(s)])
    assert [(o.time, sound_points(o)) for o in made.hit_objects if o.time < from_ms] == before
    assert copied_where_matched([o for o in made.hit_objects if o.time >= from_ms],
                                library) >= 10


def test_sample_sets_alone_are_not_hitsounding_to_copy():
    """A set whose objects carry sample sets but no addition: the new map keeps its rule (a
    new map's finishes), not an empty pattern without them."""
    sibling = timed([at(b, 0, "2:0:0:0:") for b in range(40)])
    assert not hitsounded(sibling)
    assert copy_set_hitsounds(timed([at(b) for b in range(4)]), [sibling]) is None
