"""Claps on the snare: the hitsounding a new map of a bare song starts from.

Mappers clap where the drums' snare hits, most often on the backbeat (beats 2 and 4). A new map
of a song with no map had finishes only, and ranked maps put a clap, whistle or finish on
44-75% of their objects (benchmarks/map_style.py). The bar's 2 and 4 alone are not enough: an
estimated tempo may be double the song's (slow songs with busy drums), where the snare comes
every fourth beat, and the bar's phase may be a beat off. So the snare is found in the audio:
- per beat of the map's 4/4 timing, the onset (rise in amplitude, read from 5 ms before the
  beat to 20 ms after it) of the snare's crack (1.5-6 kHz) over the kick's (under 150 Hz) plus
  the kick's mean at any beat: a kick's click and a hi-hat alone score low. In amplitude, not in
  log: a log-mel rise is as big in the kick's bands for a snare out of silence as for a kick;
- per beat class (its place in the bar, 0-3), the log of its beats' mean snare onset over that:
  the backbeat is the class that sounds most like a snare, with the other beat of its pair (2
  with 4) unless that one is HALF_TIME weaker (a half-time beat, or the tempo read at double);
- where those classes stand out from the others by CONTRAST or less, the song has no backbeat
  to clap (no drums, a four-on-the-floor kick, a snare on every beat): no claps; nor where they
  take in the bar's first beat (the kick's: a bright kick, a cowbell or a bar read a beat off
  had it clapped; see KICK_CLASS);
- a beat of those classes claps where it sounds more like a snare than the other classes' median
  beat and its snare onset is LOCAL of its classes' median or more: a bar whose snare rests
  (a fill, a break) keeps none.
On 67 songs rendered from MIDI with snare hits (General MIDI and Planet Blupi, their timing
estimated; benchmarks/backbeat_accuracy.py), 38 got claps, a median 97% of them on a snare hit
of the song's drums, catching a median 77% of those hits on the beats (30 songs at 80% or
more, 3 under 50%); claps on the bar's 2 and 4 were 47% on snare hits. Of 14 songs with
no snare, 5 got claps.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from core.audio import FRAME_MS, LATENCY_MS, band_hz
from core.beat_grid import red_line_beats
from core.beatmap.model import TimingPoint

KICK_HZ = 150.0
SNARE_HZ = (1500.0, 6000.0)
PEAK_FRAMES = (1, 5)  # an onset is read from this many frames before its beat to this many after
CONTRAST = 0.1  # log: the backbeat's classes over the other classes' strongest
HALF_TIME = 0.3  # log: one class of the pair this much over the other claps alone
# The bar's first beat, the kick's: no claps where the classes chosen take it in. Of the songs
# whose classes did (alone or with 3; 52 clapped), 14 had claps, 8 of them under 50% on snares,
# and 3 songs with no snare at all (chuggachugga's claps were all on its kick downbeats: QA
# round 6). Without them, songs clapped under 50% on snares 11 -> 3, at 80% or more 34 -> 30.
KICK_CLASS = 0
# a beat of the backbeat's classes claps where it sounds more like a snare than the other
# classes' median beat, and its snare band's onset is this share of those classes' median or more
LOCAL = 0.5
ON_BEAT_MS = 10.0  # an object this near a clapped beat gets its clap
METER = 4  # the bars a backbeat is read in


def beats_of(points: list[TimingPoint], end_ms: float) -> list[tuple[float, int]]:
    """(time, class in the bar) of each beat of the map's METER-beat red lines up to `end_ms`
    (each red line's bars start on it)."""
    return [(t, place) for t, place, meter in red_line_beats(points, end_ms) if meter == METER]


def drum_onsets(mel: Tensor, times: list[float]) -> np.ndarray:
    """(beats, 2) the onset strength of the snare's band and of the kick's at each beatmap time
    (NaN past the audio's end)."""
    hz = band_hz()
    amplitude = torch.pow(10.0, 2.0 * mel.float())  # log_mel's (log10 power - peak + 4) / 4
    bands = []
    for mask in ((hz > SNARE_HZ[0]) & (hz < SNARE_HZ[1]), hz < KICK_HZ):
        band = amplitude[torch.as_tensor(mask)].sum(dim=0)
        bands.append(torch.nn.functional.pad(torch.relu(band[1:] - band[:-1]), (1, 0)).numpy())
    out = np.full((len(times), 2), np.nan)
    for i, time in enumerate(times):
        frame = round((time + LATENCY_MS) / FRAME_MS)
        if 0 <= frame < amplitude.shape[1] - 1:
            lo, hi = max(frame - PEAK_FRAMES[0], 0), frame + PEAK_FRAMES[1]
            out[i] = [max(float(band[lo:hi].max()), 1e-6) for band in bands]
    return out


def backbeat_classes(onsets: np.ndarray, classes: np.ndarray) -> list[int] | None:
    """The beat classes the snare plays on (see the docstring), None where none stands out:
    per class, the log of its beats' mean snare onset over their mean kick onset."""
    known = ~np.isnan(onsets[:, 0])
    floor = onsets[known, 1].mean() if known.any() else 0.0  # the kick band at any beat
    score = np.zeros(METER)
    for c in range(METER):
        here = onsets[known & (classes == c)]
        if here.size == 0:
            return None
        score[c] = np.log(here[:, 0].mean() / (here[:, 1].mean() + floor))
    best = int(np.argmax(score))
    partner = (best + 2) % METER  # the other beat of its pair (2 with 4)
    chosen = sorted([best, partner]) if score[best] - score[partner] <= HALF_TIME else [best]
    others = [c for c in range(METER) if c not in chosen]
    if KICK_CLASS in chosen:
        return None
    return chosen if score[chosen].min() - score[others].max() > CONTRAST else None


def clap_test(mel: Tensor, points: list[TimingPoint]) -> Callable[[float], bool] | None:
    """Whether an object at a beatmap time gets a clap: on a beat of the song's backbeat that
    sounds like its snare (see the docstring); None where the song has no backbeat to clap."""
    beats = beats_of(points, mel.shape[-1] * FRAME_MS)
    if len(beats) < 4 * METER:
        return None
    times = [t for t, _ in beats]
    classes = np.array([c for _, c in beats])
    onsets = drum_onsets(mel, times)
    chosen = backbeat_classes(onsets, classes)
    if chosen is None:
        return None
    known = ~np.isnan(onsets[:, 0])
    strength = np.log(onsets[:, 0] / (onsets[:, 1] + onsets[known, 1].mean()))
    mine = np.isin(classes, chosen) & known
    floor = float(np.median(strength[~mine & known]))
    snare = LOCAL * float(np.median(onsets[mine, 0]))
    claps = sorted(t for t, on, s, m in zip(times, onsets[:, 0], strength, mine)
                   if m and s > floor and on >= snare)

    def clapped(time: float) -> bool:
        i = bisect.bisect_left(claps, time - ON_BEAT_MS)
        return i < len(claps) and claps[i] <= time + ON_BEAT_MS
    return clapped
