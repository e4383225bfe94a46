"""Where the bar and the beat fall on a fitted beat grid: the meter, the downbeat, and whether
the grid sits on the beats or on the off-beats (core.tempo's steps 3 and 5).

Accents are onset strength plus spectral change (`spectral_novelty`): kicks and chords change on
the bar line and on the beat, hi-hats say nothing about either.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from core.tempo_grid import FPS


def spectral_novelty(mel: np.ndarray) -> np.ndarray:
    """Spectral change per frame: distance between the mean spectra of the 0.25 s either side."""
    w = int(0.25 * FPS)
    mean = uniform_filter1d(mel, w, axis=1, mode="nearest")
    before = np.roll(mean, w // 2 + 1, axis=1)
    after = np.roll(mean, -(w // 2), axis=1)
    nov = np.sqrt(((after - before) ** 2).sum(axis=0))
    return nov / (np.percentile(nov, 99) + 1e-9)


def accents(env: np.ndarray, novelty: np.ndarray, period: float, phase: float, meter: int,
            end: float, start: float = 0.0) -> np.ndarray:
    """Mean accent (onset strength + spectral change) of each beat class modulo `meter` over the
    grid's beats in frames [start, end); class 0 holds the beat at `phase`."""
    k = np.arange(max(math.ceil((start - phase) / period), 0),
                  int((min(end, len(env)) - phase) / period))
    idx = np.round(phase + period * k).astype(int)
    inside = (idx >= 0) & (idx < len(env))
    k, idx = k[inside], idx[inside]
    accent = accent_curve(env, novelty)[idx]
    return np.array([accent[k % meter == j].mean() if np.any(k % meter == j) else 0.0
                     for j in range(meter)])


def accent_curve(env: np.ndarray, novelty: np.ndarray) -> np.ndarray:
    """Accent per frame: onset strength (its max over ±1 frame) plus spectral change (±2)."""
    return maximum_filter1d(env, 3) + maximum_filter1d(novelty, 5)


def meter_of(env: np.ndarray, novelty: np.ndarray, period: float, phase: float,
             end: float) -> int:
    """4, or 3 where its accent contrast is 1.5x that of 4 (6/8 songs come out as 3)."""
    contrast = {}
    for m in (4, 3):
        acc = accents(env, novelty, period, phase, m, end)
        contrast[m] = (acc.max() - np.delete(acc, acc.argmax()).mean()) / (acc.mean() + 1e-9)
    return 3 if contrast[3] > 1.5 * contrast[4] else 4


def downbeat(env: np.ndarray, novelty: np.ndarray, period: float, phase: float, meter: int,
             after: float, end: float) -> float:
    """The first beat at or after frame `after` whose class (mod meter) carries the accent."""
    cls = int(np.argmax(accents(env, novelty, period, phase, meter, end)))
    k = math.ceil((after - phase) / period)
    k += (cls - k) % meter
    return phase + k * period


def on_the_beat(below: np.ndarray, novelty: np.ndarray, period: float, phase: float,
                lo: float, hi: float) -> float:
    """`phase`, or the half beat after it where that carries more of the onsets below ~2 kHz
    plus spectral change within frames [lo, hi): a grid fitted to all the onsets can sit on
    off-beat hi-hats."""
    on, off = accents(below, novelty, period / 2, phase, 2, hi, start=lo)
    return (phase + period / 2) % period if off > on else phase
