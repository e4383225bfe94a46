"""Kiai time and a preview point for a new map of a song that has no map yet.

Mappers mark the song's loudest, fullest sections (the choruses, the drops) as kiai time and
start the song-select preview at one of them. A new map of a bare song had neither: no kiai
flashes, and a preview osu! picks itself (40% into the song). The hand-made maps of lazer's
intro tracks (the test corpus) show what the mark follows: circles' kiai bars sit 2.8-8.2 dB
over the song's typical bar and its other bars -12 to +1.6; its kiai starts on the bar where
the level jumps. So:
- each bar of the map's timing gets its level (the mean log-mel band over it, in dB);
- bars within KIAI_DB of the song's loud level (LOUD_QUANTILE of the bars) are loud; a run of
  loud bars with gaps of at most GAP_BARS, MIN_BARS long or more, is kiai time, from its first
  bar line to the bar line after its last;
- where that marks more than MAX_SHARE of the song's bars (a song loud throughout), only the
  loudest bars count, the margin narrowed until it does not. Ranked maps in the test corpus
  (20 of 200 objects or more) spend a median 24% of their span in kiai time, at most 46%;
- the preview starts where the last kiai time that starts before PREVIEW_AT of the song does:
  ranked maps put it at a median 72% of the song, at or a bar before a kiai time's start on
  4 of 7 that set one.
A song with a map of its own keeps its kiai and preview: they are the mapper's.
"""

from __future__ import annotations

import math

import numpy as np
from torch import Tensor

from core.audio import FRAME_MS, LATENCY_FRAMES
from core.beat_grid import red_line_beats
from core.beatmap.model import Beatmap, TimingPoint

KIAI_DB = 3.5  # a loud bar sits within this of the song's loud level
LOUD_QUANTILE = 0.9  # the song's loud level: this quantile of its bars' levels
GAP_BARS = 1  # a run of loud bars goes on over this many quieter ones
MIN_BARS = 8  # a run shorter than this is no section (two phrases of four bars)
MAX_SHARE = 0.45  # kiai time marks at most this share of the song's bars
MARGIN_STEP_DB = 0.25  # how the margin narrows for a song loud throughout
PREVIEW_AT = 0.8  # the preview is the last kiai time's start before this share of the song


def bar_lines(points: list[TimingPoint], end_ms: float) -> list[float]:
    """The map's bar lines from 0 ms to `end_ms` (each red line starts its bars again)."""
    return [t for t, place, _ in red_line_beats(points, end_ms) if place == 0]


def bar_levels(mel: Tensor, lines: list[float], end_ms: float) -> np.ndarray:
    """(bars,) each bar's mean log-mel band in dB (log_mel's -1..1 spans 80 dB), the audio
    LATENCY_FRAMES after its beatmap time."""
    levels = mel.mean(dim=0).numpy() * 40.0
    edges = [*lines, end_ms]
    out = np.full(len(lines), -np.inf)
    for i in range(len(lines)):
        first = int(edges[i] // FRAME_MS) + LATENCY_FRAMES
        last = int(edges[i + 1] // FRAME_MS) + LATENCY_FRAMES
        piece = levels[first:max(last, first + 1)]
        if piece.size:
            out[i] = float(piece.mean())
    return out


def loud_runs(levels: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(first bar, bar after the last) of each run of bars at or over `threshold`, bridging
    GAP_BARS quieter ones, MIN_BARS long or more."""
    runs: list[list[int]] = []
    for i in np.flatnonzero(levels >= threshold):
        if runs and i - runs[-1][1] <= GAP_BARS:
            runs[-1][1] = int(i) + 1
        else:
            runs.append([int(i), int(i) + 1])
    return [(a, b) for a, b in runs if b - a >= MIN_BARS]


def kiai_spans(mel: Tensor, points: list[TimingPoint]) -> list[tuple[float, float]]:
    """(start, end) ms of each kiai time for the song whose features are `mel`, timed by
    `points`: its loud sections, on its bar lines; none without bars."""
    end_ms = mel.shape[-1] * FRAME_MS
    lines = bar_lines(points, end_ms)
    if len(lines) < MIN_BARS:
        return []
    levels = bar_levels(mel, lines, end_ms)
    loud = float(np.quantile(levels[np.isfinite(levels)], LOUD_QUANTILE))
    margin = KIAI_DB
    while True:
        runs = loud_runs(levels, loud - margin)
        if sum(b - a for a, b in runs) <= MAX_SHARE * len(lines) or margin <= 0.0:
            break
        margin -= MARGIN_STEP_DB
    edges = [*lines, end_ms]
    return [(edges[a], edges[b]) for a, b in runs]


def kiai_lines(points: list[TimingPoint], spans: list[tuple[float, float]]
               ) -> list[TimingPoint]:
    """Green lines that turn kiai on at each span's start and off at its end (on the bar
    lines' whole ms, floor(tick), as objects are written: a fraction of a ms after them kiai
    would miss the object on the bar line), at the slider velocity, sample set and volume in
    effect there (an estimate's lines: 1.0x, its own). The red lines inside a span carry kiai
    themselves (mark_kiai)."""
    lines = []
    for start, end in spans:
        for time, effects in ((math.floor(start + 1e-6), 1), (math.floor(end + 1e-6), 0)):
            now = [p for p in points if p.time <= time + 0.5] or points[:1]
            red = [p for p in now if p.uninherited] or now
            green = [p for p in now if not p.uninherited]
            current = green[-1] if green and green[-1].time >= red[-1].time else None
            lines.append(TimingPoint(
                time=time, beat_length=current.beat_length if current else -100.0,
                meter=red[-1].meter, sample_set=(current or red[-1]).sample_set,
                sample_index=(current or red[-1]).sample_index,
                volume=(current or red[-1]).volume, uninherited=False, effects=effects))
    return lines


def mark_kiai(beatmap: Beatmap, mel: Tensor) -> None:
    """Give a new map of estimated timing (no map of its own) kiai time on the song's loud
    sections and, where it has none, a preview where one starts; in place. A map that has kiai
    time already keeps its own."""
    if any(p.kiai for p in beatmap.timing_points):
        return
    spans = kiai_spans(mel, beatmap.timing_points)
    if not spans:
        return
    lines = kiai_lines(beatmap.timing_points, spans)
    for point in beatmap.timing_points:  # a red line has a kiai flag of its own: on inside
        if point.uninherited and any(start <= point.time < end for start, end in spans):
            point.effects |= 1
    beatmap.timing_points = sorted([*beatmap.timing_points, *lines],
                                   key=lambda p: (p.time, not p.uninherited))
    if beatmap.general.get("PreviewTime", "-1").strip() in ("-1", ""):
        song_ms = mel.shape[-1] * FRAME_MS
        early = [start for start, _ in spans if start < PREVIEW_AT * song_ms] or [spans[0][0]]
        beatmap.general["PreviewTime"] = str(round(early[-1]))
