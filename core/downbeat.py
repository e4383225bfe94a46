"""Where the bar and the beat fall on a fitted beat grid: the meter, the downbeat, and whether
the grid sits on the beats or on the off-beats (core.tempo's steps 3 and 5).

Accents are onset strength plus spectral change (`spectral_novelty`): kicks and chords change on
the beat, hi-hats say nothing about it. The bar line is where the low and mid bands change most
from the beats before to the beats after (chords and bass change there and hold through the bar).
Over one beat either side, at the true tempo and phase of 87 real songs in 3/4 or 4/4 (66
General MIDI, 8 Frets on Fire, 10 Planet Blupi, the corpus's 3; benchmarks/midi_songs.py), that
change found the downbeat in 66 (the onset accents did in 37: a snare on 2 and 4 outweighs the
kick on 1), and each of 50 synthetic songs' either way; it is now read over two (CHANGE_BEATS).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from core.tempo_grid import FPS

NOTE_WINDOW = int(0.25 * FPS)  # frames: spectral_novelty's default, a note's attack and body
OUTLIER = 3.0  # meter_of: a beat's accent counts up to this many times the median beat's
# The downbeat's change (bar_change) is read over CHANGE_BEATS beats either side, plus
# BEAT_CHANGE x that over one beat, per beat of a pair of bars (BAR_PAIR * meter classes), the
# kick's onsets (under ~150 Hz) breaking ties. Over one beat alone, with the onsets under 2 kHz
# breaking ties, a grid at double the song's tempo had put the bar on the snare's beats 2 and 4
# (QA round 5). Of 78 songs in 4/4 with MIDI truth, as kiai times them (50 at their tempo, the
# downbeat found; 28 at double, the bar on a true 1 or 3): that way 33 and 14; this way 40 and
# 20. Over two beats alone (38 and 19), a click track whose downbeat alone is accented changes
# as much on every beat
CHANGE_BEATS, BEAT_CHANGE, BAR_PAIR = 2, 0.25, 2
KICK_TIE_BREAK = 0.1  # the kick's onsets' weight beside the change: ties, no more
SWUNG, SWING_SHARE = 3.0, 0.3  # on_the_swing: a grid on a swing's off-beat


def spectral_novelty(mel: np.ndarray, window: int = NOTE_WINDOW) -> np.ndarray:
    """Spectral change per frame: distance between the mean spectra of about `window` frames
    before and after it (0.25 s: a note; a beat: the harmony changing on the bar line). Beyond
    the song's ends is silence (the mel floor), not the other end of the song."""
    w, frames = window, mel.shape[1]
    floor = float(mel.min()) if mel.size else 0.0
    mean = uniform_filter1d(np.pad(mel, ((0, 0), (w, w)), constant_values=floor), w, axis=1,
                            mode="nearest")
    before = mean[:, w - (w // 2 + 1): w - (w // 2 + 1) + frames]
    after = mean[:, w + w // 2: w + w // 2 + frames]
    nov = np.sqrt(((after - before) ** 2).sum(axis=0))
    return nov / (np.percentile(nov, 99) + 1e-9)


def accents(accent: np.ndarray, period: float, phase: float, meter: int, end: float,
            start: float = 0.0) -> np.ndarray:
    """Mean `accent` (per frame, e.g. accent_curve) of each beat class modulo `meter` over the
    grid's beats in frames [start, end); class 0 holds the beat at `phase`."""
    k = np.arange(max(math.ceil((start - phase) / period), 0),
                  int((min(end, len(accent)) - phase) / period))
    idx = np.round(phase + period * k).astype(int)
    inside = (idx >= 0) & (idx < len(accent))
    k, on_beats = k[inside], accent[idx[inside]]
    return np.array([on_beats[k % meter == j].mean() if np.any(k % meter == j) else 0.0
                     for j in range(meter)])


def accent_curve(env: np.ndarray, novelty: np.ndarray) -> np.ndarray:
    """Accent per frame: onset strength (its max over ±1 frame) plus spectral change (±2)."""
    return maximum_filter1d(env, 3) + maximum_filter1d(novelty, 5)


def meter_of(env: np.ndarray, novelty: np.ndarray, period: float, phase: float,
             end: float) -> int:
    """4, or 3 where its accent contrast is 1.5x that of 4 (6/8 songs come out as 3), each
    beat's accent counted up to OUTLIER times the median beat's: a few loud beats (the first
    after the silence before the song, a crash) had made a 4/4 song a 3 (QA, session 28: 90
    BPM timed at 180, whose first beat carried 13x the median)."""
    contrast, accent = {}, accent_curve(env, novelty)
    on = _on_beats(accent, period, phase, end)
    cap = OUTLIER * float(np.median(on)) if len(on) else 0.0
    accent = np.minimum(accent, cap) if cap > 0 else accent
    for m in (4, 3):
        acc = accents(accent, period, phase, m, end)
        contrast[m] = (acc.max() - np.delete(acc, acc.argmax()).mean()) / (acc.mean() + 1e-9)
    return 3 if contrast[3] > 1.5 * contrast[4] else 4


def bar_change(low: np.ndarray, period: float) -> np.ndarray:
    """The change `downbeat` reads (see CHANGE_BEATS): spectral_novelty of `low` (the low and
    mid bands' log-mel) over a few beats of `period` frames and over one."""
    return spectral_novelty(low, int(CHANGE_BEATS * period) | 1) \
        + BEAT_CHANGE * spectral_novelty(low, int(period) | 1)


def downbeat(change: np.ndarray, kick: np.ndarray, period: float, phase: float, meter: int,
             after: float, end: float) -> float:
    """The first beat at or after frame `after` whose class (mod meter) carries the most
    `change` (bar_change of the low and mid bands; see the module docstring), per beat of a
    pair of bars, the `kick` band's onsets breaking ties (a loudness accent alone changes the
    spectrum as much after the downbeat as before it)."""
    cls = int(np.argmax(accents(accent_curve(KICK_TIE_BREAK * kick, change), period, phase,
                                BAR_PAIR * meter, end))) % meter
    k = math.ceil((after - phase) / period)
    k += (cls - k) % meter
    return phase + k * period


def on_the_beat(accent: np.ndarray, period: float, phase: float, lo: float, hi: float) -> float:
    """`phase`, or the half beat after it where that carries more `accent` (accent_curve of the
    onsets below ~2 kHz and spectral change) within frames [lo, hi): a grid fitted to all the
    onsets can sit on off-beat hi-hats."""
    on, off = accents(accent, period / 2, phase, 2, hi, start=lo)
    return (phase + period / 2) % period if off > on else phase


def on_the_swing(env: np.ndarray, period: float, phase: float, lo: float, hi: float) -> float:
    """`phase`, or a third of a beat after it where the grid sits on a swing's off-beat: the
    onsets (`env`, ±1 frame) a third after its beats SWUNG times those two thirds after, and
    SWING_SHARE of its beats' and SWUNG times the mean frame's or more. Swung, the beat's note
    is the long one: onsets on it and two thirds after it. 12 songs with MIDI truth, folded on
    kiai's grids: the 4 swung ones timed on the beat, 0.57-0.62 two thirds after, 0.03-0.06 a
    third after; boogi_marabi (QA round 6) timed on the off-beat, 0.06 and 0.46 (6.5x the mean
    frame); the 8 straight ones under 0.1 at both. Random clicks: under 2x the mean."""
    curve = maximum_filter1d(env, 3)
    (on,), (third,), (two,) = (accents(curve, period, phase + k * period / 3, 1, hi, start=lo)
                               for k in (0, 1, 2))
    window = curve[int(min(max(lo, 0), len(curve))):int(min(max(hi, 0), len(curve)))]
    if not window.size:
        return phase
    typical = float(window.mean())
    if third > SWUNG * max(two, typical) and third >= SWING_SHARE * on:
        return (phase + period / 3) % period
    return phase


def _on_beats(accent: np.ndarray, period: float, phase: float, end: float) -> np.ndarray:
    """`accent` on each beat of the grid before frame `end`."""
    k = np.arange(max(math.ceil(-phase / period), 0),
                  int((min(end, len(accent)) - phase) / period))
    return accent[np.clip(np.round(phase + period * k).astype(int), 0, len(accent) - 1)]
