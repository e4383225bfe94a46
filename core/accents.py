"""The music's accents, clicked: a slider neither ends on the loudest beats nor runs over them.

Mappers click what stands out (a crash, a downbeat hit after a fill) and end sliders on weaker
beats. kiai's maps had put the loudest 5% of their beats and half beats on slider tails or
repeats 6-21% of the time and inside bodies up to 10%, clicking 51-78% (QA, session 28: a
4-star map left 18 of 51 crash cymbals unclicked, its kiai began on a slider's tail).

An accent here is a beat or half beat among the song's loudest ACCENT_SHARE by onset strength
(the music pull's envelope, core.music_pull, unclipped). Clipped at 1, 7-25% of a loud song's
beats and half beats tie as its loudest; taking them all (a crash or accent every 2 beats of
one synthetic song) took a 3-star map's long sliders from 29% to 12%. While decoding, a slider
ends ACCENT_MARGIN_BEATS or more before the next accent (core.constraints' slider room), and
none starts where that leaves it no room to be a slider (a circle comes instead), so the accent
is free for the next head.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from core.music_pull import MusicPull

ACCENT_SHARE = 0.08  # the loudest this share of a song's beats and half beats are its accents
ACCENT_MARGIN_BEATS = 0.25  # a slider ends at least this much before the next accent
ON_ACCENT_MS = 15.0  # an object this near an accent is on it


def accent_times(pull: MusicPull, end_ms: float) -> np.ndarray:
    """Beatmap times (ms) of the song's accents up to `end_ms`: its beats and half beats whose
    onset strength is among the loudest ACCENT_SHARE of them."""
    red = pull.ticks.points
    times = [np.arange(point.time, red[i + 1].time if i + 1 < len(red) else end_ms,
                       point.beat_length / 2)
             for i, point in enumerate(red) if point.beat_length > 0]
    times = np.concatenate(times) if times else np.zeros(0)
    if not len(times):
        return times
    heard = pull.heard(times, clipped=False)  # the loudest apart, not tied at 1
    loud = np.quantile(heard, 1.0 - ACCENT_SHARE)
    return times[(heard >= loud) & (heard > 0.0)]


def next_accent(times: np.ndarray, origin: float) -> Callable[[float], float]:
    """For window times (ms from `origin`): the window time of the first accent over
    ON_ACCENT_MS after it (one the object there is on does not count); inf where none is."""
    def after(t: float) -> float:
        i = int(np.searchsorted(times, origin + t + ON_ACCENT_MS, side="right"))
        return float(times[i]) - origin if i < len(times) else math.inf
    return after


def accent_room(accent_at: float, cursor: float, body: float, beat_ms: float,
                margin_beats: float = ACCENT_MARGIN_BEATS) -> float:
    """How much longer (ms) a slider starting at `cursor`, `body` ms long so far, may last:
    to `margin_beats` before the next accent (at `accent_at`)."""
    return accent_at - margin_beats * beat_ms - cursor - body


def slider_fits(accent_at: float, cursor: float, beat_ms: float, shortest: float,
                lands: Callable[[float], bool] | None = None, step: float = 10.0,
                margin_beats: float = ACCENT_MARGIN_BEATS) -> bool:
    """Whether a slider starting at `cursor` can last `shortest` ms or more (a quarter beat, a
    circle's radius at its speed) and end before the next accent (at `accent_at`), on a time
    `lands` allows (the map's ticks; times `step` ms apart)."""
    latest = cursor + accent_room(accent_at, cursor, 0.0, beat_ms, margin_beats)
    earliest = cursor + max(shortest, beat_ms / 4 - 1.0)
    if latest < earliest:
        return False
    if lands is None or math.isinf(latest):
        return True
    return any(lands(t) for t in np.arange(math.ceil(earliest / step) * step, latest + 1e-6,
                                           step))
