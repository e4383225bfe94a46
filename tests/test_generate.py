"""Generation and continuation: every output is a valid, playable, on-beat map.

The model is the shipped starter model when the checkout has it, else a tiny randomly initialised
one: random weights push the constraints hardest, since nothing but the filters keeps their
output valid.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import shutil
import zipfile

import pytest
import rosu_pp_py
import torch
from corpus_files import require_corpus, resource

import core.decoding
from core.audio import FRAME_MS, LATENCY_FRAMES, audio_features
from core.beatmap.curves import slider_path
from core.beatmap.model import PLAYFIELD_HEIGHT, PLAYFIELD_WIDTH, Slider, Spinner, TimingPoint
from core.beatmap.parser import parse_file
from core.beatmap.slider_trim import SLACK_PX
from core.beatmap.ticks import TickGrid, divisors_for
from core.beatmap.writer import hit_object_line, save, write_text
from core.checkpoint import load_model
from core.constraints import ConstraintFilter, SequenceState
from core.decoding import DecodingOptions, JobCancelled
from core.difficulty import condition_vector, star_rating
from core.generate import Generator, continue_map
from core.incremental import resolve_precision, step_decoder
from core.model import MapModel, ModelDims
from core.starter import default_model_path
from core.synth.config import SynthConfig
from core.synth.songs import write_song
from core.tokens.grammar import Grammar, GrammarWalker
from core.tokens.vocab import DEFAULT, Category, Vocab

COND = [8.0, 4.0, 7.0, 6.0, 4.0]
STARTS = (Category.PLACE_CIRCLE, Category.START_SLIDER, Category.PLACE_SPINNER)


@pytest.fixture(scope="module")
def generator() -> Generator:
    path = default_model_path()
    if path is not None:
        model, vocab, _ = load_model(path)
        return Generator(model, vocab)
    torch.manual_seed(0)
    vocab = Vocab(DEFAULT)
    dims = ModelDims(n_vocab=len(vocab), d_model=64, n_heads=4, n_layers=2, d_ff=128)
    return Generator(MapModel(dims).eval(), vocab)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    folder = write_song(SynthConfig(out=tmp_path_factory.mktemp("songs"), seed=11,
                                    duration_s=30.0), 0)
    hard = next(folder.glob("*[[]Hard[]].osu"))
    return folder, parse_file(hard).beatmap, audio_features(folder / "audio.ogg")


def check_valid(beatmap, objects, ticks: TickGrid | None = None) -> None:
    assert objects, "the window produced no objects"
    times = [o.time for o in objects]
    assert times == sorted(times) and len(set(times)) == len(times)
    for previous, obj in itertools.pairwise(objects):
        assert obj.time > previous.end_time, "objects overlap"
    for obj in objects:
        if not isinstance(obj, Spinner):
            assert 0 <= obj.x <= PLAYFIELD_WIDTH and 0 <= obj.y <= PLAYFIELD_HEIGHT
        if isinstance(obj, Slider):
            assert obj.length > 0 and obj.duration > 0 and obj.points
            assert all(0 <= x <= PLAYFIELD_WIDTH and 0 <= y <= PLAYFIELD_HEIGHT
                       for x, y in obj.points)
            # its anchors end near where it does (core.beatmap.slider_trim), not far beyond: 82%
            # of generated sliders had used under half the path they drew
            drawn = slider_path(dataclasses.replace(obj, length=None), 14).distance
            assert drawn <= 2 * obj.length + SLACK_PX or obj.curve_type == "C", obj.points
        if ticks:
            snapped = ticks.snap(obj.time, 1.0)
            assert snapped is not None, f"object at {obj.time} ms is off the beat"
    written = beatmap.__class__(**{**vars(beatmap), "hit_objects": list(objects)})
    attributes = rosu_pp_py.Difficulty().calculate(rosu_pp_py.Beatmap(content=write_text(written)))
    assert attributes.n_circles + attributes.n_sliders + attributes.n_spinners == len(objects)


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


@pytest.mark.parametrize("keep", [0.0, 0.3])
def test_a_window_ended_seconds_early_is_asked_again(generator, song, monkeypatch, keep):
    # The starter took a spinner in a real song for the song's end and left the next 10 s of
    # loud music empty: a window the model ends seconds early is asked again from its last
    # object, or, where it placed none, once its prefix has passed
    _, template, mel = song
    first = min(p.time for p in template.timing_points if p.uninherited)
    window, prefix = generator.windows.window_ms, generator.windows.prefix_ms
    real, calls = core.generate.decode_window, []

    def first_ends_early(model, vocab, *args):
        result = real(model, vocab, *args)
        calls.append(result)
        if len(calls) > 1:
            return result
        cut = core.decoding.whole_objects(result.tokens[:int(len(result.tokens) * keep)], vocab)
        return core.decoding.WindowResult(cut, finished=True)

    monkeypatch.setattr(core.generate, "decode_window", first_ends_early)
    objects = generator.generate(mel, template, COND, 0.0, window + 4000,
                                 options=DecodingOptions(method="sample", seed=4, max_tokens=600))
    assert len(calls) >= 3
    before = sorted((o for o in objects if o.time < window), key=lambda o: o.time)
    assert len(before) >= 10
    if keep == 0:  # nothing from the first window; the next began a prefix after it
        assert before[0].time >= first + prefix - 10
    gaps = [b.time - a.end_time for a, b in itertools.pairwise(before)]
    assert max(gaps) < 4000  # not the ~10 s the first window's early end left before


@pytest.mark.parametrize("timed", [True, False])
def test_windows_that_all_end_early_place_no_object_twice(generator, song, monkeypatch, timed):
    # every window ends after its first two objects: each is asked again after its last
    # object, which its prefix then holds, so none is placed again, even without timing (no
    # snap tolerance to step past it); and the song still advances at least a second a window
    _, template, mel = song
    template = copy.deepcopy(template)
    if not timed:
        template.timing_points = [p for p in template.timing_points if not p.uninherited]
    real, calls = core.generate.decode_window, []

    def two_objects(model, vocab, *args):
        result = real(model, vocab, *args)
        calls.append(result)
        starts = [n for n, t in enumerate(result.tokens) if vocab.category(t) in STARTS]
        cut = starts[2] if len(starts) > 2 else len(result.tokens)
        return core.decoding.WindowResult(core.decoding.whole_objects(result.tokens[:cut], vocab),
                                          finished=True)

    monkeypatch.setattr(core.generate, "decode_window", two_objects)
    span = 20_000.0
    objects = generator.generate(mel, template, COND, 0.0, span,
                                 options=DecodingOptions(method="greedy", max_tokens=400))
    times = [round(o.time) for o in objects]
    assert len(objects) >= 10 and len(set(times)) == len(times)
    assert len(calls) <= span / core.generate.RETRY_STEP_MS + 2


@pytest.mark.parametrize("music_after", [True, False])
def test_a_spinner_the_model_ends_on_in_loud_music_is_taken_back(generator, song, monkeypatch,
                                                                  music_after):
    # The starter's only spinner in training was the outro: in loud real music it placed one
    # and then nothing for seconds. Where the music goes on, the spinner is taken back and its
    # window asked again with spinners masked; before a silent break it stays.
    _, template, mel = song
    ticks, spinner = _spinner_two_seconds_in(template)
    start = spinner.time
    if not music_after:  # 6 s of silence from the spinner's end: a break
        mel = mel.clone()
        frame = int(spinner.end_time // FRAME_MS) + LATENCY_FRAMES
        mel[:, frame: frame + 6000 // FRAME_MS] = -1.0
    states = []
    monkeypatch.setattr(core.generate, "decode_window",
                        _spinner_then_end(spinner, template, ticks, states))
    objects = generator.generate(mel, template, COND, 0.0, 12_000.0,
                                 options=DecodingOptions(method="greedy", max_tokens=600))
    kept = [o for o in objects if isinstance(o, Spinner) and abs(o.time - start) < 1]
    assert len(states) >= 2 and states[0].spinners_from == -math.inf
    if music_after:  # no spinner before its end in the window asked again
        assert not kept and states[1].spinners_from > spinner.time
        assert [o for o in objects if start <= o.time < spinner.end_time]  # asked again there
        assert min(o.time for o in objects) == start  # its own tick included
    else:
        assert len(kept) == 1 and states[1].spinners_from == -math.inf
        assert all(o.time >= spinner.end_time for o in objects if o is not kept[0])


def _spinner_two_seconds_in(template):
    """The map's ticks, and a 1.5 s spinner on the tick 2 s after its first red line."""
    ticks = TickGrid(template.timing_points)
    first = min(p.time for p in template.timing_points if p.uninherited)
    start = ticks.snap_ms(first + 2000.0, 100.0)
    return ticks, Spinner(x=256, y=192, time=start, spinner_end=start + 1500.0)


def _spinner_then_end(spinner, template, ticks, states, then=None):
    """decode_window that places `spinner` and ends its first window, then decodes for real
    (or returns `then`'s result, given it)."""
    real = core.generate.decode_window

    def decode(model, vocab, audio, cond, ids, state, *args):
        states.append(state.clone())
        if len(states) > 1:
            if then is not None:
                return then(model, vocab, audio, cond, ids, state, *args)
            return real(model, vocab, audio, cond, ids, state, *args)
        tokens = core.generate.tokenize_objects([spinner], vocab, template, origin_ms=0.0,
                                                ticks=ticks)
        return core.decoding.WindowResult(tokens, finished=True)

    return decode


@pytest.mark.parametrize("case", ["nothing asked again", "switched off"])
def test_a_spinner_stays_where_taking_it_back_does_not_help(generator, song, monkeypatch,
                                                           case):
    # asked again without it the model places nothing: the spinner beats a hole; and the
    # switch turns the take-back off
    _, template, mel = song
    ticks, spinner = _spinner_two_seconds_in(template)
    start = spinner.time
    states = []
    nothing = None
    if case == "nothing asked again":
        def nothing(*args):
            return core.decoding.WindowResult([], finished=True)
    else:
        generator = copy.copy(generator)
        object.__setattr__(generator, "windows", dataclasses.replace(generator.windows,
                                                                     take_back_spinners=False))
    monkeypatch.setattr(core.generate, "decode_window",
                        _spinner_then_end(spinner, template, ticks, states, nothing))
    objects = generator.generate(mel, template, COND, 0.0, 12_000.0,
                                 options=DecodingOptions(method="greedy", max_tokens=600))
    assert [o.time for o in objects if isinstance(o, Spinner)][:1] == [start]
    assert sum(o.time == start for o in objects) == 1
    if case == "nothing asked again":
        assert states[1].spinners_from > spinner.time  # it was asked again, then put back
        assert all(s.spinners_from == -math.inf for s in states[2:])  # and never again


def test_music_goes_on_within_break_db_of_the_songs_level():
    # levels are mean log-mel bands on log_mel's scale: 80 dB over -1..1
    typical = 0.2
    unit = 2.0 / 80.0  # one dB
    for db, goes_on in ((-9.0, True), (-11.0, False), (3.0, True)):
        levels = torch.full((1000,), typical + db * unit)
        assert core.generate.music_goes_on(levels, typical, 0.0, 2000.0) is goes_on
    assert not core.generate.music_goes_on(torch.zeros(10), 0.0, 5000.0, 7000.0)  # past the end


def test_masked_spinners_are_never_placed(generator):
    # the filter's switch holds whatever the model prefers: a spinner-only model places none
    vocab = generator.vocab
    state = SequenceState(GrammarWalker(Grammar(vocab.config)), vocab)
    state.step(vocab.id(Category.SOS))
    span = vocab.spans[Category.PLACE_SPINNER]
    for allowed in (False, True):
        state.spinners_from = -math.inf if allowed else 1000.0
        logits = torch.zeros(len(vocab))
        logits[span.start: span.stop] = 100.0
        ConstraintFilter(vocab, DecodingOptions()).apply(logits, state)
        assert bool(torch.isfinite(logits[span.start: span.stop]).all()) is allowed
        assert torch.isfinite(logits).any()


def test_no_object_starts_inside_a_spinner_that_runs_past_its_window(generator, song,
                                                                      monkeypatch):
    """A spinner (or slider) may end after its window does, and start before the next
    window's prefix, where the model cannot see it: the next window's objects must start after
    it ends, not at the window's end (a slider at 27837 ms was seen inside a spinner that ran
    from 23455 to 28160 ms)."""
    _, template, mel = song
    window = generator.windows.window_ms
    real, spinners = core.generate.decode_objects, []

    def with_a_long_spinner(ids, template_, vocab, options):
        objects = real(ids, template_, vocab, options)
        if not spinners:  # the first window's last object starts before the next window's
            # prefix (so that the model does not see it) and spins past the window's end
            begin = window - generator.windows.prefix_ms - 1000
            ticks = TickGrid(template_.timing_points)
            start = next(t for t in range(int(begin), 0, -1) if ticks.snap(t, 1.0))
            first_window = [o for o in objects if o.end_time < start]
            spinners.append(Spinner(256, 192, start, spinner_end=window + 3000))
            return [*first_window, spinners[0]]
        return objects

    monkeypatch.setattr(core.generate, "decode_objects", with_a_long_spinner)
    objects = generator.generate(mel, template, COND, 0.0, window + 10_000,
                                 options=DecodingOptions(method="greedy", max_tokens=400))
    assert spinners[0] in objects
    after = [o for o in objects if o.time > spinners[0].time]
    assert after and min(o.time for o in after) > spinners[0].end_time
    check_valid(template, objects, TickGrid(template.timing_points))


def test_objects_end_by_the_end_they_are_given(generator, song, monkeypatch):
    """Decoding bounds where objects start; their bodies had run past the song's end (a slider
    ending 460 ms after welcome's audio) and into the mapper's next kept object (continue
    --until). A slider keeps the repeats that fit, else becomes a circle at its head; a spinner
    is cut short, or dropped where too little is left."""
    _, template, mel = song
    end = 12_000.0
    ticks = TickGrid(template.timing_points)
    late = next(t for t in range(int(end) - 150, 0, -1) if ticks.snap(t, 1.0))
    real = core.generate.decode_objects

    def with_a_slider_too_long(ids, template_, vocab, options):
        objects = [o for o in real(ids, template_, vocab, options) if o.end_time < late - 100]
        slider = Slider(200, 200, late, curve_type="L", points=[(400, 200)], slides=2,
                        length=200.0, duration=800.0)
        return [*objects, slider]

    monkeypatch.setattr(core.generate, "decode_objects", with_a_slider_too_long)
    objects = generator.generate(mel, template, COND, 0.0, end,
                                 options=DecodingOptions(method="greedy", max_tokens=400))
    assert max(o.end_time for o in objects) <= end
    assert type(objects[-1]).__name__ == "Circle" and objects[-1].time == late

    repeated = Slider(0, 0, 1000, points=[(100, 0)], slides=3, length=100.0, duration=900.0,
                      edge_sounds="2|0|0|8")
    fitted = core.generate._ending_by(repeated, 1700.0)
    assert fitted.slides == 2 and fitted.end_time == 1600 and fitted.edge_sounds == "2|0|0"
    assert core.generate._ending_by(Spinner(256, 192, 1000, spinner_end=4000), 3000.0
                                    ).end_time == 3000
    assert core.generate._ending_by(Spinner(256, 192, 1000, spinner_end=4000), 1300.0) is None


def test_slider_and_spinner_ends_are_moved_onto_a_near_tick():
    """The decoder places ends by time shifts: 3% of generated slider ends missed the ticks
    (AiMod flags unsnapped ends). An end within END_SNAP_MS of a tick moves onto it, a slider
    by its length, unless that would reach the next object."""
    ticks = TickGrid([TimingPoint(time=0.0, beat_length=500.0)], divisors_for(4))  # 1/4: 125 ms
    slider = Slider(100, 100, 1000, points=[(300, 100)], length=100.0, duration=257.0)
    core.generate._end_on_a_tick(slider, ticks, math.inf)
    assert slider.end_time == 1250 and slider.length == round(100.0 * 250 / 257, 4)
    blocked = Slider(100, 100, 1000, points=[(300, 100)], length=100.0, duration=243.0)
    core.generate._end_on_a_tick(blocked, ticks, 1250.0)  # the next object starts on that tick
    assert blocked.end_time == 1243 and blocked.length == 100.0
    short = Slider(100, 100, 997, points=[(110, 100)], length=10.0, duration=17.0)
    core.generate._end_on_a_tick(short, ticks, math.inf)  # the nearest tick: 3 ms after it
    assert short.end_time == 1014  # not squeezed to nothing (a 1 ms slider was seen)
    spinner = Spinner(256, 192, 1000, spinner_end=2990)
    core.generate._end_on_a_tick(spinner, ticks, math.inf)
    assert spinner.end_time == 3000
    far = Spinner(256, 192, 1000, spinner_end=3060)  # 60 ms from any tick: a choice, kept
    core.generate._end_on_a_tick(far, ticks, math.inf)
    assert far.end_time == 3060
