"""Generation and continuation: every output is a valid, playable, on-beat map, for every
sampling method (generate_support.check_valid)."""

from __future__ import annotations

import math
import shutil
import zipfile

import pytest
import torch
from corpus_files import require_corpus, resource
from generate_support import COND, check_valid, make_generator, make_song

import core.decoding
from core.audio import audio_features
from core.beatmap.parser import parse_file
from core.beatmap.ticks import TickGrid
from core.beatmap.writer import hit_object_line, save
from core.decoding import DecodingOptions, JobCancelled
from core.difficulty import condition_vector, star_rating
from core.generate import continue_map
from core.incremental import resolve_precision, step_decoder
from core.synth.config import SynthConfig
from core.synth.songs import write_song


@pytest.fixture(scope="module")
def generator():
    return make_generator()


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return make_song(tmp_path_factory.mktemp("songs"))


@pytest.mark.parametrize("options", [
    DecodingOptions(method="greedy", max_tokens=400),
    DecodingOptions(method="sample", seed=1, max_tokens=400),
    DecodingOptions(method="sample", seed=2, temperature=1.5, top_k=40, top_p=None,
                    max_tokens=400),
    DecodingOptions(method="beam", beam_size=2, max_tokens=250),
    DecodingOptions(method="sample", seed=3, max_tokens=400, precision="int8"),
    DecodingOptions(method="beam", beam_size=2, max_tokens=250, precision="int8"),
], ids=["greedy", "top-p", "top-k", "beam", "top-p-int8", "beam-int8"])
def test_every_sampling_method_gives_a_valid_map(generator, song, options, monkeypatch):
    _, template, mel = song
    steps = []  # the step decoders decoding used: the options' precision must reach them

    def recording(model, precision):
        steps.append(step_decoder(model, precision))
        return steps[-1]

    monkeypatch.setattr(core.decoding, "step_decoder", recording)
    objects = generator.generate(mel, template, COND, 0.0, 18_000.0, options=options)
    check_valid(template, objects, TickGrid(template.timing_points))
    expected = resolve_precision(options.precision, torch.device("cpu"))
    assert steps and {s.precision for s in steps} == {expected}

@pytest.mark.parametrize("level", ["Normal", "Insane"])
def test_beam_search_maps_as_densely_as_greedy(generator, tmp_path, level):
    # Left to its length-normalised scores, beam search ended windows early: an end after a few
    # likely tokens outscored a window of objects whose coordinates cost 1-2 nats a token (the
    # starter on this song: Normal 10 objects against greedy's 59, Insane 22 against 77). It
    # ends a window only where the model finds ending likelier than going on, as greedy does.
    folder = write_song(SynthConfig(out=tmp_path, seed=3, duration_s=30.0), 0)
    template = parse_file(next(folder.glob(f"*[[]{level}[]].osu"))).beatmap
    cond = condition_vector(template.difficulty, star_rating(template))
    template.hit_objects = []
    mel = audio_features(folder / "audio.ogg")
    greedy, beam = (generator.generate(mel, template, cond, 0.0, 30_000.0,
                                       options=DecodingOptions(method=method, beam_size=2,
                                                               max_tokens=400))
                    for method in ("greedy", "beam"))
    assert len(greedy) >= 20
    assert len(beam) >= 0.75 * len(greedy), (len(beam), len(greedy))


def test_nothing_before_the_first_red_line(generator, song):
    # The song's first red line is on its first note, after ~1.5 s of silence: the starter
    # used to write a stream into it when asked for the whole song from 0 ms.
    _, template, mel = song
    first = min(p.time for p in template.timing_points if p.uninherited)
    assert first > 500
    objects = generator.generate(mel, template, COND, 0.0, 8_000.0,
                                 options=DecodingOptions(method="sample", seed=4, max_tokens=300))
    assert objects and min(o.time for o in objects) >= first


def test_same_seed_same_map(generator, song):
    _, template, mel = song
    options = DecodingOptions(method="sample", seed=5, max_tokens=300)
    a = generator.generate(mel, template, COND, 0.0, 10_000.0, options=options)
    b = generator.generate(mel, template, COND, 0.0, 10_000.0, options=options)
    assert [hit_object_line(o) for o in a] == [hit_object_line(o) for o in b]


def test_cancellation_stops_between_steps(generator, song):
    _, template, mel = song
    calls = []

    def stop_after_20() -> bool:
        calls.append(1)
        return len(calls) > 20

    with pytest.raises(JobCancelled):
        generator.generate(mel, template, COND, 0.0, 10_000.0,
                           options=DecodingOptions(max_tokens=400), should_stop=stop_after_20)
    assert len(calls) == 21


def test_progress_reaches_one(generator, song):
    _, template, mel = song
    seen = []
    generator.generate(mel, template, COND, 0.0, 20_000.0,
                       options=DecodingOptions(max_tokens=200), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 2  # two windows


def test_continuing_a_corpus_map_keeps_everything_before_from(generator, tmp_path):
    root = require_corpus()
    source = resource(root, "Soleily - Renatus (Gamu) [Insane].osu")
    beatmap = parse_file(source).beatmap
    # The ranked map's own mp3 is not in the corpus; a real track under its name stands in.
    with zipfile.ZipFile(root / "osu-resources" / "triangles.osz") as z:
        (tmp_path / beatmap.audio_filename).write_bytes(z.read("audio.mp3"))
    shutil.copy(source, tmp_path / source.name)
    mel = audio_features(tmp_path / beatmap.audio_filename)
    from_ms, until_ms = 60_000.0, 75_000.0
    result = continue_map(generator, beatmap, mel, from_ms, until_ms, COND,
                          DecodingOptions(seed=3, max_tokens=300))
    out = save(result, tmp_path / "continued.osu")
    original_lines = source.read_text(encoding="utf-8-sig").splitlines()
    written_lines = out.read_text(encoding="utf-8").splitlines()
    start = original_lines.index("[HitObjects]") + 1
    before = [line for line in original_lines[start:] if line.strip()
              and int(line.split(",")[2]) < from_ms]
    w_start = written_lines.index("[HitObjects]") + 1
    assert written_lines[w_start: w_start + len(before)] == before  # byte for byte
    kept_after = [o for o in beatmap.hit_objects if o.time >= until_ms]
    assert result.hit_objects[-len(kept_after):] == kept_after
    new = result.hit_objects[len(before): len(result.hit_objects) - len(kept_after)]
    ticks = TickGrid(beatmap.timing_points)
    for obj in new:
        assert from_ms <= obj.time < until_ms
        assert ticks.snap(obj.time, 1.0) is not None
    assert math.isclose(parse_file(out).beatmap.hit_objects[0].time,
                        beatmap.hit_objects[0].time)
