"""core.hitsounds: a continuation sounds like the map it continues; a new map's sections start
with a finish."""

from __future__ import annotations

import math
import shutil
import zipfile

from companion.continuation import continue_beatmap
from companion.mapping import Target, decoding_options, generate_beatmap
from core.audio import audio_features
from core.backbeat import clap_test
from core.beatmap.model import Beatmap, Circle, Slider, Spinner, TimingPoint
from core.beatmap.parser import parse_file
from core.beatmap.timing import ControlPoints
from core.decoding import DecodingOptions
from core.hitsound_copy import sound_points
from core.hitsounds import (
    CLAP,
    FINISH,
    WHISTLE,
    Pattern,
    apply_pattern,
    head_sets,
    head_sound,
    observed_pattern,
)
from core.sections import section_heads
from core.song_input import resolve
from tests.corpus_files import require_corpus, resource

BEAT = 500.0  # 120 BPM in 4/4: place = quarter beats into the bar


def at(beats: float, sound: int = 0) -> Circle:
    return Circle(x=100, y=100, time=1000.0 + beats * BEAT, hitsound=sound)


def timed(objects) -> Beatmap:
    return Beatmap(timing_points=[TimingPoint(1000.0, BEAT, meter=4)], hit_objects=objects)


def test_the_pattern_is_what_most_heads_at_a_place_carry():
    objects = []
    for bar in range(6):  # claps on 2 and 4; a whistle on every other downbeat
        objects += [at(4 * bar, WHISTLE if bar % 2 else 0), at(4 * bar + 1, CLAP),
                    at(4 * bar + 2), at(4 * bar + 3, CLAP), at(4 * bar + 3.5)]
    pattern = observed_pattern(timed(objects))
    assert pattern.additions == {(4, 4): CLAP, (4, 12): CLAP, (4, 0): WHISTLE}  # 3 of 6: half
    assert pattern.sets == {} and not pattern.finishes
    assert observed_pattern(timed(objects), until_ms=1000.0 + 8 * BEAT) is None  # 10 heads
    silent = timed([at(b) for b in range(30)])
    assert observed_pattern(silent) is None  # not hitsounded yet: nothing to continue
    assert observed_pattern(Beatmap(hit_objects=objects)) is None  # no bars


def test_new_objects_take_the_sounds_of_their_places():
    pattern = Pattern({(4, 4): CLAP, (4, 12): CLAP | WHISTLE})
    mapper = at(0, FINISH)
    slider = Slider(x=0, y=0, time=1000.0 + 5 * BEAT, points=[(100.0, 0.0)], slides=2,
                    length=100.0, duration=2 * BEAT)  # head on 2 (of bar 2), ends on 3, 4
    off = at(6.5)  # between the places the pattern names
    spinner = Spinner(x=256, y=192, time=1000.0 + 9 * BEAT, spinner_end=1000.0 + 11 * BEAT)
    beatmap = timed([mapper, at(1, WHISTLE), slider, off, spinner])
    apply_pattern(beatmap, pattern, (1000.0 + 0.5 * BEAT, math.inf))
    assert mapper.hitsound == FINISH  # before the span: the mapper's own
    assert beatmap.hit_objects[1].hitsound == CLAP  # its old additions replaced
    assert slider.edge_sounds == f"{CLAP}|0|{CLAP | WHISTLE}" and slider.hitsound == 0
    assert slider.edge_sets == "0:0|0:0|0:0"
    assert off.hitsound == 0 and spinner.hitsound == 0


def test_the_sets_and_finishes_a_map_uses_are_continued():
    """Drum claps on 2 and 4 (normal set soft, addition set drum), a finish where each
    section starts: a new clap's object gets the drum set, a new section its finish."""
    objects = []
    for section in range(3):  # 4 bars of claps, then 8 beats of silence: 3 sections
        start = section * 24
        objects.append(at(start, FINISH))
        for bar in range(4):
            beat = start + 4 * bar
            objects += [at(beat + 1, CLAP), at(beat + 2), at(beat + 3, CLAP)]
            if bar:
                objects.append(at(beat))
    objects.sort(key=lambda o: o.time)
    for obj in objects:
        if obj.hitsound & CLAP:
            obj.hit_sample = "2:3:0:0:"
    beatmap = timed(objects)
    pattern = observed_pattern(beatmap)
    assert pattern.additions == {(4, 4): CLAP, (4, 12): CLAP}
    assert pattern.sets == {(4, 4): (2, 3), (4, 12): (2, 3)}
    assert pattern.finishes
    new = [at(72), at(73), at(75.5)]
    beatmap.hit_objects += new
    apply_pattern(beatmap, pattern, (1000.0 + 72 * BEAT, math.inf))
    assert new[0].hitsound == FINISH  # 9 beats after the last object: a section starts
    assert new[1].hitsound == CLAP and head_sets(new[1]) == (2, 3)
    assert new[2].hitsound == 0 and head_sets(new[2]) == (0, 0)


def test_sections_start_with_a_finish():
    objects = [at(b) for b in range(4)] + [at(b) for b in range(20, 24)]
    beatmap = timed(objects)
    apply_pattern(beatmap, Pattern(finishes=True), (-math.inf, math.inf))
    assert [o.hitsound for o in beatmap.hit_objects] == [FINISH, 0, 0, 0, FINISH, 0, 0, 0]
    # after a break (a 5-beat gap: no pause by itself) and where kiai time starts
    objects = [at(b) for b in range(4)] + [at(b) for b in range(8, 16)]
    beatmap = timed(objects)
    beatmap.events = ["2,2700,4900"]
    beatmap.timing_points.append(TimingPoint(1000.0 + 12 * BEAT, -100.0, uninherited=False,
                                             effects=1))
    apply_pattern(beatmap, Pattern(finishes=True), (-math.inf, math.inf))
    assert [o.hitsound for o in beatmap.hit_objects] == [
        FINISH, 0, 0, 0, FINISH, 0, 0, 0, FINISH, 0, 0, 0]


def test_a_continuation_claps_where_the_mapper_does(starter_generator, tmp_path):
    """Renatus' Insane claps on 2 and 4 and whistles on the 'and' of 4 before 60 s, and puts a
    finish where its sections start; the continuation's new heads on those places carry the
    same, a finish where a section starts, and nothing on other places."""
    beatmap = parse_file(resource(require_corpus(), "Soleily - Renatus (Gamu) [Insane].osu")
                         ).beatmap
    with zipfile.ZipFile(require_corpus() / "osu-resources" / "triangles.osz") as z:
        audio = tmp_path / beatmap.audio_filename
        audio.write_bytes(z.read("audio.mp3"))
    from_ms, until_ms = 60_000.0, 80_000.0
    pattern = observed_pattern(beatmap, from_ms)
    result = continue_beatmap(starter_generator, beatmap, audio, from_ms, until_ms,
                              DecodingOptions(seed=1, max_tokens=400))
    red = [p for p in result.timing_points if p.uninherited]
    assert pattern.finishes
    starts = {obj.time for obj, starts in section_heads(result, ControlPoints(
        result.timing_points)) if starts}
    sounded = 0
    for obj in result.hit_objects:
        if not from_ms <= obj.time < until_ms or isinstance(obj, Spinner):
            continue
        point = next(p for p in reversed(red) if p.time <= obj.time + 1)
        quarters = (obj.time - point.time) / point.beat_length * 4
        head = head_sound(obj)
        if abs(quarters - round(quarters)) * point.beat_length / 4 <= 10:
            expected = pattern.additions.get((4, round(quarters) % 16), 0)
            assert head & 14 == expected | (FINISH if obj.time in starts else 0), obj
            sounded += head & 14 != 0
    assert sounded >= 5


def test_a_new_map_of_a_bare_song_starts_with_a_finish(starter_generator, timed_song, tmp_path):
    """A song with no maps has no hitsounds to copy (core.hitsound_copy): its new map gets a
    finish where its sections start, claps only where its snare plays the backbeat
    (core.backbeat), and no whistles made up."""
    folder, _ = timed_song
    audio = next(p for p in folder.iterdir() if p.suffix in (".ogg", ".wav", ".mp3"))
    (tmp_path / "bare").mkdir()
    shutil.copy(audio, tmp_path / "bare" / audio.name)
    made = generate_beatmap(starter_generator, resolve(tmp_path / "bare"), Target(stars=3.0),
                            decoding_options(seed=0), max_attempts=1).beatmap
    assert head_sound(made.hit_objects[0]) & FINISH
    claps = clap_test(audio_features(audio), made.timing_points)
    later = [o for o in made.hit_objects[1:] if not isinstance(o, Spinner)]
    for obj in later:
        for time, (additions, _) in sound_points(obj):
            assert not additions & WHISTLE
            assert bool(additions & CLAP) == (claps is not None and claps(time)), time
