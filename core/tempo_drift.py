"""Tempo drift: a live band's tempo wanders (a slow accelerando, a ritardando into the end), and
one constant grid fitted over a stretch of it falls off the beats towards its ends: a 2% ramp
over 90 s put the best single grid up to 245 ms off. Where a section's beats follow a ramp
(a period that changes steadily) clearly better than its constant grid, the section is split at
bar lines into red lines that each follow the ramp's beats within FIT_MS, as mappers time such
songs; a steady section keeps its one red line.

The ramp is fitted as the grid is (core.tempo_grid.fold), on a warped beat axis: a tempo going
linearly in time through the section, the onset envelope folded on its beats for RAMPS tempo
changes across the section, each with its own mean period searched coarse to fine, the sharpest
fold winning. A ramp is kept only where
- it puts RAMP_GAIN times the best constant grid's onset strength on its beats,
- each third of the section, fitted on its own, has the tempo the ramp gives it there (a
  ramp fitted to hits with no beat mostly has its thirds scattered), unless its gain is over
  SURE_GAIN, and
- no straight line follows its beats within DRIFT_MS (a constant gap to the grid is no drift):
a steady song's best ramp is its grid (the 97 sections of benchmarks/timing_accuracy.py keep
theirs). Its beats are its half of the beat with more low-band onsets and spectral change, as
core.downbeat.on_the_beat decides for a grid (louder off-beat hi-hats fold stronger). Each red
line is then moved onto its own stretch's onsets by under an eighth of a beat: a band's drift
is not exactly linear. benchmarks/drift_accuracy.py measures it on real songs made to drift
linearly (the model's best case) by +-2% and +-4% over 100 s: 17-25% of their beats within
10 ms of one grid, 99-100% with it (medians over 13 songs).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from core.audio import FRAME_MS
from core.tempo_grid import fit_grid, fold, folded_peak

RAMPS = np.linspace(-0.08, 0.08, 17)  # period change across a section, tried (coarse)
FINE_RAMPS = np.linspace(-0.005, 0.005, 5)  # then around the best
# each ramp's mean period: coarse to fine around the constant grid's
PERIOD_STEPS = (np.linspace(-0.02, 0.02, 11), np.linspace(-0.004, 0.004, 9),
                np.linspace(-0.0008, 0.0008, 9))
# A ramp must put this much more onset strength on its beats than the best constant grid. Real
# songs made to drift by 1-4% over 100 s beat it by 23-250%; the best of hundreds of ramps
# fitted to beatless random hits, by 11-41%, so the gain alone cannot tell them apart and the
# thirds check below does most of that (random hits: extra red lines in 2 of 16 trials).
# Above SURE_GAIN the gain alone is evidence: the thirds check, whose short fits can miss in a
# real song (a break, a dotted figure), refused ramps with gains of 2.3-3.0 in General MIDI songs.
RAMP_GAIN = 1.15
SURE_GAIN = 1.6
THIRDS_TOLERANCE = 0.3  # each third's own tempo is the ramp's there, within this of its change
DRIFT_MS = 10.0  # a ramp no straight line follows within this is drift
FIT_MS = 5.0  # each red line of a ramp follows its beats within this
MIN_BARS = 4  # the shortest red line a ramp is split into (but the last)


class Ramp(NamedTuple):
    """A tempo going linearly in time: beats where _beat_axis(frame) - phase is whole."""

    period: float  # at `middle`, frames per beat
    bend: float  # beats a frame per frame
    middle: float  # frame
    phase: float  # beats
    gain: float  # onset strength on its beats over the best constant grid's (1.0: no better)


def _warped_fold(env: np.ndarray, beats: np.ndarray, bins: int) -> tuple[float, float]:
    """(strength per beat, phase in beats) of `env` folded on the beat axis `beats` (the beat
    coordinate of each frame), as core.tempo_grid.fold folds on a constant grid."""
    height, phase, _ = folded_peak(env, beats % 1.0, bins)
    return height / max(float(beats[-1] - beats[0]), 1.0), phase


def _beat_axis(frames: np.ndarray, middle: float, period: float, bend: float) -> np.ndarray:
    """The beat coordinate of each frame under a tempo that goes linearly in time through
    1 / `period` beats a frame at `middle`, changing by `bend` beats a frame per frame."""
    t = frames - middle
    return t / period + 0.5 * bend * t * t


def _beat_time(beat: float, middle: float, period: float, bend: float) -> float:
    """The frame of beat coordinate `beat` on that axis (the inverse of _beat_axis)."""
    if abs(bend) < 1e-15:
        return middle + beat * period
    f = 1.0 / period
    return middle + (-f + math.sqrt(max(f * f + 2 * bend * beat, 0.0))) / bend


def ramp_fit(env: np.ndarray, period: float, start: float, end: float) -> Ramp:
    """The best ramp over frames [start, end): a tempo going linearly in time, searched for
    RAMPS tempo changes, each with its own mean period searched coarse to fine (a long section
    needs it to ~0.05%: an error of e moves its end beats by e x half its beats), then the best
    ramp refined the same way."""
    a, b = max(int(start), 0), min(int(end), len(env))
    frames = np.arange(a, b, dtype=np.float64)
    seg, middle = env[a:b], (a + b) / 2
    bins = max(int(period * 4), 8)  # a quarter frame each, as fold's

    def best_period(ramp: float) -> tuple[float, float, float, float]:
        found = (-1.0, period, 0.0, 0.0)
        for steps in PERIOD_STEPS:
            centre = found[1]
            for shift in steps:
                p = centre * (1 + shift)
                bend = -ramp / p / (b - a)  # the period grows by `ramp` end to end
                strength, phase = _warped_fold(seg, _beat_axis(frames, middle, p, bend), bins)
                if strength > found[0]:
                    found = (strength, p, bend, phase)
        return found

    tried = {float(r): best_period(float(r)) for r in RAMPS}
    coarse = max(tried, key=lambda r: tried[r][0])
    for r in coarse + FINE_RAMPS:
        tried.setdefault(float(r), best_period(float(r)))
    strength, p, bend, phase = max(tried.values(), key=lambda f: f[0])
    return Ramp(p, bend, middle, phase, strength / max(tried[0.0][0], 1e-12))


def drift_lines(env: np.ndarray, period: float, beat: float, meter: int, end: float,
                accent: np.ndarray | None = None) -> list[tuple[float, float]]:
    """(first beat frame, period) of each red line for the grid of `period` whose first
    downbeat is frame `beat`, up to frame `end`: the grid alone unless its beats follow a ramp.
    With `accent` (core.downbeat.accent_curve of the low bands' onsets and spectral change),
    the ramp's beats are its half of the beat that carries more of it, as
    core.downbeat.on_the_beat decides for a grid; without, the grid's half."""
    steady = [(beat, period)]
    if meter < 1 or min(end, len(env)) - max(beat, 0) < 2 * MIN_BARS * meter * period:
        return steady
    bars = int((end - beat) / (period * meter))
    ramp = ramp_fit(env, period, beat, end)
    if ramp.gain < RAMP_GAIN or (ramp.gain < SURE_GAIN and not _confirmed(env, ramp, beat, end)):
        return steady
    # the ramp's beats: on its half of the beat with the accents (the grid's, in a drifting
    # song, sits on either half in turn), else on the grid's; from the one nearest its downbeat
    u = float(_beat_axis(np.array([beat]), ramp.middle, ramp.period, ramp.bend)[0])
    phase = ramp.phase
    if accent is not None:
        if _off_beats_accented(accent, ramp, beat, end):
            phase = (phase + 0.5) % 1.0
    elif abs((u - phase) - round(u - phase)) > 0.25:
        phase = (phase + 0.5) % 1.0
    first = round(u - phase)
    k = np.arange(bars * meter + 1, dtype=np.float64)
    times = np.array([_beat_time(first + j + phase, ramp.middle, ramp.period, ramp.bend)
                      for j in k])
    # a ramp no straight line follows within DRIFT_MS (a constant gap to the grid is not drift)
    if _line(k, times, 0, bars * meter)[2] * FRAME_MS <= DRIFT_MS:
        return steady
    lines: list[tuple[float, float]] = []
    start = 0
    while start < bars:
        last = min(start + MIN_BARS, bars)
        fit = _line(k, times, start * meter, last * meter)
        while last < bars:
            wider = _line(k, times, start * meter, (last + 1) * meter)
            if wider[2] > FIT_MS / FRAME_MS:
                break
            last, fit = last + 1, wider
        lines.append((fit[0], fit[1]))
        start = last
    return [_on_its_beats(env, at, p, end if i + 1 == len(lines) else lines[i + 1][0])
            for i, (at, p) in enumerate(lines)]


def _off_beats_accented(accent: np.ndarray, ramp: Ramp, start: float, end: float) -> bool:
    """Whether the ramp's half beats carry more `accent` than its beats (off-beat hi-hats can
    outweigh the beats in the full-band envelope)."""
    a, b = max(start, 0.0), min(end, len(accent) - 1)
    first = math.ceil(float(_beat_axis(np.array([a]), ramp.middle, ramp.period, ramp.bend)[0])
                      - ramp.phase)
    last = math.floor(float(_beat_axis(np.array([b]), ramp.middle, ramp.period, ramp.bend)[0])
                      - ramp.phase)
    if last - first < 4:
        return False
    sums = []
    for half in (0.0, 0.5):
        frames = [_beat_time(j + ramp.phase + half, ramp.middle, ramp.period, ramp.bend)
                  for j in range(first, last)]
        idx = np.clip(np.round(frames).astype(int), 0, len(accent) - 1)
        sums.append(float(accent[idx].sum()))
    return sums[1] > sums[0]


def _confirmed(env: np.ndarray, ramp: Ramp, start: float, end: float) -> bool:
    """Whether each third of [start, end) has on its own the tempo the ramp gives it there
    (within THIRDS_TOLERANCE of the ramp's change, at least 0.3%): a ramp fitted to hits with no
    beat (whose best ramp can beat its grid by 40%) has its thirds' tempos scattered."""
    a, b = max(start, 0.0), min(end, len(env))
    change = abs(ramp.bend) * ramp.period * (b - a)  # the ramp's tempo change, end to end
    for i in range(3):
        lo, hi = a + (b - a) * i / 3, a + (b - a) * (i + 1) / 3
        tempo = 1 / ramp.period + ramp.bend * ((lo + hi) / 2 - ramp.middle)  # beats a frame
        local, _, _ = fit_grid(env, int(lo), int(hi), 1 / tempo, coarse=0.03)
        if abs(local * tempo - 1) > max(THIRDS_TOLERANCE * change, 0.003):
            return False
    return True


def _on_its_beats(env: np.ndarray, at: float, period: float, end: float) -> tuple[float, float]:
    """The red line (first beat `at`, `period`) moved to where its own stretch's onsets fold,
    by less than an eighth of a beat (never onto the off-beats): the ramp's curve only
    approximates the music's."""
    a, b = max(int(at), 0), min(int(end), len(env))
    if b - a < 2 * period:
        return at, period
    _, phase, _ = fold(env[a:b], a, period)
    shift = (phase - at + period / 2) % period - period / 2
    return (at + shift if abs(shift) < period / 8 else at), period


def _line(k: np.ndarray, times: np.ndarray, a: int, b: int) -> tuple[float, float, float]:
    """(time of beat a, period, worst residual) of the straight line through beats a..b."""
    slope, intercept = np.polyfit(k[a:b + 1], times[a:b + 1], 1)
    worst = float(np.abs(times[a:b + 1] - (intercept + slope * k[a:b + 1])).max())
    return float(intercept + slope * a), float(slope), worst
