"""Where the music ends (no object starts after it) and where a spinner may start (where the
music holds), on real music from the corpus with a tail, a coda or a held tone added."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from corpus_files import hand_timed_track
from generate_support import make_generator
from torch import Tensor

from core.audio import FRAME_MS, LATENCY_MS, SAMPLE_RATE, log_mel
from core.beatmap.model import Spinner
from core.constraints import ConstraintFilter, SequenceState
from core.decoding import DecodingOptions
from core.music_presence import RING_MS, music_end_ms
from core.object_fit import MIN_SPINNER_MS, ending_by
from core.spinner_rules import ENTRY_MS, LOOK_MS, calm_frames, spinner_reach, spinner_test
from core.tokens.grammar import Grammar, GrammarWalker
from core.tokens.vocab import Category, Vocab, preset

SECONDS = 30


@pytest.fixture(scope="module", params=["circles", "triangles"])
def music(request, corpus) -> np.ndarray:
    """The first SECONDS of a real track (osu-resources), float32 at SAMPLE_RATE."""
    audio, _ = hand_timed_track(corpus, request.param)
    return audio[: SECONDS * SAMPLE_RATE].astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt((x.astype(np.float64) ** 2).mean()))


def test_a_reverb_tail_is_past_the_music_and_a_soft_coda_is_not(music):
    # a decaying noise tail from 20 dB under the music: the music ends where the song did
    t = np.arange(4 * SAMPLE_RATE) / SAMPLE_RATE
    noise = np.random.default_rng(0).standard_normal(len(t))
    tail = (noise * _rms(music) * 10 ** (-20 / 20) * np.exp(-t / 0.4)).astype(np.float32)
    end = SECONDS * 1000 - LATENCY_MS  # in beatmap time
    assert abs(music_end_ms(log_mel(np.concatenate([music, tail]))) - end) <= 250
    # five seconds of the same music 30 dB softer, then silence: the coda's notes are music
    coda = music[10 * SAMPLE_RATE: 15 * SAMPLE_RATE] * np.float32(10 ** (-30 / 20))
    silence = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    assert abs(music_end_ms(log_mel(np.concatenate([music, coda, silence]))) - end - 5000) <= 100
    assert music_end_ms(torch.full((80, 400), -1.0)) == -math.inf  # no music at all
    # a last chord held 5 s as loud as the music, dying away in its last second, with no onset
    # after its own: no object starts more than RING_MS past the song's last onset
    held = 5 * SAMPLE_RATE
    partials = np.geomspace(110.0, 8000.0, 48)  # an organ's chord: loud across the bands
    chord = sum(np.sin(2 * np.pi * hz * np.arange(held) / SAMPLE_RATE) for hz in partials)
    fade = np.minimum(1.0, (held - np.arange(held)) / SAMPLE_RATE)
    chord = (chord / _rms(chord) * _rms(music) * fade).astype(np.float32)
    ended = music_end_ms(log_mel(np.concatenate([music, chord, silence])))
    assert end - 100 <= ended <= end + RING_MS + 100, ended


def test_a_distorted_chord_fading_with_no_new_note_is_past_the_music(music):
    # a distorted chord, 16 dB under the music and fading 12 dB more over 6 s, wobbling
    # (under 1.5 dB each 50 ms, its flux crossing END_ONSET in the triangles): its level never
    # rises as a note's does, so the music ends at most RING_MS past the song's last onset
    held = 6 * SAMPLE_RATE
    t = np.arange(held) / SAMPLE_RATE
    rng = np.random.default_rng(1)
    chord = sum(np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi))
                for hz in np.geomspace(82.0, 5000.0, 40))
    chord = np.tanh(3 * chord / _rms(chord))
    wobble = np.repeat(rng.uniform(0.85, 1.0, held // 2205 + 1), 2205)[:held]
    fade = 10 ** ((-16 - 12 * t / 6) / 20)
    chord = (chord / _rms(chord) * _rms(music) * fade * wobble).astype(np.float32)
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    ended = music_end_ms(log_mel(np.concatenate([music, chord, silence])))
    end = SECONDS * 1000 - LATENCY_MS
    assert end - 100 <= ended <= end + RING_MS + 100, ended


def test_a_held_tone_is_calm_and_the_music_around_it_is_not(music):
    held = 4 * SAMPLE_RATE
    tone = np.sin(2 * np.pi * 220 * np.arange(held) / SAMPLE_RATE) * _rms(music) * 1.4
    half = len(music) // 2
    calm = calm_frames(log_mel(np.concatenate([music[:half], tone.astype(np.float32),
                                               music[half:]]))).numpy()
    start, back = half // (SAMPLE_RATE // 1000), (half + held) // (SAMPLE_RATE // 1000)  # ms
    frame = lambda ms: int(ms // FRAME_MS)  # noqa: E731
    assert calm[frame(start + 50): frame(back - LOOK_MS)].all()  # nothing starts ahead
    assert calm[frame(back + 1000): frame(back + 12_000)].mean() < 0.05
    # spinner_test reads the audio LATENCY_MS after a beatmap time, and past its end is calm
    test = spinner_test(torch.from_numpy(calm), origin=start)
    assert test(1000.0 - LATENCY_MS) and not test(back - start + 5000.0)
    assert test(10_000_000.0)
    # a spinner started in the held tone ends by where the music comes back
    until = spinner_reach(torch.from_numpy(calm), origin=start)
    assert abs(until(100.0) - (back - start - LATENCY_MS)) <= 300


def _spinner_open(vocab, last_end: float, cursor: float, calm_here: bool) -> bool:
    state = SequenceState(GrammarWalker(Grammar(vocab.config)), vocab,
                          spinner_ok=lambda _t: calm_here)
    state.step(vocab.id(Category.SOS))
    state.last_end, state.cursor = last_end, cursor
    logits = torch.zeros(len(vocab))
    ConstraintFilter(vocab, DecodingOptions()).apply(logits, state)
    span = vocab.spans[Category.PLACE_SPINNER]
    return bool(torch.isfinite(logits[span.start: span.stop]).all())


def test_a_spinner_starts_only_where_the_music_holds_and_a_player_has_room():
    vocab = make_generator().vocab
    assert _spinner_open(vocab, last_end=1000.0, cursor=1000.0 + ENTRY_MS, calm_here=True)
    assert not _spinner_open(vocab, last_end=1000.0, cursor=1000.0 + ENTRY_MS, calm_here=False)
    assert not _spinner_open(vocab, last_end=1000.0, cursor=1000.0 + ENTRY_MS - 100,
                             calm_here=True)


def _open_spinner_shifts(room_ms: float, body_shifts: int) -> tuple[Tensor, Tensor]:
    """(shift values, whether each is open) inside a spinner started at 5 s where the music
    holds for `room_ms`, after `body_shifts` of the shortest shift."""
    vocab = make_generator().vocab
    state = SequenceState(GrammarWalker(Grammar(vocab.config)), vocab,
                          spinner_until=lambda t: t + room_ms)
    state.step(vocab.id(Category.SOS))
    state.cursor, state.last_end = 5000.0, 4000.0
    state.step(vocab.token("PLACE_SPINNER"))
    for _ in range(body_shifts):
        state.step(vocab.id(Category.TIME_SHIFT))  # the shortest shift: 10 ms of body
    logits = torch.zeros(len(vocab))
    ConstraintFilter(vocab, DecodingOptions()).apply(logits, state)
    span = vocab.spans[Category.TIME_SHIFT]
    return torch.tensor(vocab.shift_values_ms), torch.isfinite(logits[span.start: span.stop])


def test_a_spinner_ends_where_the_music_stops_holding():
    shifts, open_ = _open_spinner_shifts(2000.0, body_shifts=1)
    assert bool(open_[shifts <= 1990.0].all()) and not bool(open_[shifts > 1990.0].any())


def test_a_spinner_is_long_enough_to_spin():
    """The starter wants spinners seconds long: held to where the music holds, its likeliest
    allowed first shift had been the shortest (a 14 ms spinner, QA). Its first shift is now
    MIN_SPINNER_MS or more where the room allows, and a spinner shorter is dropped."""
    shifts, open_ = _open_spinner_shifts(1010.0, body_shifts=0)
    assert bool(open_[(shifts >= MIN_SPINNER_MS) & (shifts <= 1010.0)].all())
    assert not bool(open_[(shifts < MIN_SPINNER_MS) | (shifts > 1010.0)].any())
    assert ending_by(Spinner(256, 192, 1000, spinner_end=1014), 90_000.0) is None
    kept = Spinner(256, 192, 1000, spinner_end=1600)
    assert ending_by(kept, 90_000.0) is kept


def test_the_seed_languages_spinner_durations_keep_the_same_rules():
    vocab = Vocab(preset("seed"))
    state = SequenceState(GrammarWalker(Grammar(vocab.config)), vocab,
                          spinner_until=lambda t: t + 1500.0)
    state.step(vocab.id(Category.SOS))
    state.cursor, state.last_end = 5000.0, 4000.0
    state.step(vocab.token("PLACE_SPINNER"))
    logits = torch.zeros(len(vocab))
    ConstraintFilter(vocab, DecodingOptions()).apply(logits, state)
    bins = vocab.spans[Category.SPINNER_DURATION]
    durations = torch.tensor(vocab.spinner_durations_ms)
    open_ = torch.isfinite(logits[bins.start: bins.stop])
    fits = (durations >= MIN_SPINNER_MS) & (durations <= 1500.0)
    assert bool(fits.any()) and torch.equal(open_, fits)
