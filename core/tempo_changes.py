"""Tempo changes: stretches of one tempo from local tempo estimates, kept as changes only where
the new tempo clearly fits better, each placed on a beat (step 4 of core.tempo's method).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import maximum_filter1d

from core.tempo_grid import FPS, RELATIVES, Grid, fit_grid, octave, period_of, weighted

WINDOW_S, HOP_S = 5.0, 0.5  # local tempo windows for change detection
MIN_SECTION_S = 3.0
AGREE = 0.025  # local periods within 2.5% belong to one section
MERGE = 0.01  # fitted sections within 1% are one tempo
FIGURE_S = 10.0  # shorter sections between two of the same tempo are merged into them (and a
# last one at an octave relative of the tempo before, or near it: _last_figure)
# ... and so are those up to NEAR_FIGURE_S long whose tempo is within NEAR of theirs: a sparse
# 17 s of a one-tempo song read at 173.4 between two stretches of 180 BPM (its grid 107 ms off
# the true one, 16 of 24 heads off the beat; QA round 5)
NEAR_FIGURE_S, NEAR = 30.0, 0.05
CHANGE_GAIN = 1.05  # a new tempo must put this much more onset strength per beat on its grid
RELATED_GAIN = 1.4  # ... and this much where it is an octave relative (a true x1.5 change passes)
WEAK = 0.15  # a section whose beats carry under this share of the song's typical strength
# per beat is no evidence of a tempo


def _local_periods(env: np.ndarray, near: float) -> np.ndarray:
    w, h = int(WINDOW_S * FPS), int(HOP_S * FPS)
    starts = range(0, max(len(env) - w, 0) + 1, h)
    return np.array([period_of(env[s:s + w], near) for s in starts])


def _same(p: float, q: float, tol: float) -> bool:
    r = max(p, q) / min(p, q)
    return any(abs(r / k - 1) < tol for k in (1, 2))


def sections(env: np.ndarray, song: float | None = None) -> list[tuple[int, int, float]]:
    """(start frame, end frame, rough period) of each constant-tempo stretch; `song` is the
    whole envelope's period (period_of), where the caller has it already."""
    p0 = period_of(env) if song is None else song
    local = _local_periods(env, p0)
    h, w = int(HOP_S * FPS), int(WINDOW_S * FPS)
    if len(local) < 3:
        return [(0, len(env), p0)]
    runs: list[list[int]] = [[0]]
    for i in range(1, len(local)):
        if _same(local[i], float(np.median(local[runs[-1]])), AGREE):
            runs[-1].append(i)
        else:
            runs.append([i])
    min_windows = int(MIN_SECTION_S / HOP_S)
    runs = [r for r in runs if len(r) >= min_windows] or [list(range(len(local)))]
    sections = []
    for r in runs:
        period = float(np.median(local[r]))
        if _same(period, p0, AGREE):
            period = p0
        if sections and _same(period, sections[-1][2], MERGE * 2):
            sections[-1] = (sections[-1][0], r[-1] * h + w // 2, sections[-1][2])
            continue
        sections.append((r[0] * h + w // 2, r[-1] * h + w // 2, period))
    out = []
    for i, (a, b, p) in enumerate(sections):
        start = 0 if i == 0 else (sections[i - 1][1] + a) // 2
        end = len(env) if i + 1 == len(sections) else (b + sections[i + 1][0]) // 2
        out.append((start, end, p))
    return out


def near_ratio(ratio: float, factors: tuple[float, ...]) -> bool:
    """Whether a ratio of periods is within 2% of one of `factors`."""
    return any(abs(ratio / f - 1) < 0.02 for f in factors)


def confirm_changes(env: np.ndarray, sections: list[tuple[int, int, float]],
                    grids: list[Grid]) -> None:
    """Merge, in place, each section into the one before unless its tempo is a change: its grid
    fits it clearly better than the tempo before does (by CHANGE_GAIN, or RELATED_GAIN for an
    octave relative), the tempo before fits its own section better than the new one would (by
    CHANGE_GAIN, RELATED_GAIN at x3/2 and x2/3), neither carries under WEAK of the song's
    typical onset strength, and it is no short figure between two stretches of one tempo. A
    merged stretch keeps the tempo with more onset strength on its beats, and is weighed
    against the one before it again where its tempo moved. Last, near figures go too
    (merge_returns)."""
    typical = sum(g[2] * (b - a) for g, (a, b, _) in zip(grids, sections)) / len(env)
    i = 1
    while i < len(grids):
        a, b, _ = sections[i]
        # each tempo is fitted where it is weighed within AGREE of itself: a tempo that drifts
        # (core.tempo_drift) is still one tempo, and a grid held to the exact tempo of the
        # stretch before lost to any other in a drifting song (triangles ramped 4%: x4/3)
        before = fit_grid(env, a, b, grids[i - 1][0], coarse=AGREE)
        # a short excursion that returns to the tempo before is a rhythmic figure, not a change
        figure = _figure(sections, grids, i, near_too=False)
        # a tempo x2, x1/2, x3/2 or x2/3 the one before is more often the octave rule flipping
        # between sections (3/4 and 6/8 songs) than a change: it must fit far better, and
        # where it does not, the octave rule picks one tempo for the two sections together
        ratio = grids[i][0] / grids[i - 1][0]
        related = near_ratio(ratio, RELATIVES[1:])
        gain = RELATED_GAIN if related else CHANGE_GAIN
        # ... and the tempo before must fit its own section better than the new one: a section
        # timed at x3/2 or x2/3 of the true tempo (an intro's triplets) is not a change. Not
        # by RELATED_GAIN at x2 or x1/2: a grid twice as fast puts every other beat on a slow
        # section's beats and fits it within 1.4x, so a true doubling would fail
        thirds = near_ratio(ratio, (1.5, 2 / 3))
        after = fit_grid(env, sections[i - 1][0], sections[i - 1][1], grids[i][0], coarse=AGREE)
        # a stretch with next to no onsets on its grid (a fade-out, a near-silent intro) is no
        # evidence of a tempo
        weak = min(grids[i - 1][2], grids[i][2]) < WEAK * typical
        if (figure or weak or weighted(grids[i]) < gain * weighted(before)
                or weighted(grids[i - 1]) < (gain if thirds else CHANGE_GAIN) * weighted(after)):
            # the merged stretch keeps the tempo with the more onset strength on its beats
            evidence = [g[2] * (sec[1] - sec[0]) / g[0]
                        for g, sec in zip(grids[i - 1:i + 1], sections[i - 1:i + 1])]
            later = evidence[1] > evidence[0]
            period = grids[i][0] if later else grids[i - 1][0]
            sections[i - 1] = (sections[i - 1][0], b, sections[i - 1][2])
            del sections[i], grids[i]
            if related:
                period = octave(env, sections[i - 1][0], b, period)
            grids[i - 1] = fit_grid(env, sections[i - 1][0], b, period, fine=True)
            if related or later:  # its tempo may have moved: weigh it against the one before
                i = max(i - 1, 1)
        else:
            i += 1
    merge_returns(env, sections, grids)


def keep_song_tempo(env: np.ndarray, sections: list[tuple[int, int, float]],
                    grids: list[Grid], song: float) -> None:
    """Refit, in place, each section at the song's tempo (`song`: period_of over the whole
    envelope, octave rule and all) where that grid, fitted there, outweighs the section's own;
    then merge neighbours left within MERGE of one tempo. Merging one by one keeps the stronger
    tempo of each pair, so a first stretch fitted wrong can carry its tempo over a whole song:
    a mastered metal song at 170 BPM whose first 30 s read 211 came out 209 end to end, though
    170 fits every stretch of it better."""
    for i, (a, b, _) in enumerate(sections):
        if near_ratio(song / grids[i][0], RELATIVES[1:]):
            continue  # an octave relative: the octave rule has weighed it there already
        own = fit_grid(env, a, b, song, coarse=AGREE)
        if weighted(own) > weighted(grids[i]):
            grids[i] = own
    i = 1
    while i < len(grids):
        if abs(grids[i][0] / grids[i - 1][0] - 1) < MERGE:
            _absorb(env, sections, grids, i - 1, 1)
        else:
            i += 1


def merge_returns(env: np.ndarray, sections: list[tuple[int, int, float]],
                   grids: list[Grid]) -> None:
    """Merge, in place, each stretch between two of one tempo (within MERGE) that is a figure
    of it: under FIGURE_S, or under NEAR_FIGURE_S and within NEAR of it; and a last section
    that is one of the tempo before (_last_figure). confirm_changes weighs
    each section as it stands, and a run of short ones it merged one by one can end up such a
    stretch after the weighing that would have caught it."""
    i = 1
    while i + 1 < len(grids):
        if _figure(sections, grids, i, near_too=True):
            _absorb(env, sections, grids, i - 1, 2)
            i = max(i - 1, 1)  # the merged stretch may be the middle of another such
        else:
            i += 1
    if len(grids) > 1 and _last_figure(sections, grids):
        _absorb(env, sections, grids, len(grids) - 2, 1)


def _absorb(env: np.ndarray, sections: list[tuple[int, int, float]], grids: list[Grid],
            i: int, count: int) -> None:
    """Merge, in place, the `count` sections after section `i` into it, its tempo refitted over
    the whole stretch."""
    end = sections[i + count][1]
    sections[i] = (sections[i][0], end, sections[i][2])
    del sections[i + 1: i + 1 + count], grids[i + 1: i + 1 + count]
    grids[i] = fit_grid(env, sections[i][0], end, grids[i][0], fine=True)


def _last_figure(sections: list[tuple[int, int, float]], grids: list[Grid]) -> bool:
    """Whether the last section is an ending's figure of the tempo before: under FIGURE_S and
    an octave relative of it (x2, x1/2, x3/2, x2/3) or within NEAR. A one-tempo song's dotted
    outro had its last 3 s timed at x2/3 (QA round 6)."""
    a, b, _ = sections[-1]
    ratio = grids[-1][0] / grids[-2][0]
    return b - a < FIGURE_S * FPS and (near_ratio(ratio, RELATIVES[1:]) or abs(ratio - 1) < NEAR)


def _figure(sections: list[tuple[int, int, float]], grids: list[Grid], i: int,
            near_too: bool) -> bool:
    """Whether section `i` lies between two of one tempo (within MERGE) and is a figure of it:
    under FIGURE_S, or (`near_too`) under NEAR_FIGURE_S and within NEAR of it."""
    if not 0 < i < len(grids) - 1:
        return False
    a, b, _ = sections[i]
    around = grids[i - 1][0]
    if abs(grids[i + 1][0] / around - 1) >= MERGE:
        return False
    near = abs(grids[i][0] / around - 1) < NEAR
    return b - a < FIGURE_S * FPS or (near_too and near and b - a < NEAR_FIGURE_S * FPS)


def _grid_sum(env: np.ndarray, period: float, phase: float, lo: float,
              hi: float) -> tuple[np.ndarray, np.ndarray]:
    """The grid's beats in [lo, hi) and the onset strength (±1 frame) at each, minus the
    envelope's mean."""
    peak = maximum_filter1d(env, 3)
    k0 = math.ceil((lo - phase) / period)
    beats = phase + period * np.arange(k0, math.ceil((hi - phase) / period))
    beats = beats[(beats >= 0) & (beats < len(env) - 1)]
    return beats, peak[np.round(beats).astype(int)] - peak.mean()


def change_at(env: np.ndarray, a: Grid, b: Grid, guess: int) -> float:
    """The beat of grid `b` where the tempo changes from grid `a`, near frame `guess`: the one
    that puts the most onset strength on grid `a` before it and grid `b` after it, within 8 s
    either side of `guess`. (Grid `a` counted over the 8 s before each candidate instead, a
    window sliding with it, put synthetic songs' changes a median 846 ms off, 11/28 within
    500 ms; over one fixed stretch, 1 ms and 24/28.)"""
    reach = int(8 * FPS)
    beats_b, vals_b = _grid_sum(env, b[0], b[1], guess - reach, guess + reach)
    beats_a, vals_a = _grid_sum(env, a[0], a[1], guess - reach, guess + reach)
    best, where = -np.inf, float(beats_b[0]) if len(beats_b) else float(guess)
    for t in beats_b:
        s = vals_a[beats_a < t].sum() + vals_b[beats_b >= t].sum()
        if s > best:
            best, where = s, float(t)
    return where
