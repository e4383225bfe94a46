"""A loud commercial master, imitated: reverb, then a limiter driven 12 dB into its ceiling.

The benchmarks' real music is rendered from MIDI (FluidSynth) or mixed from stems: dry, with
its transients whole. The songs a mapper brings are mastered: reverb smears the attacks and a
limiter flattens them to the level of everything between. `master` makes a rendering sound that
way so a benchmark can ask whether timing from audio survives it (timing_accuracy --master).
Deterministic: the reverb's noise has a fixed seed.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import fftconvolve

from core.audio import SAMPLE_RATE

REVERB_RT60_S = 1.0  # a hall: the level falls 60 dB in a second
REVERB_WET = 0.35  # the reverb's level beside the dry signal
DRIVE_DB = 12.0  # how far past the ceiling the limiter is pushed (loud pop masters: 8-14 dB)
CEILING = 0.98
LOOKAHEAD_S, RELEASE_S = 0.005, 0.06
BLOCK = 64  # samples per gain step


def master(audio: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """`audio` (mono float) with reverb and a hard limiter, as float32 in [-1, 1]."""
    x = np.asarray(audio, dtype=np.float32)
    if not x.size or not np.any(x):
        return x.copy()
    rng = np.random.default_rng(0)
    t = np.arange(int(1.2 * REVERB_RT60_S * sr)) / sr
    ir = rng.standard_normal(len(t)).astype(np.float32) * np.exp(-6.9 * t / REVERB_RT60_S)
    ir /= np.sqrt((ir ** 2).sum())
    y = x + REVERB_WET * fftconvolve(x, ir)[: len(x)].astype(np.float32)
    y *= 10 ** (DRIVE_DB / 20) / (np.abs(y).max() + 1e-9)
    peak = maximum_filter1d(np.abs(y), max(int(LOOKAHEAD_S * sr), 1))
    want = np.minimum(1.0, CEILING / np.maximum(peak, 1e-9))
    recover = float(np.exp(-BLOCK / (RELEASE_S * sr)))
    gain, level = np.empty_like(want), 1.0
    for i in range(0, len(want), BLOCK):  # instant attack, RELEASE_S back up
        level = min(float(want[i:i + BLOCK].min()), level * recover + (1 - recover))
        gain[i:i + BLOCK] = level
    return np.clip(y * gain, -1.0, 1.0).astype(np.float32)
