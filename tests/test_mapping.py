"""companion.mapping's generate and continue: retries toward the requested star rating, the
spacing ceiling, breaks, silence, and the refusals (issue 6)."""

from __future__ import annotations

import itertools
import math
import re
import shutil

import click
import pytest
import soundfile as sf
from click.testing import CliRunner

import companion.mapping
from companion.cli import main as cli
from companion.cli.generate import parse_time_ms
from companion.continuation import continue_beatmap
from companion.mapping import (
    DENSITY_PER_EFFORT,
    EFFORT_PER_STAR,
    MAX_ATTEMPTS,
    Target,
    decoding_options,
    generate_beatmap,
    has_placeholder_timing,
    next_effort,
)
from core.audio import FRAME_MS, audio_features
from core.beatmap.breaks import break_span
from core.beatmap.parser import parse_bytes, parse_file
from core.beatmap.writer import save, write_text
from core.decoding import DecodingOptions
from core.difficulty import star_rating
from core.map_rules import HEADROOM_STARS, MIN_HEADROOM, SNAP_STARS, new_map_rules
from core.music_presence import audible_frames
from core.rhythm import GAP_LEVELS_MS, gap_shares_for_stars, start_gaps
from core.song_input import resolve
from core.spacing import spacing_for_stars
from core.tempo import TimingError


def test_a_missed_star_rating_is_retried_and_the_nearest_attempt_kept(
        starter_generator, timed_song):
    folder, _ = timed_song
    retries = []
    wanted = 14.0  # beyond anything the starter model makes of a 30 s song
    generated = generate_beatmap(starter_generator, resolve(folder),
                                 Target(stars=wanted), decoding_options(seed=0),
                                 on_retry=lambda n, stars: retries.append((n, stars)))
    assert generated.attempts == MAX_ATTEMPTS
    assert [n for n, _ in retries] == list(range(2, MAX_ATTEMPTS + 1))
    assert generated.stars == pytest.approx(star_rating(generated.beatmap))
    # each attempt's stars are told before the next; the one kept is at least as near
    assert all(abs(generated.stars - wanted) <= abs(stars - wanted) for _, stars in retries)
    # wider jumps and shorter gaps, to get harder
    assert generated.spacing > spacing_for_stars(wanted) and generated.density_bias > 0


def test_a_first_attempt_within_half_a_star_is_kept(starter_generator, timed_song):
    folder, _ = timed_song
    for wanted in (1.5, 2.5, 3.5):
        single = generate_beatmap(starter_generator, resolve(folder), Target(stars=wanted),
                                  decoding_options(seed=0), max_attempts=1)
        retries = []
        multi = generate_beatmap(starter_generator, resolve(folder), Target(stars=wanted),
                                 decoding_options(seed=0),
                                 on_retry=lambda n, best, r=retries: r.append(n))
        hit = abs(single.stars - wanted) <= 0.5
        assert (multi.attempts == 1) == hit and bool(retries) == (not hit)
        if hit:
            assert multi.stars == single.stars
        else:
            assert abs(multi.stars - wanted) <= abs(single.stars - wanted)


def test_the_next_effort_follows_the_miss_then_the_secant():
    assert next_effort([(0.0, 3.0)], 4.0) == pytest.approx(EFFORT_PER_STAR)
    # the stars rose 2 per unit of effort: a 1-star miss needs 0.5 more
    assert next_effort([(0.0, 3.0), (0.5, 4.0)], 5.0) == pytest.approx(1.0)
    # no usable slope (the stars did not follow): fall back to the miss
    assert next_effort([(0.0, 3.0), (0.5, 3.0)], 4.0) == pytest.approx(0.5 + EFFORT_PER_STAR)
    assert next_effort([(0.0, 1.0)], 9.0) == pytest.approx(1.0)  # one step at most
    assert next_effort([(1.5, 1.0), (1.9, 1.0)], 9.0) == 2.0  # clamped
    assert next_effort([(0.0, 6.0)], 5.0) == pytest.approx(-EFFORT_PER_STAR)  # and down
    # between one short and one over, nearer the short one than the secant
    between = next_effort([(0.0, 5.15), (0.54, 8.61)], 6.5)
    secant = 0.54 * (6.5 - 5.15) / (8.61 - 5.15)
    assert secant < between < 0.27
    # the nearest either side, whatever the order they were tried in
    assert 0.2 < next_effort([(0.0, 5.0), (1.0, 9.0), (0.2, 5.5), (0.6, 8.0)], 6.5) < 0.6



def test_a_retrys_ceiling_stays_within_a_somewhat_harder_maps():
    base = DecodingOptions()
    ceiling = [new_map_rules(base, 4.0, 4.5, effort).spacing for effort in (0.0, 0.3, 1.3, 2.0)]
    assert ceiling[0] == pytest.approx(spacing_for_stars(4.5))
    assert ceiling[1] == pytest.approx(spacing_for_stars(4.5) * math.exp(0.3))
    # exp(1.3) would be 3.7x: no more than a map HEADROOM_STARS harder has
    assert ceiling[2] == ceiling[3] == pytest.approx(spacing_for_stars(4.5 + HEADROOM_STARS))
    assert new_map_rules(base, 4.0, 4.5, -1.0).spacing == pytest.approx(
        spacing_for_stars(4.5) * math.exp(-1.0))  # easier: as before
    # where the table stops rising (10 stars), MIN_HEADROOM over its own is still allowed
    assert new_map_rules(base, 4.0, 10.0, 1.0).spacing == pytest.approx(
        MIN_HEADROOM * spacing_for_stars(10.0))
    # a stream's step grows as far as the ceiling does, no further
    steps = [new_map_rules(base, 4.0, 4.0, effort).stream_step for effort in (0.0, 0.3, 1.3)]
    assert steps[1] == pytest.approx(steps[0] * math.exp(0.3))
    assert steps[2] == pytest.approx(
        steps[0] * spacing_for_stars(4.0 + HEADROOM_STARS) / spacing_for_stars(4.0))

def test_distance_snap_across_rhythms_eases_off_up_to_the_jump_maps():
    """A beat's move keeps most of the ceiling's reach in an Easy, less in an Insane (ranked
    maps space it 1.4-2x a half beat's up to 5.5 stars), none from SNAP_STARS; a mapper's own
    --spacing keeps none either."""
    base = DecodingOptions()
    floors = [new_map_rules(base, 4.0, stars).snap_floor for stars in (2.0, 3.0, 4.0, 5.0)]
    assert floors[0] == floors[1] == pytest.approx(0.8)
    assert floors[1] > floors[2] > floors[3] > 0.3
    assert new_map_rules(base, 4.0, SNAP_STARS).snap_floor is None
    assert new_map_rules(DecodingOptions(spacing=0.5), 4.0, 4.0).snap_floor is None
    assert new_map_rules(DecodingOptions(snap_floor=0.5), 4.0, 6.0).snap_floor == 0.5


def test_retries_move_the_spacing_the_density_and_the_gap_caps_together(
        starter_generator, timed_song, monkeypatch):
    # the ratings are set so that a second, easier attempt is kept (the real ones of this
    # song had kept the first, and the test skipped)
    folder, _ = timed_song
    ratings = iter([2.0, 0.8])
    monkeypatch.setattr(companion.mapping, "star_rating", lambda _beatmap: next(ratings))
    generated = generate_beatmap(starter_generator, resolve(folder),
                                 Target(stars=0.5), decoding_options(seed=0))
    assert generated.attempts == 2 and generated.stars == 0.8  # within half a star: kept
    effort = math.log(generated.spacing / spacing_for_stars(0.5))
    assert effort < 0  # easier: narrower jumps ...
    assert generated.density_bias == pytest.approx(DENSITY_PER_EFFORT * effort)  # ... longer gaps
    # ... and fewer short ones: the caps of a map that much easier
    assert generated.gap_shares == pytest.approx(
        gap_shares_for_stars(0.5 + effort / EFFORT_PER_STAR))


def test_the_first_attempt_caps_short_gaps_as_the_stars_asked_for(starter_generator, timed_song):
    folder, _ = timed_song
    for wanted in (2.0, 5.0):
        generated = generate_beatmap(starter_generator, resolve(folder),
                                 Target(stars=wanted),     decoding_options(seed=0), max_attempts=1)
        assert generated.gap_shares == gap_shares_for_stars(wanted)
        gaps = start_gaps(generated.beatmap)
        streamed = sum(g < GAP_LEVELS_MS[0] - 10 for g in gaps)  # 10 ms: times snap to ticks
        if wanted == 2.0:  # a Normal's cap is none at all
            assert gaps and streamed == 0


def test_a_spacing_given_on_the_command_line_bounds_every_jump(timed_song, tmp_path):
    folder, _ = timed_song
    shutil.copy(folder / "audio.ogg", tmp_path / "audio.ogg")
    out = tmp_path / "spaced.osu"
    result = CliRunner().invoke(cli, ["generate", str(tmp_path / "audio.ogg"), "--stars", "5",
                                      "--spacing", "0.2", "--seed", "0", "-o", str(out)])
    assert result.exit_code == 0, result.output
    objects = parse_file(out).beatmap.hit_objects
    circles = [(a, b) for a, b in itertools.pairwise(objects)
               if type(a).__name__ == "Circle" and type(b).__name__ != "Spinner"]
    assert len(circles) >= 5
    for a, b in circles:  # 10 ms for times snapping onto ticks
        assert math.dist((a.x, a.y), (b.x, b.y)) <= 0.2 * (b.time - a.time + 10) + 6, (a, b)
    bad = CliRunner().invoke(cli, ["generate", str(tmp_path / "audio.ogg"), "--spacing", "0"])
    assert bad.exit_code != 0 and "spacing must be > 0" in bad.output


@pytest.mark.parametrize("option,value,says", [
    ("--stars", "nan", "not a finite number"), ("--stars", "-3", "0<=x<=20"),
    ("--hp", "nan", "not a finite number"), ("--od", "inf", "0<=x<=10"),
    ("--ar", "15", "0<=x<=10"), ("--cs", "-2", "0<=x<=10"),
    ("--temperature", "nan", "not a finite number"), ("--beam-size", "1000", "1<=x<=64"),
])
def test_settings_out_of_their_range_are_refused_before_anything_runs(tmp_path, option, value,
                                                                      says):
    """They had given tracebacks (nan stars, nan HP) or written AR 15 and CS -2 into a map."""
    result = CliRunner().invoke(cli, ["generate", str(tmp_path / "absent.ogg"), option, value])
    assert result.exit_code == 2 and option in result.output and says in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("red_line,says", [
    (None, "no red line"), ("1000,0,4,2,0,60,1,0", "beat length of 0 ms"),
    ("1000,-500,4,2,0,60,1,0", "beat length of -500 ms"),
])
def test_continuing_a_map_without_usable_timing_is_refused(timed_song, tmp_path, red_line,
                                                           says):
    """With no red line (only green ones) or one of no positive beat length, nothing can be
    placed on the beat; the map written had had no red line, which osu! stable refuses to load,
    or sliders of 66 anchors."""
    folder, _ = timed_song
    source = next(folder.glob("*[[]Normal[]].osu"))
    lines = source.read_text(encoding="utf-8").splitlines()
    start = lines.index("[TimingPoints]") + 1
    end = next(n for n in range(start, len(lines)) if not lines[n].strip())
    timing = [t for t in lines[start:end] if t.split(",")[6] == "0"]  # green lines only
    if red_line is not None:
        timing.insert(0, red_line)
    broken = tmp_path / source.name
    broken.write_text("\n".join([*lines[:start], *timing, *lines[end:]]), encoding="utf-8")
    shutil.copy(folder / "audio.ogg", tmp_path / "audio.ogg")
    result = CliRunner().invoke(cli, ["continue", str(broken), "--from", "5"])
    assert result.exit_code == 1 and says in result.output and str(broken) in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["audio.ogg", source.name])


def test_where_the_map_cannot_be_written_is_said_before_generating(timed_song, tmp_path,
                                                                      monkeypatch):
    """An -o that exists or whose folder does not, a song folder that cannot be written to:
    refused at once, naming the target (they had been found after the whole generation, and
    named the temp file), with no model loaded."""
    folder, _ = timed_song
    source = next(folder.glob("*[[]Normal[]].osu"))
    monkeypatch.setattr("companion.cli.generate._generator", lambda path: pytest.fail(
        "the model was loaded: the check came too late"))
    exists = CliRunner().invoke(cli, ["generate", str(folder), "-o", str(source)])
    assert exists.exit_code == 1 and f"{source} exists" in exists.output
    nowhere = tmp_path / "no such dir" / "x.osu"
    missing = CliRunner().invoke(cli, ["continue", str(source), "--from", "5", "-o",
                                       str(nowhere)])
    assert missing.exit_code == 1 and "no such folder" in missing.output
    monkeypatch.setattr("companion.cli.generate._may_write", lambda path: False)  # as root
    locked = CliRunner().invoke(cli, ["generate", str(folder)])
    assert locked.exit_code == 1 and f"cannot write into {folder}" in locked.output


def test_continuing_a_map_that_names_no_audio_says_so(timed_song, tmp_path):
    folder, _ = timed_song
    source = next(folder.glob("*.osu"))
    text = source.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("AudioFilename")]
    assert len(lines) < len(text.splitlines())
    bare = tmp_path / source.name
    bare.write_text("\n".join(lines), encoding="utf-8")
    shutil.copy(folder / "audio.ogg", tmp_path / "audio.ogg")
    result = CliRunner().invoke(cli, ["continue", str(bare), "--from", "10000"])
    assert result.exit_code != 0
    assert "names no audio file" in result.output and "AudioFilename" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([bare.name, "audio.ogg"])


def test_continuing_from_past_the_audios_end_is_refused(timed_song, tmp_path):
    folder, _ = timed_song  # 30 s of audio
    source = next(folder.glob("*.osu"))
    result = CliRunner().invoke(cli, ["continue", str(source), "--from", "40000",
                                      "-o", str(tmp_path / "out.osu")])
    assert result.exit_code != 0
    assert "audio ends at 29.19" in result.output and "40.000 s" in result.output
    assert not (tmp_path / "out.osu").exists()


def test_generated_and_continued_maps_get_breaks_in_their_long_gaps(
        starter_generator, timed_song, tmp_path):
    """Written maps carry a break in each long gap (HP would drain through it otherwise) and
    none over an object: a continuation from after a gap in the mapper's map gets a break
    there, and a break of theirs that its new objects fill is dropped."""
    folder, _ = timed_song
    source = parse_file(next(folder.glob("*[[]Normal[]].osu"))).beatmap
    source.hit_objects = [o for o in source.hit_objects if not 12_000 <= o.time < 25_000]
    source.events.append("2,16000,20000")
    continued = continue_beatmap(starter_generator, source, folder / "audio.ogg", 15_000.0,
                                 25_000.0, decoding_options(seed=0))
    new = [o.time for o in continued.hit_objects if 15_000 <= o.time < 25_000]
    assert new and min(new) < 16_000 and max(new) > 20_000
    last_before = max(o.end_time for o in continued.hit_objects if o.time < 12_000)
    generated = generate_beatmap(starter_generator, resolve(folder), Target(stars=3.0),
                                 decoding_options(seed=0), max_attempts=1).beatmap
    for beatmap in (continued, generated):
        breaks = [s for s in map(break_span, beatmap.events) if s is not None]
        objects = beatmap.hit_objects
        for start, end in breaks:
            assert not any(o.time <= end and o.end_time >= start for o in objects)
        for a, b in itertools.pairwise(objects):
            if b.time - a.end_time > 3000:
                assert any(a.end_time < s and e < b.time for s, e in breaks), (a, b, breaks)
    breaks = [s for s in map(break_span, continued.events) if s is not None]
    assert [(s, e) for s, e in breaks if s < 16_000] == [
        (math.ceil(last_before + 200), math.floor(min(new) - 2 * source.timing_points[0]
                                                  .beat_length))]


@pytest.mark.parametrize("timing", ["estimated", "none"])
def test_no_object_starts_in_silence(starter_generator, timed_song, tmp_path, timing, monkeypatch):
    """Seven seconds of digital silence in the middle of a song: the starter, which hears a
    beat grid there, mapped on through it (every beat, 18 objects); now nothing starts inside
    it, the map resumes with the music and the gap gets a break. Also where the audio has no
    beat to time ("none": objects are not snapped, and silence is the only rule)."""
    if timing == "none":
        def no_beat(mel, name, meter=None, bpm=None, hint=None):
            raise TimingError(name, "no onsets: nothing to time")
        monkeypatch.setattr("core.song_timing.timing_from_mel", no_beat)
    folder, _ = timed_song
    audio, rate = sf.read(folder / "audio.ogg")
    audio[int(12 * rate): int(19 * rate)] = 0.0
    untimed = parse_file(next(folder.glob("*[[]Normal[]].osu"))).beatmap
    untimed.timing_points = [p for p in untimed.timing_points if not p.uninherited]
    save(untimed, tmp_path / "map.osu")
    sf.write(tmp_path / "audio.ogg", audio, rate)
    mel = audio_features(tmp_path / "audio.ogg")
    audible = audible_frames(mel)
    # silent from just after the music stops (the sound before an object does not count)
    assert not audible[round(12_030 / FRAME_MS): round(18_900 / FRAME_MS)].any()
    assert audible[round(2_000 / FRAME_MS): round(11_900 / FRAME_MS)].all()  # music
    generated = generate_beatmap(starter_generator, resolve(tmp_path), Target(stars=3.0),
                                 decoding_options(seed=0), max_attempts=1).beatmap
    assert has_placeholder_timing(generated) == (timing == "none")
    times = [o.time for o in generated.hit_objects]
    # beatmap time is LATENCY_MS before the audio: the silence is 11,980-18,980 ms
    assert not [t for t in times if 12_000 <= t < 18_950]
    assert any(18_950 <= t < 21_000 for t in times) and any(10_000 <= t < 12_000 for t in times)
    # a break spans most of the silence: from 200 ms after the last object before it to the
    # two beats before the next one (2 s on the placeholder red line where there is no timing)
    assert [s for s in map(break_span, generated.events)
            if s and 11_000 < s[0] < 12_500 and 16_500 < s[1] < 19_000]


def test_continuing_into_silence_writes_nothing(timed_song, tmp_path):
    """A continuation that places nothing (here the song's last seconds are silenced) is
    refused: a copy of the map as a new difficulty would only clutter the set."""
    folder, _ = timed_song
    audio, rate = sf.read(folder / "audio.ogg")
    audio[int(22 * rate):] = 0.0
    shutil.copy(next(folder.glob("*[[]Normal[]].osu")), tmp_path / "map.osu")
    sf.write(tmp_path / "audio.ogg", audio, rate)
    result = CliRunner().invoke(cli, ["continue", str(tmp_path / "map.osu"), "--from", "23000",
                                      "-o", str(tmp_path / "out.osu")])
    assert result.exit_code != 0 and "nothing to place from 23.000 s" in result.output
    assert not (tmp_path / "out.osu").exists()


def test_a_lazer_map_is_continued_as_lazer_wrote_it(starter_generator, timed_song):
    """A v128 map (lazer's own) keeps its version, and with it the fractional positions that
    v14 would truncate; it had been written as v14 with its fractions in it."""
    folder, _ = timed_song
    source = parse_file(next(folder.glob("*[[]Normal[]].osu"))).beatmap
    source.format_version = 128
    source.hit_objects[0].x += 0.25
    continued = continue_beatmap(starter_generator, source, folder / "audio.ogg", 15_000.0,
                                 20_000.0, decoding_options(seed=0))
    text = write_text(continued)
    assert text.startswith("osu file format v128")
    reread = parse_bytes(text.encode(), "continued.osu").beatmap
    assert reread.hit_objects[0].x == source.hit_objects[0].x


def test_an_old_map_is_continued_in_its_own_format_version(starter_generator, timed_song):
    """A v7 map stays v7 (osu! spaces its sliders' ticks by slider velocity before v8 and
    stacks by the old rules before v6: written as v14, the kept sliders of a v5 map gained
    ticks, 413 -> 424 max combo; QA round 10); a v4 map, read 24 ms later as osu! reads it,
    is written as v5 at those times."""
    folder, _ = timed_song
    path = next(folder.glob("*[[]Normal[]].osu"))
    for version, header in ((7, "osu file format v7"), (4, "osu file format v5")):
        text = path.read_text(encoding="utf-8").replace("osu file format v14",
                                                        f"osu file format v{version}", 1)
        source = parse_bytes(text.encode(), "old.osu").beatmap
        continued = continue_beatmap(starter_generator, source, folder / "audio.ogg", 15_000.0,
                                     20_000.0, decoding_options(seed=0))
        written = write_text(continued)
        assert written.startswith(header + "\r\n"), version
        reread = parse_bytes(written.encode(), "continued.osu").beatmap
        kept = [o.time for o in reread.hit_objects if o.time < 15_000.0]
        assert kept == [o.time for o in source.hit_objects if o.time < 15_000.0], version


@pytest.mark.parametrize("text,ms", [("62500", 62500.0), ("1:02.500", 62500.0),
                                     ("01:02:500", 62500.0), ("0:05", 5000.0)])
def test_continue_reads_times_as_the_editor_writes_them(text, ms):
    assert parse_time_ms(text) == ms


@pytest.mark.parametrize("text", ["99:99.999", "1:60", "abc", "-500", "\u00b2"])
def test_times_that_are_no_time_are_refused(text):
    with pytest.raises(click.BadParameter):
        parse_time_ms(text)


@pytest.mark.parametrize("text,ms", [("45.5", 45_500), ("75.25", 75_250)])
def test_a_bare_decimal_is_refused_offering_both_readings_that_work(text, ms):
    """45 is 45 ms, so 45.5 is no time (it had been 45.5 s: QA, session 32); the refusal's two
    suggestions are times that parse to what was likely meant."""
    with pytest.raises(click.BadParameter) as refused:
        parse_time_ms(text, "--from")
    message = refused.value.format_message()
    assert "--from" in message
    found = re.search(r"milliseconds \((\d+)\) or m:ss.mmm \(([\d:.]+)\)", message)
    whole, clock = found.groups()
    assert parse_time_ms(whole) == parse_time_ms(clock) == ms
