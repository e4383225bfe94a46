"""A steady section's BPM is a whole number where that grid fits the onsets about as well as the
fitted one (core.tempo.whole_bpm), and stays as fitted where the music is not at a whole BPM; and
the phase of a grid whose period is whole frames (120 BPM is 100) is found between frames."""

from __future__ import annotations

import numpy as np
import pytest
from test_tempo_drift import clicks, ticks_of

from core.audio import LATENCY_MS
from core.tempo import estimate_timing
from core.tempo_grid import fold


def played(bpm: float, seconds: float, jitter_s: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(audio, true beat times in s) of clicks on every beat from 1 s, each played off its
    beat by N(0, jitter_s)."""
    beats = 1.0 + np.arange(int((seconds - 1.5) * bpm / 60)) * 60 / bpm
    heard = beats + np.random.default_rng(seed).normal(0.0, jitter_s, len(beats))
    return clicks(heard, seconds), beats


@pytest.mark.parametrize("seed, jitter_ms", [(3, 8.0), (3, 12.0), (5, 10.0)])
def test_a_played_track_at_a_whole_bpm_is_timed_at_it_without_drift(seed, jitter_ms):
    # a drummer's few ms either way pull a 30 s fit off the whole tempo: 149.94 or 150.07 BPM,
    # a grid 13 ms adrift from one end to the other
    audio, beats = played(150.0, 30.0, jitter_ms / 1000, seed)
    (point,) = estimate_timing(audio)
    assert point.bpm == pytest.approx(150.0, abs=1e-9)
    ticks = ticks_of([point], 30_000.0)
    true = beats * 1000 - LATENCY_MS  # beatmap time
    off = np.array([b - ticks[np.argmin(np.abs(ticks - b))] for b in true])
    third = len(off) // 3
    assert abs(off[:third].mean() - off[-third:].mean()) <= 2.0  # the ends agree: no drift
    assert np.abs(off).max() <= 5.0


def test_a_steady_tempo_between_whole_ones_is_kept():
    # 128.985 BPM for 90 s: 129 would put the last beats 10 ms off
    audio, _ = played(128.985, 90.0, 0.0, 0)
    (point,) = estimate_timing(audio)
    assert point.bpm == pytest.approx(128.985, abs=0.006)


@pytest.mark.parametrize("period, offset", [(100.0, 0), (99.999, 0), (100.001, 1234)])
@pytest.mark.parametrize("at", [40.3, 40.5, 40.8])
def test_a_whole_frame_period_finds_its_phase_between_frames(period, offset, at):
    # every beat's frames fall at the same places in the fold, so its smoothed histogram alone
    # put the phase up to 0.3 frames (1.5 ms) off, depending on where between frames it was
    frames = np.arange(8000)
    env = sum(np.exp(-0.5 * ((frames - (at + period * k)) / 1.2) ** 2) for k in range(80))
    _, phase, _ = fold(env[offset:], offset, period)
    assert abs(phase - at) <= 0.05


@pytest.mark.parametrize("bpm", [180.0, 220.0])
def test_a_whole_bpm_is_written_as_its_exact_beat_length(bpm):
    """60000 / 180 = 333.3333333333333: the line osu! reads, not the 333.33333333333337 that
    frames x FRAME_MS gave (and 179.99999999999997 BPM in the daemon's answer; QA, session 32)."""
    audio, _ = played(bpm, 30.0, 0.0, 0)
    (point,) = estimate_timing(audio)
    assert point.beat_length == 60_000 / bpm
