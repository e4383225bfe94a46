"""`kiai timing`: a song's timing estimated from its audio, as [TimingPoints] lines to paste into
the editor or as JSON, on synthetic songs whose true timing is known."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from mutagen.oggvorbis import OggVorbis

from companion.cli import main as cli
from core.beatmap.parser import parse_file, parse_text


def truth_of(folder):
    return [p for p in parse_file(next(folder.glob("*.osu"))).beatmap.timing_points
            if p.uninherited]


def run(*args):
    return CliRunner().invoke(cli, ["timing", *map(str, args)])


def test_prints_timing_points_a_map_reads_back(synth_song_folder):
    folder = synth_song_folder(0)  # 166 BPM, 4/4
    (truth,) = truth_of(folder)
    result = run(folder)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[TimingPoints]\n")
    (line,) = [p for p in parse_text("osu file format v14\n\n" + result.stdout)
               .beatmap.timing_points]
    assert line.uninherited and line.meter == 4
    assert abs(line.bpm / truth.bpm - 1) <= 0.005
    d = (line.time - truth.time) % truth.beat_length
    assert min(d, truth.beat_length - d) <= 10
    assert "estimated from the audio;" in result.stderr and "give --bpm" in result.stderr


def test_json_with_the_files_bpm_tag(synth_song_folder, tmp_path):
    """Seed 1 is 114 BPM, which the audio alone times at 228: its tag settles it."""
    (truth,) = truth_of(synth_song_folder(1))
    audio = shutil.copy(synth_song_folder(1) / "audio.ogg", tmp_path / "audio.ogg")
    alone = json.loads(run(audio, "--json").stdout)
    assert alone["bpmTag"] is None and alone["tempoFrom"] == "audio"
    assert alone["timingPoints"][0]["bpm"] == pytest.approx(2 * truth.bpm)
    tags = OggVorbis(audio)
    tags["BPM"] = "114"
    tags.save()
    result = run(audio, "--json")
    assert result.exit_code == 0, result.output
    told = json.loads(result.stdout)
    assert told["bpmTag"] == 114 and told["alternativeBpm"] == pytest.approx(228)
    assert told["tempoFrom"] == "tag"
    (point,) = told["timingPoints"]
    assert point["bpm"] == pytest.approx(truth.bpm) and point["meter"] in (3, 4)
    assert point["beatLength"] == pytest.approx(truth.beat_length)
    summary = run(audio).stderr
    assert "estimated from the audio and its BPM tag (114)" in summary


def test_a_given_bpm_and_meter(synth_song_folder):
    folder = synth_song_folder(0)
    (truth,) = truth_of(folder)
    result = run(folder, "--bpm", truth.bpm, "--meter", 3)
    assert result.exit_code == 0, result.output
    (line,) = parse_text("osu file format v14\n\n" + result.stdout).beatmap.timing_points
    assert line.beat_length == pytest.approx(truth.beat_length, abs=1e-9) and line.meter == 3
    assert "the offset estimated at the given tempo" in result.stderr


def test_errors_name_the_file(tmp_path):
    missing = run(tmp_path / "nothing.ogg")
    assert missing.exit_code == 1 and "nothing.ogg: no such file or folder" in missing.output
    sf.write(tmp_path / "short.wav", np.random.default_rng(0).normal(0, 0.1, 44_100), 44_100)
    short = run(tmp_path / "short.wav")
    assert short.exit_code == 1 and "short.wav: too short: 1.0 s of audio" in short.output
    assert "Traceback" not in short.output
