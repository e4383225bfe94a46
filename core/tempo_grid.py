"""Beat grids on an onset envelope: onset strength, the tempo and its octave, and the fit of a
constant-tempo grid (steps 1-3 of core.tempo's method, whose docstring says how and why).

A grid is (period in frames, phase in frames, mean onset strength per beat).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import uniform_filter1d

from core.audio import FRAME_MS

MIN_BPM, MAX_BPM = 60.0, 250.0
PRIOR_BPM = 150.0  # centre of the weak tempo prior (osu! maps: mostly 120-200 BPM)
PRIOR_OCTAVES = 1.0  # its width (std. dev. in octaves)
OCTAVE_GAMMA = 0.7  # weight of tempo against per-beat strength in the octave rule
RARE_BPM, RARE_WIDTH = 230.0, 8.0  # faster, a grid needs more evidence: 2.2x at 240, 23x at 250
RELATIVES = (1.0, 2.0, 0.5, 1.5, 2 / 3)  # a period and the octave rule's alternatives to it
FPS = 1000.0 / FRAME_MS
FOLD_KERNEL = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)  # a fold's smoothing

Grid = tuple[float, float, float]


def onset_envelope(mel: np.ndarray) -> np.ndarray:
    """Onset strength per frame from log-mel (N_MELS, frames): rectified flux, local mean off."""
    flux = np.maximum(np.diff(mel, axis=1), 0.0).sum(axis=0)
    flux = np.concatenate([[0.0], flux])
    env = np.maximum(flux - uniform_filter1d(flux, int(0.5 * FPS), mode="nearest"), 0.0)
    peak = np.percentile(env, 99.5)
    return (env / peak if peak > 0 else env).astype(np.float64)


def _acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    x = x - x.mean()
    n = 1 << math.ceil(math.log2(2 * len(x)))
    spec = np.fft.rfft(x, n)
    acf = np.fft.irfft(spec * np.conj(spec), n)[: max_lag + 1]
    return acf / (acf[0] + 1e-12)


def _comb(acf: np.ndarray, periods: np.ndarray, multiples: int = 4) -> np.ndarray:
    score = np.zeros_like(periods)
    lags = np.arange(len(acf))
    for k in range(1, multiples + 1):
        score += np.interp(k * periods, lags, acf, right=0.0)
    return score / multiples


def period_of(env: np.ndarray, near: float | None = None) -> float:
    """The beat period in frames of an envelope (see the octave rule in the docstring)."""
    periods = np.arange(FPS * 60 / MAX_BPM, FPS * 60 / MIN_BPM + 1, 0.25)
    if near is not None:
        periods = periods[(periods > near / 1.55) & (periods < near * 1.55)]
    acf = _acf(env, int(periods[-1] * 4) + 2)
    score = np.maximum(_comb(acf, periods), 0.0)
    bpm = 60 * FPS / periods
    prior = np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    best = float(periods[np.argmax(score * prior)])
    if near is not None:
        return best
    return octave(env, 0, len(env), best)


def octave(env: np.ndarray, start: int, end: int, period: float) -> float:
    """Octave rule: among the relatives of `period` (x1, x2, x1/2, x3/2, x2/3), the grid with the
    most onset strength per beat on [start, end) x (BPM / PRIOR_BPM) ** OCTAVE_GAMMA: a slower
    grid must be 2 ** OCTAVE_GAMMA times as strong per beat as one twice as fast to win."""
    ranked = octave_ranking(env, start, end, period)
    return ranked[0][1] if ranked else period


def octave_ranking(env: np.ndarray, start: int, end: int,
                   period: float) -> list[tuple[float, float]]:
    """(weighted strength, fitted period) of `period` and its relatives within MIN_BPM..MAX_BPM
    on [start, end), best first: the octave rule's choice and its runners-up."""
    lo, hi = FPS * 60 / MAX_BPM, FPS * 60 / MIN_BPM
    ranked = []
    for ratio in RELATIVES:
        if lo <= period * ratio <= hi:
            grid = fit_grid(env, start, end, period * ratio, coarse=0.01)
            ranked.append((weighted(grid), grid[0]))
    return sorted(ranked, key=lambda r: -r[0])


def weighted(grid: Grid, rare: bool = True) -> float:
    """A grid's strength per beat x tempo ** OCTAVE_GAMMA, as the octave rule weighs it, less
    above RARE_BPM (unless `rare` is False: a tempo someone names needs no such evidence)."""
    bpm = 60 * FPS / grid[0]
    fall = math.exp(-0.5 * (max(bpm - RARE_BPM, 0.0) / RARE_WIDTH) ** 2) if rare else 1.0
    return grid[2] * (bpm / PRIOR_BPM) ** OCTAVE_GAMMA * fall


def fold(env: np.ndarray, offset: int, period: float, near: float | None = None,
         reach: float = 0.5, between: bool = True) -> tuple[float, float, np.ndarray]:
    """(peak, phase, smoothed histogram): the envelope folded modulo `period` frames, its
    sharpest phase (within `reach` beats of phase `near`, where one is given), found between
    frames (refined_phase) unless `between` is False: a search over many periods refines only
    the one it keeps."""
    n = np.arange(len(env)) + offset
    place = None if near is None else near / period
    height, at, smooth = folded_peak(env, (n % period) / period, max(int(period * 4), 8),
                                     place, reach)
    phase = (at * period) % period
    if between:
        phase = refined_phase(env, offset, period, phase)
    return height / (len(env) / period), phase, smooth


def refined_phase(env: np.ndarray, offset: int, period: float, phase: float) -> float:
    """`phase` (a fold's peak), found again between frames where `period` is within a frame of
    whole frames over `env`: such a period samples every beat at the same places, so its fold's
    peak sits on a frame (0.29 frames off at worst) and float rounding splits a frame's beats
    between two bins. There the envelope is read linearly between frames at the fold's own bin
    centres (beats at other periods fall at every place, which interpolates by itself)."""
    if abs(period - round(period)) * len(env) / period >= 1.0:
        return phase
    bins = max(int(period * 4), 8)
    width = period / bins
    first = (0.5 * width - offset) % width
    at = first + width * np.arange(int((len(env) - 1 - first) / width) + 1)
    between = np.interp(at, np.arange(len(env)), env) * width
    _, place, _ = folded_peak(between, ((at + offset) % period) / period, bins,
                              phase / period, 1.5 / period)
    return (place * period) % period


def folded_peak(env: np.ndarray, place: np.ndarray, bins: int, near: float | None = None,
                reach: float = 0.5) -> tuple[float, float, np.ndarray]:
    """(height, place 0..1, smoothed histogram) of `env` binned by each frame's `place` in its
    beat (0..1): the sharpest bin of the smoothed histogram (within `reach` of `near`, where
    given), refined between bins. `fold` on a constant grid, core.tempo_drift on a warped one."""
    idx = (place * bins).astype(np.int64) % bins
    hist = np.bincount(idx, weights=env, minlength=bins)
    smooth = np.convolve(np.concatenate([hist[-6:], hist, hist[:6]]), FOLD_KERNEL, mode="valid")
    if near is None or reach >= 0.5:
        j = int(np.argmax(smooth))
    else:
        centre = near * bins - 0.5
        span = np.arange(round(centre - reach * bins), round(centre + reach * bins) + 1)
        j = int(span[np.argmax(smooth[span % bins])]) % bins
    y0, y1, y2 = smooth[j - 1], smooth[j], smooth[(j + 1) % bins]
    den = y0 - 2 * y1 + y2
    frac = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    return float(y1), (j + frac + 0.5) / bins % 1.0, smooth


def fit_grid(env: np.ndarray, start: int, end: int, period: float,
              fine: bool = False, coarse: float = 0.03) -> Grid:
    """(period, phase, mean strength per beat) maximising onset strength on the grid within
    [start, end); `fine` searches only within 0.15% of `period`."""
    seg = env[start:end]
    best = (-1.0, period, 0.0)
    searches = ((coarse, int(coarse * 2000) + 1), (0.0015, 31), (0.0001, 21))
    for span, steps in searches[1:] if fine else searches:
        centre = best[1] if best[0] >= 0 else period
        for p in centre * (1 + np.linspace(-span, span, steps)):
            peak, phase, _ = fold(seg, start, float(p), between=False)
            if peak > best[0]:
                best = (peak, float(p), phase)
    return best[1], refined_phase(seg, start, best[1], best[2]), best[0]
