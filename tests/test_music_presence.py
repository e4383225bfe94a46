"""Where the music is (core.music_presence), and the fill rule that keeps loud music mapped."""

from __future__ import annotations

import dataclasses
import itertools
import math
import zipfile

import numpy as np
import pytest
import torch
from corpus_files import require_corpus
from generate_support import COND, make_generator, make_song

from core.audio import FRAME_MS, LATENCY_FRAMES, SAMPLE_RATE, load_audio_bytes, log_mel
from core.beatmap.model import Circle, TimingPoint
from core.beatmap.timing import ControlPoints
from core.constraints import ConstraintFilter, SequenceState
from core.decoding import DecodingOptions
from core.generate import FILL_BAR, HOLE_MS, _fill_span
from core.music_presence import (
    BUSY_WINDOW_MS,
    RETURN_MS,
    RETURN_STEP_MS,
    audible_frames,
    fill_test,
    music_frames,
    music_goes_on,
    song_music,
)
from core.tokens.grammar import Grammar, GrammarWalker
from core.tokens.vocab import Category

UNIT = 2.0 / 80.0  # one dB on log_mel's scale: 80 dB over -1..1


def _by_level(levels: torch.Tensor, typical: float) -> torch.Tensor:
    """music_frames where no onset is heard: by the level alone."""
    return music_frames(levels, typical, np.zeros(levels.numel()), None)


def test_music_goes_on_within_break_db_of_the_songs_level():
    typical = 0.2
    for db, goes_on in ((-9.0, True), (-11.0, False), (3.0, True)):
        levels = torch.full((1000,), typical + db * UNIT)
        assert music_goes_on(_by_level(levels, typical), 0.0, 2000.0) is goes_on
    assert not music_goes_on(torch.zeros(10, dtype=torch.bool), 5000.0, 7000.0)  # past the end


def test_quiet_music_goes_on_where_its_notes_do():
    # 20 dB under the song's level: a break where nothing starts, music where notes go on
    frames = round(8000 / FRAME_MS)
    levels = torch.full((frames,), 0.2 - 20 * UNIT)
    for per_second, goes_on in ((2.0, True), (0.5, False)):
        envelope = np.zeros(frames)
        envelope[:: round(1000 / per_second / FRAME_MS)] = 0.6  # a note every 1/rate s
        music = music_frames(levels, 0.2, envelope, None)
        assert music_goes_on(music, 1000.0, 7000.0) is goes_on
        if goes_on:  # ... where it is heard
            silent = torch.zeros(frames, dtype=torch.bool)
            assert not music_goes_on(music_frames(levels, 0.2, envelope, silent), 1000.0, 7000.0)
    envelope = np.zeros(frames)
    envelope[: round(3000 / FRAME_MS): round(250 / FRAME_MS)] = 0.6  # notes for 3 s, then none
    music = music_frames(levels, 0.2, envelope, None)
    assert music_goes_on(music, 0.0, 2000.0)
    assert not music_goes_on(music, 3000.0 + BUSY_WINDOW_MS, 8000.0)


def test_fill_sets_a_latest_start_only_where_the_music_goes_on():
    # 6 s of music, then a break 20 dB under it
    frames = round(12_000 / FRAME_MS)
    levels = torch.full((frames,), 0.2)
    levels[round(6000 / FRAME_MS) + LATENCY_FRAMES:] = 0.2 - 20 * UNIT
    typical = 0.2
    music = _by_level(levels, typical)
    latest = fill_test(music, 0.0, lambda _ms: 2000.0)
    assert latest(1000.0) == 3000.0
    assert latest(7000.0) == math.inf  # in the break: a rest is the music's
    # window times are from the window's origin: 500 ms in a window at 6.5 s is the break
    assert fill_test(music, 6500.0, lambda _ms: 2000.0)(500.0) == math.inf
    assert fill_test(music, 1000.0, lambda _ms: 2000.0)(500.0) == 2500.0


def test_after_a_break_the_next_object_comes_where_the_music_returns():
    # music to 4 s, a full stop to 7 s, music again to 12 s: an object ending at 4.2 s is
    # followed within RETURN_MS of the music's return, not whenever the model likes
    frames = round(12_000 / FRAME_MS)
    levels = torch.full((frames,), 0.2)
    levels[round(4000 / FRAME_MS) + LATENCY_FRAMES: round(7000 / FRAME_MS) + LATENCY_FRAMES] = -1.0
    latest = fill_test(_by_level(levels, 0.2), 0.0, lambda _ms: 2000.0)
    assert latest(4200.0) == pytest.approx(7000.0 + RETURN_MS, abs=RETURN_STEP_MS)
    assert latest(1000.0) == 3000.0  # the music goes on: as before
    assert fill_test(_by_level(levels, 0.2), 3000.0, lambda _ms: 2000.0)(1200.0) == pytest.approx(
        4000.0 + RETURN_MS, abs=RETURN_STEP_MS)  # window times, from the window's origin
    ended = levels.clone()
    ended[round(4000 / FRAME_MS):] = -1.0  # the song ends: nothing returns
    assert fill_test(_by_level(ended, 0.2), 0.0, lambda _ms: 2000.0)(4200.0) == math.inf


def _object_state(vocab, latest: float) -> SequenceState:
    state = SequenceState(GrammarWalker(Grammar(vocab.config)), vocab)
    state.step(vocab.id(Category.SOS))
    state.fill = lambda _end: latest
    return state


def test_the_filter_closes_the_shifts_that_land_past_the_latest_start():
    generator = make_generator()
    vocab = generator.vocab
    shifts = torch.tensor(vocab.shift_values_ms)
    span = vocab.spans[Category.TIME_SHIFT]
    logits = torch.zeros(len(vocab))
    ConstraintFilter(vocab, DecodingOptions()).apply(logits, _object_state(vocab, 500.0))
    open_ = torch.isfinite(logits[span.start: span.stop])
    assert bool(open_[shifts <= 500.0].all()) and not bool(open_[shifts > 500.0].any())
    # measured from the generation start where the last object ended before it, and never
    # closing what lands before the first start allowed (else it closed nothing at all)
    late = _object_state(vocab, 500.0)
    late.min_start = 1000.0
    logits = torch.zeros(len(vocab))
    ConstraintFilter(vocab, DecodingOptions()).apply(logits, late)
    open_ = torch.isfinite(logits[span.start: span.stop])
    assert bool(open_[shifts <= 1000.0].all()) and not bool(open_[shifts > 1000.0].any())
    # a later window of the same generation: its prefix's last object (ending at 200) is a new
    # one, and the fill counts from its end, not from where this window may first place one
    seam = _object_state(vocab, 0.0)
    seam.fill = lambda end: end + 1000.0
    seam.min_start, seam.generation_start, seam.last_end = 500.0, -5000.0, 200.0
    logits = torch.zeros(len(vocab))
    ConstraintFilter(vocab, DecodingOptions()).apply(logits, seam)
    open_ = torch.isfinite(logits[span.start: span.stop])
    assert bool(open_[shifts <= 1200.0].all()) and not bool(open_[shifts > 1200.0].any())
    # where nothing else is left (no object here, no shift in time), it closes nothing
    logits = torch.full((len(vocab),), -math.inf)
    logits[span.stop - 1] = 0.0
    ConstraintFilter(vocab, DecodingOptions()).apply(logits, _object_state(vocab, 500.0))
    assert math.isfinite(float(logits[span.stop - 1]))


def _holes(objects, mel, longest: float = HOLE_MS) -> list[float]:
    music = song_music(mel)
    return [b.time - a.end_time for a, b in itertools.pairwise(objects)
            if b.time - a.end_time > longest and music_goes_on(music, a.end_time, b.time)]


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return make_song(tmp_path_factory.mktemp("songs"))


def test_a_model_that_wants_long_gaps_leaves_no_hole_in_the_music(song):
    # a density bias toward the longest gaps stands in for a model that pauses in loud music
    _, template, mel = song
    base = make_generator()
    options = DecodingOptions(method="greedy", density_bias=-8.0, max_tokens=800)
    found = {}
    for fill_ms in (math.inf, HOLE_MS):
        generator = dataclasses.replace(base, windows=dataclasses.replace(base.windows,
                                                                          fill_ms=fill_ms))
        objects = generator.generate(mel, template, COND, 0.0, 20_000.0, options=options)
        found[fill_ms] = objects
    assert _holes(found[math.inf], mel), "the biased model left no hole: nothing is tested"
    filled = found[HOLE_MS]
    assert len(filled) >= 5 and not _holes([*filled, Circle(0, 0, 20_000.0)], mel)
    # and, the song being timed, no whole bar of its music empty either (its bars by the
    # timing where each gap starts: this song's tempo changes)
    timing = ControlPoints(template.timing_points)
    music = song_music(mel)
    bars = []
    for a, b in itertools.pairwise(filled):
        point = timing.timing_point_at(a.end_time + 1.0)
        bar = min(HOLE_MS, FILL_BAR * point.meter * point.beat_length)
        bars.append(bar)
        assert b.time - a.end_time <= bar + 1.0 or not music_goes_on(
            music, a.end_time, b.time), (a.end_time, b.time, bar)
    assert min(bars) < HOLE_MS  # the bar rule, not only the seconds, was tested


def test_a_fade_or_tail_far_under_the_songs_loudest_band_is_silence():
    # the loudest band's median sits 16 dB under the peak; a quiet passage 20 dB under that
    # median is music; a tail 40 dB under it (56 dB under the peak: above the peak rule's 60)
    # is not
    frames = 3000
    mel = torch.full((80, frames), -1.0)
    median = 1.0 - 16 * UNIT
    mel[0, :] = median
    mel[0, 0] = 1.0  # the peak
    mel[0, 1000:1500] = median - 20 * UNIT  # a quiet passage
    mel[0, 2000:2500] = median - 40 * UNIT  # a fade's tail
    audible = audible_frames(mel)
    reach = round(50 / FRAME_MS)
    assert bool(audible[1000:1500].all()) and bool(audible[:1000].all())
    assert not bool(audible[2000: 2500 - reach].any())  # frame f hears f .. f + reach


def test_one_band_ringing_on_alone_is_silence():
    """A full stop's hum, one band 30 dB under the loudest band's median and the rest silent,
    is no music; a quiet passage as far under in every band is."""
    frames = 3000
    median = 1.0 - 16 * UNIT
    mel = torch.full((80, frames), median)  # the song
    mel[0, 0] = 1.0
    mel[:, 1000:1500] = -1.0
    mel[0, 1000:1500] = median - 30 * UNIT  # a hum alone
    mel[:, 2000:2500] = median - 30 * UNIT  # a quiet passage
    audible = audible_frames(mel)
    reach = round(50 / FRAME_MS)
    assert not bool(audible[1000: 1500 - reach].any())
    assert bool(audible[2000:2500].all()) and bool(audible[:1000].all())


def test_where_the_map_is_timed_no_whole_bar_of_music_is_left_empty():
    fast = ControlPoints([TimingPoint(time=0.0, beat_length=300.0, meter=4)])  # 1.2 s bars
    assert _fill_span(HOLE_MS, fast, 5000.0) == pytest.approx(FILL_BAR * 1200.0)
    slow = ControlPoints([TimingPoint(time=0.0, beat_length=1000.0, meter=4)])  # 4 s bars
    assert _fill_span(HOLE_MS, slow, 5000.0) == HOLE_MS
    assert _fill_span(HOLE_MS, None, 5000.0) == HOLE_MS  # untimed: seconds only


def test_hiss_filling_most_of_the_file_is_not_the_songs_typical_level():
    """Tape hiss 47 dB under the music, longer than the music after it: measured against the
    median frame (the hiss) it was music, and a map put half its objects in it (QA, session 32).
    Real music (circles' first 40 s) after 60 s of it."""
    with zipfile.ZipFile(require_corpus() / "osu-resources" / "circles.osz") as z:
        music = load_audio_bytes(z.read("circles.ogg"), "circles.ogg")[:40 * SAMPLE_RATE]
    hiss = np.random.default_rng(0).standard_normal(60 * SAMPLE_RATE).astype(np.float32)
    hiss *= 10 ** (-50 / 20)
    audible = audible_frames(log_mel(np.concatenate([hiss, music])))
    start = 60 * 1000 // FRAME_MS
    assert not bool(audible[:start - round(50 / FRAME_MS)].any())
    assert float(audible[start:].float().mean()) > 0.9
