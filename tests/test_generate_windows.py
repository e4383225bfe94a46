"""Generation window by window: windows the model ends early are asked again, spinners it took
for the song's end are taken back, and objects end where they must (by the song's end, after a
spinner's, on a tick)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math

import pytest
import torch
from generate_support import COND, STARTS, check_valid, make_generator, make_song

import core.decoding
import core.object_fit
from core.audio import FRAME_MS, LATENCY_FRAMES
from core.beatmap.model import Slider, Spinner, TimingPoint
from core.beatmap.ticks import TickGrid, divisors_for
from core.constraints import SPINNER_RECOVERY_MS, ConstraintFilter, SequenceState
from core.decoding import DecodingOptions
from core.tokens.grammar import Grammar, GrammarWalker
from core.tokens.vocab import Category


@pytest.fixture(scope="module")
def generator():
    return make_generator()


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return make_song(tmp_path_factory.mktemp("songs"))


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
                                 # the music's pull moves where this song's windows end
                                 options=DecodingOptions(method="sample", seed=4, max_tokens=600,
                                                         music_pull=0.0))
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
    # ... and the player's recovery after it: an object had come 97 ms after such a spinner
    assert min(o.time for o in after) >= spinners[0].end_time + SPINNER_RECOVERY_MS - 10
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
    fitted = core.object_fit.ending_by(repeated, 1700.0)
    assert fitted.slides == 2 and fitted.end_time == 1600 and fitted.edge_sounds == "2|0|0"
    assert core.object_fit.ending_by(Spinner(256, 192, 1000, spinner_end=4000), 3000.0
                                    ).end_time == 3000
    assert core.object_fit.ending_by(Spinner(256, 192, 1000, spinner_end=4000), 1300.0) is None


def test_slider_and_spinner_ends_are_moved_onto_a_near_tick():
    """The decoder places ends by time shifts: 3% of generated slider ends missed the ticks
    (AiMod flags unsnapped ends). A slider's end within END_SNAP_MS of a tick moves onto it,
    by its length, unless that would reach the next object."""
    ticks = TickGrid([TimingPoint(time=0.0, beat_length=500.0)], divisors_for(4))  # 1/4: 125 ms
    slider = Slider(100, 100, 1000, points=[(300, 100)], length=100.0, duration=257.0)
    core.object_fit.end_on_a_tick(slider, ticks, math.inf)
    assert slider.end_time == 1250 and slider.length == round(100.0 * 250 / 257, 4)
    blocked = Slider(100, 100, 1000, points=[(300, 100)], length=100.0, duration=243.0)
    core.object_fit.end_on_a_tick(blocked, ticks, 1250.0)  # the next object starts on that tick
    assert blocked.end_time == 1243 and blocked.length == 100.0
    short = Slider(100, 100, 997, points=[(110, 100)], length=10.0, duration=17.0)
    core.object_fit.end_on_a_tick(short, ticks, math.inf)  # the nearest tick: 3 ms after it
    assert short.end_time == 1014  # not squeezed to nothing (a 1 ms slider was seen)
    spinner = Spinner(256, 192, 1000, spinner_end=2990)
    core.object_fit.end_on_a_tick(spinner, ticks, math.inf)
    assert spinner.end_time == 3000
    # a spinner's length is free: its end goes onto the beat within SPINNER_SNAP_MS, even
    # past nearer finer ticks (QA: ends off the divisor, or on 1/6 and 1/12 ticks)
    far = Spinner(256, 192, 1000, spinner_end=3120)  # 5 ms from a 1/4 tick, 120 from a beat
    core.object_fit.end_on_a_tick(far, ticks, math.inf)
    assert far.end_time == 3000
    between = Spinner(256, 192, 1000, spinner_end=3230)  # 20 ms from the half beat
    core.object_fit.end_on_a_tick(between, ticks, math.inf)
    assert between.end_time == 3250
    brief = Spinner(256, 192, 1010, spinner_end=1490)  # onto 1500 it stays too short to spin
    core.object_fit.end_on_a_tick(brief, ticks, math.inf)
    assert brief.end_time == 1490
    # later only where the player keeps SPINNER_RECOVERY_MS before the next object
    rushed = Spinner(256, 192, 1000, spinner_end=2860)
    core.object_fit.end_on_a_tick(rushed, ticks, 3260.0)  # decoded 400 ms before it
    assert rushed.end_time == 2860
    earlier = Spinner(256, 192, 1000, spinner_end=3120)  # onto 3000: earlier is always room
    core.object_fit.end_on_a_tick(earlier, ticks, 3520.0)
    assert earlier.end_time == 3000
    # ... and a Normal's recovery where decoding kept one (2 beats, 1000 ms, here)
    spinner = Spinner(256, 192, 1000, spinner_end=2860)
    core.object_fit.end_on_a_tick(spinner, ticks, 4000.0, recovery_ms=1000.0)
    assert spinner.end_time == 3000
    spinner = Spinner(256, 192, 1000, spinner_end=2860)
    core.object_fit.end_on_a_tick(spinner, ticks, 3900.0, recovery_ms=1000.0)
    assert spinner.end_time == 2860


def test_the_starter_leaves_a_player_time_after_a_spinner_across_windows(tmp_path):
    """The starter's spinner at 55.3 s of this song ran to 58.5 s, past its window and
    before the next one's prefix, and a second spinner followed 97 ms after it."""
    from companion.mapping import Target, decoding_options, generate_beatmap, load_generator
    from core.song_input import resolve
    from core.synth.config import SynthConfig
    from core.synth.songs import write_song

    folder = write_song(SynthConfig(out=tmp_path, seed=41, duration_s=60.0), 0)
    made = generate_beatmap(load_generator(None), resolve(folder), Target(stars=2.0),
                            decoding_options(seed=1)).beatmap
    spinners = [o for o in made.hit_objects if isinstance(o, Spinner)]
    assert spinners
    for spinner in spinners:
        after = [o.time - spinner.end_time for o in made.hit_objects if o.time > spinner.time]
        assert not after or min(after) >= SPINNER_RECOVERY_MS - 10, (spinner, min(after))
