"""companion.mapping's timing: the song's own, estimated from the audio, or at a tempo the
mapper gives, and objects on the editor's beat snap ticks (issue 6)."""

from __future__ import annotations

import copy
import re
import shutil

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from mapping_support import on_ticks, red, tagged_bare_song

from companion.cli import main as cli
from companion.continuation import continue_beatmap
from companion.mapping import Target, decoding_options, generate_beatmap
from core.beatmap.model import Slider, TimingPoint
from core.beatmap.parser import parse_file
from core.beatmap.ticks import TickGrid, divisor_for_tempo, divisors_for
from core.beatmap.timing import annotate_sliders
from core.beatmap.writer import save
from core.difficulty import slider_multiplier_for_stars
from core.song_input import resolve
from core.synth.config import SynthConfig
from core.synth.songs import write_song


def test_a_bare_audio_file_is_timed_from_the_audio(starter_generator, timed_song, tmp_path):
    folder, truth = timed_song
    shutil.copy(folder / "audio.ogg", tmp_path / "audio.ogg")
    generated = generate_beatmap(starter_generator, resolve(tmp_path / "audio.ogg"),
                                 Target(stars=4.0), decoding_options(seed=0), max_attempts=1)
    assert generated.timing == "estimated"
    estimated = red(generated.beatmap)
    assert abs(estimated[0].beat_length / truth[0].beat_length - 1) < 0.005
    beat = truth[0].beat_length
    phase = (estimated[0].time - truth[0].time) % beat
    assert min(phase, beat - phase) < 10.0
    assert generated.beatmap.editor["BeatDivisor"] == "4"
    assert len(generated.beatmap.hit_objects) > 10
    assert on_ticks(generated.beatmap, divisors_for(4)) == 1.0
    # no map of the song says a slider speed: the stars' typical one, not the default 1.4
    assert generated.beatmap.difficulty.slider_multiplier == slider_multiplier_for_stars(4.0)


def test_a_shuffle_timed_from_its_audio_is_snapped_in_thirds(starter_generator, tmp_path):
    """Seed 19 is a 169 BPM shuffle: its swung eighths are on the beat's 1/3 ticks, which the
    default 1/4 snap does not offer (core.beat_feel)."""
    folder = write_song(SynthConfig(out=tmp_path / "song", seed=19, duration_s=30.0), 0)
    shutil.copy(folder / "audio.ogg", tmp_path / "audio.ogg")
    generated = generate_beatmap(starter_generator, resolve(tmp_path / "audio.ogg"),
                                 Target(stars=4.0), decoding_options(seed=0), max_attempts=1)
    assert generated.timing == "estimated"
    assert generated.beatmap.editor["BeatDivisor"] == "3"
    assert len(generated.beatmap.hit_objects) > 10
    assert on_ticks(generated.beatmap, divisors_for(3)) == 1.0
    beat = red(generated.beatmap)[0].beat_length
    thirds = [o for o in generated.beatmap.hit_objects
              if TickGrid(red(generated.beatmap), (1,)).snap(o.time, 1.0) is None]
    assert thirds, f"every object on a whole beat of {beat:.1f} ms: no swung eighth mapped"

def test_beatless_audio_gets_a_placeholder_red_line_its_sliders_keep(starter_generator, tmp_path):
    """A drone has no beat to time: the map is written with one red line at 0 ms, 60 BPM
    (osu! stable loads no map without one), the default the sliders were generated against,
    so reading the file back gives every slider the duration it was generated with."""
    rate = 44_100
    t = np.arange(rate * 20) / rate
    drone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.2 * np.sin(2 * np.pi * 0.1 * t))
    sf.write(tmp_path / "drone.ogg", drone, rate)
    generated = generate_beatmap(starter_generator, resolve(tmp_path / "drone.ogg"),
                                 Target(stars=4.0), decoding_options(seed=0), max_attempts=1)
    assert generated.timing == "none"
    beatmap = generated.beatmap
    assert beatmap.timing_points == [TimingPoint(time=0.0, beat_length=1000.0)]
    assert len(beatmap.hit_objects) > 10
    # A slider timed as generation times one (no timing: the default beat) keeps its duration
    # through the placeholder, written and read back: the one added here and any generated.
    beatmap.hit_objects.append(Slider(x=100, y=100, time=15_000.0, curve_type="L",
                                      points=[(300.0, 100.0)], slides=2, length=200.0))
    untimed = copy.deepcopy(beatmap)
    untimed.timing_points = []
    annotate_sliders(untimed)
    written = parse_file(save(beatmap, tmp_path / "drone.osu")).beatmap
    assert len(written.hit_objects) == len(beatmap.hit_objects)
    read = sorted((o for o in written.hit_objects if isinstance(o, Slider)), key=lambda o: o.time)
    meant = sorted((o for o in untimed.hit_objects if isinstance(o, Slider)), key=lambda o: o.time)
    assert [o.duration for o in read] == pytest.approx([o.duration for o in meant])
    (meant,) = [o for o in meant if o.time == 15_000.0]
    # two spans of 200 px at the template's slider multiplier, a 1000 ms beat
    multiplier = beatmap.difficulty.slider_multiplier
    assert meant.duration == pytest.approx(2 * 200 / (100 * multiplier) * 1000)
    # The placeholder is not timing: generating for the folder again (whose only map is this
    # one) and continuing this map neither snap to its 60 BPM grid nor add a second one.
    again = generate_beatmap(starter_generator, resolve(tmp_path), Target(stars=4.0),
                             decoding_options(seed=1), max_attempts=1)
    assert again.timing == "none" and again.beatmap.timing_points == beatmap.timing_points
    continued = continue_beatmap(starter_generator, parse_file(tmp_path / "drone.osu").beatmap,
                                 tmp_path / "drone.ogg", 10_000.0, None, decoding_options(seed=0))
    assert continued.timing_points == beatmap.timing_points
    for generated_map, start in ((again.beatmap, 0.0), (continued, 10_000.0)):
        times = [o.time for o in generated_map.hit_objects if o.time >= start]
        assert len(times) > 10
        off_grid = [t for t in times if min(t % 250, 250 - t % 250) > 1]
        assert len(off_grid) > len(times) / 2  # 1/4 ticks of 60 BPM: every 250 ms


def test_a_song_folder_keeps_its_timing_and_snaps_as_its_objects_and_audio_do(
        starter_generator, timed_song, tmp_path):
    """The template's editor BeatDivisor is where the editor was left, not the song's snap: a
    set of halves left at 1/3 gets 1/4 (its objects and its audio), and a set with a fifth of
    its objects on thirds gets 1/12."""
    folder, truth = timed_song
    copy = shutil.copytree(folder, tmp_path / "song")
    template = next(copy.glob("*[[]Hard[]].osu"))
    for other in copy.glob("*.osu"):
        if other != template:
            other.unlink()
    text = template.read_text(encoding="utf-8")
    assert "BeatDivisor: 4" in text
    template.write_text(text.replace("BeatDivisor: 4", "BeatDivisor: 3"), encoding="utf-8")
    generated = generate_beatmap(starter_generator, resolve(copy),
                                 Target(stars=4.0), decoding_options(seed=1), max_attempts=1)
    assert generated.timing == "map"
    assert [(p.time, p.beat_length) for p in red(generated.beatmap)] == \
        [(p.time, p.beat_length) for p in truth]
    assert generated.beatmap.editor["BeatDivisor"] == "4"
    assert on_ticks(generated.beatmap, divisors_for(4)) == 1.0
    assert on_ticks(generated.beatmap, (1, 3)) < 0.9  # halves, which 1/3 does not offer

    beatmap = parse_file(template).beatmap
    beat = truth[0].beat_length
    for obj in beatmap.hit_objects[::5]:  # a fifth of them a third of a beat later
        obj.time = int(obj.time + beat / 3)
    template.unlink()
    save(beatmap, template)
    generated = generate_beatmap(starter_generator, resolve(copy),
                                 Target(stars=4.0), decoding_options(seed=1), max_attempts=1)
    assert generated.beatmap.editor["BeatDivisor"] == "12"


def test_a_continuation_offers_the_mappers_snap_and_their_maps(starter_generator, timed_song):
    """A map of halves and quarters left at 1/3 (for a triplet) continues on 1/12's ticks,
    and is written with the editor as the mapper left it."""
    folder, _ = timed_song
    beatmap = parse_file(next(folder.glob("*[[]Insane[]].osu"))).beatmap
    beatmap.editor["BeatDivisor"] = "3"
    assert on_ticks(beatmap, (1, 3)) < 0.9
    continued = continue_beatmap(starter_generator, beatmap, folder / "audio.ogg", 10_000.0,
                                 None, decoding_options(seed=0))
    new = copy.deepcopy(continued)
    new.hit_objects = [o for o in continued.hit_objects if o.time >= 10_000.0]
    assert len(new.hit_objects) > 10
    assert on_ticks(new, divisors_for(12)) == 1.0
    assert on_ticks(new, (1, 3)) < 1.0  # halves or quarters, which 1/3 alone does not offer
    assert continued.editor == beatmap.editor


def test_a_mania_set_lends_its_timing_to_an_osu_difficulty(starter_generator, timed_song, tmp_path):
    """A set with only a mania difficulty: its timing is the song's, so the new osu!standard
    map takes it (it was estimated from the audio, the hand-made timing ignored)."""
    folder, truth = timed_song
    copy = shutil.copytree(folder, tmp_path / "song")
    for other in copy.glob("*.osu"):
        if "[Hard]" not in other.name:
            other.unlink()
    (hard,) = copy.glob("*.osu")
    hard.write_text(hard.read_text(encoding="utf-8").replace("Mode: 0", "Mode: 3"),
                    encoding="utf-8")
    assert parse_file(hard).beatmap.mode.name == "MANIA"
    generated = generate_beatmap(starter_generator, resolve(copy),
                                 Target(stars=3.0), decoding_options(seed=0), max_attempts=1)
    assert generated.timing == "map" and generated.beatmap.mode.name == "OSU"
    assert [(p.time, p.beat_length) for p in red(generated.beatmap)] == \
        [(p.time, p.beat_length) for p in truth]
    assert generated.beatmap.hit_objects


def test_the_cli_reports_stars_and_where_the_timing_came_from(timed_song, tmp_path):
    folder, _ = timed_song
    shutil.copy(folder / "audio.ogg", tmp_path / "audio.ogg")
    result = CliRunner().invoke(cli, ["generate", str(tmp_path / "audio.ogg"), "--stars", "3",
                                      "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert "timing estimated from the audio" in result.output
    assert "BPM from" in result.output and ", snap 1/4;" in result.output  # a straight song
    # the octave rule's runner-up, offered as the fix should the estimate be a multiple off
    offered = re.search(r"if the beat is at ([\d.]+) BPM, give --bpm ([\d.]+)\)", result.output)
    estimated = float(re.search(r"audio: ([\d.]+) BPM", result.output)[1])
    assert offered
    assert any(abs(float(offered[1]) / estimated / r - 1) < 0.01 for r in (2, 0.5, 1.5, 2 / 3))
    assert "stars for 3.00 asked" in result.output
    written = list(tmp_path.glob("*.osu"))
    assert len(written) == 1 and red(parse_file(written[0]).beatmap)


def test_the_audio_files_bpm_tag_settles_the_octave_and_is_reported(tmp_path):
    """Seed 1 is a 114 BPM song the audio alone times at 228. With its tempo in the file's
    Vorbis comments, `kiai generate` times it at 114, says so, and offers the other reading."""
    bare = tmp_path / "1007 Synth Band - Tagged Song"
    truth = [tagged_bare_song(bare, 1, tmp_path / "song")]
    result = CliRunner().invoke(cli, ["generate", str(bare), "--stars", "3", "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert (f"timing estimated from the audio and its BPM tag ({truth[0].bpm:g}): "
            f"{truth[0].bpm:.2f} BPM") in result.output
    assert f"if the beat is at {2 * truth[0].bpm:g} BPM" in result.output
    (written,) = bare.glob("*.osu")
    assert written.name.startswith("Synth Band - Tagged Song (kiai)")
    (line,) = red(parse_file(written).beatmap)
    assert line.beat_length == pytest.approx(truth[0].beat_length)


def test_a_bpm_given_on_the_command_line_retimes_the_song(timed_song, tmp_path):
    """--bpm replaces the folder's own timing (an earlier kiai difficulty's estimate can be an
    octave off): the new map has one red line at exactly that tempo, on the song's beats."""
    folder, truth = timed_song
    copy = shutil.copytree(folder, tmp_path / "song")
    half = truth[0].bpm / 2
    result = CliRunner().invoke(cli, ["generate", str(copy), "--stars", "3", "--seed", "0",
                                      "--bpm", f"{half}"])
    assert result.exit_code == 0, result.output
    assert f"timed from the audio at the given {half:.2f} BPM" in result.output
    (written,) = [p for p in copy.glob("*.osu") if p.name not in {q.name for q in
                                                                   folder.glob("*.osu")}]
    (line,) = red(parse_file(written).beatmap)
    assert line.beat_length == 2 * truth[0].beat_length
    beat = truth[0].beat_length
    assert min((line.time - truth[0].time) % beat, -(line.time - truth[0].time) % beat) <= 10
    refused = CliRunner().invoke(cli, ["generate", str(copy), "--bpm", "5"])
    assert refused.exit_code != 0 and "--bpm" in refused.output


def test_a_meter_given_on_the_command_line_retimes_the_song_with_it(timed_song, tmp_path):
    """--meter retimes the song as --bpm does (the folder's maps are in 4/4): red lines of 5
    beats a bar, on the song's beats, and the message says so."""
    folder, truth = timed_song
    copy = shutil.copytree(folder, tmp_path / "song")
    result = CliRunner().invoke(cli, ["generate", str(copy), "--stars", "3", "--seed", "0",
                                      "--meter", "5"])
    assert result.exit_code == 0, result.output
    assert "5 beats a bar" in result.output
    (written,) = [p for p in copy.glob("*.osu") if p.name not in {q.name for q in
                                                                   folder.glob("*.osu")}]
    lines = red(parse_file(written).beatmap)
    assert lines and all(line.meter == 5 for line in lines)
    beat = truth[0].beat_length
    d = (lines[0].time - truth[0].time) % beat
    assert min(d, beat - d) <= 10
    refused = CliRunner().invoke(cli, ["generate", str(copy), "--meter", "0"])
    assert refused.exit_code != 0 and "--meter" in refused.output


def test_fast_estimated_tempos_snap_in_halves(starter_generator, tmp_path):
    """Clicks at 228 BPM are timed so (a steady click track gives no evidence for half the
    tempo); the map snaps to 1/2 ticks (1/4 of 114 BPM, the tempo a doubled estimate most often
    is), since 1/4 ticks would come every 66 ms."""
    import numpy as np
    import soundfile as sf

    rate = 24_000
    audio = np.zeros(rate * 20, dtype=np.float32)
    click = (np.sin(np.arange(240) * 2 * np.pi * 2000 / rate) * np.hanning(240)).astype("f4")
    for start in np.arange(rate // 2, len(audio) - 240, rate * 60 / 228).round().astype(int):
        audio[start: start + 240] += click
    sf.write(tmp_path / "clicks.wav", audio, rate)
    generated = generate_beatmap(starter_generator, resolve(tmp_path / "clicks.wav"),
                                 Target(stars=3.0), decoding_options(seed=0), max_attempts=1)
    assert generated.timing == "estimated"
    assert red(generated.beatmap)[0].bpm == pytest.approx(228, rel=0.005)
    assert generated.beatmap.editor["BeatDivisor"] == "2"
    assert on_ticks(generated.beatmap, divisors_for(2)) == 1.0


def test_the_divisor_for_a_tempo_keeps_ticks_playable():
    assert divisor_for_tempo(60_000 / 180) == 4  # 83 ms ticks
    assert divisor_for_tempo(60_000 / 200) == 4  # 75 ms
    assert divisor_for_tempo(60_000 / 240) == 2  # 62.5 ms at 1/4: halves instead


def test_two_red_lines_at_one_time_snap_to_the_first_as_lazer_keeps_it():
    """lazer's decoder keeps the first of two red lines at the same time (a timing line is
    inserted at the front of its group, read from the back); kiai's ticks follow it, so a
    continuation of such a map lands on the ticks lazer draws (QA, session 32). A red line at
    that time again later in the file (out of order) replaces it, as ControlPointInfo.Add does."""
    lines = [TimingPoint(time=0.0, beat_length=400.0, meter=4),
             TimingPoint(time=30_000.0, beat_length=500.0, meter=4),
             TimingPoint(time=30_000.0, beat_length=300.0, meter=4)]
    grid = TickGrid(lines)
    assert [p.beat_length for p in grid.points] == [400.0, 500.0]
    assert grid.snap(31_000.0, 5.0) == (31_000.0, 1)  # 2 beats of 500, not 3.33 of 300
    assert grid.snap(30_900.0, 5.0) is None  # 3 beats of 300: no tick of the first line
    later = lines + [TimingPoint(time=10_000.0, beat_length=400.0, meter=4),
                     TimingPoint(time=30_000.0, beat_length=250.0, meter=4)]
    assert [p.beat_length for p in TickGrid(later).points] == [400.0, 400.0, 250.0]


def test_continue_names_both_times_when_until_is_not_after_from(tmp_path):
    path = tmp_path / "map.osu"
    path.write_text("osu file format v14\n[TimingPoints]\n0,500,4,1,0,100,1,0\n")
    result = CliRunner().invoke(cli, ["continue", str(path), "--from", "1:00", "--until", "30000"])
    assert result.exit_code == 1
    assert "--until 30000 (30000 ms) must come after --from 1:00 (60000 ms)" in result.output
    assert path.read_text().count("\n") == 3 and len(list(tmp_path.iterdir())) == 1
