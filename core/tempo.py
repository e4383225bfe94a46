"""Timing from audio: BPM, offset and tempo changes as uninherited osu! timing points.

Method, and why (no librosa): librosa's beat tracker is the usual library for this, but it pulls
numba and llvmlite (tens of MB, a slow first import and a JIT warm-up) into a project that already
computes a log-mel spectrogram at the 5 ms hop osu! needs; its tracker also returns beat times,
not the single constant-tempo grid per section that an osu! timing point is, so a grid fit would
be needed on top anyway. The few steps below use numpy and scipy only, are deterministic (no
randomness, no threads whose order matters) and take ~0.3 s for 30 s and ~0.7-2.2 s for the
2-minute corpus tracks on this busy 2-core machine (log-mel plus a few hundred folds, and as
many again for step 6).

1. Onset strength: spectral flux of our own log-mel (core.audio.log_mel, 5 ms frames): the
   half-wave rectified frame-to-frame rise summed over the 80 bands, minus its 0.5 s moving
   average (again rectified), so sustained loudness does not count, only attacks.
2. Tempo: the envelope's autocorrelation, scored as a comb over the first four multiples of each
   candidate period from 60 to 250 BPM, times a weak log-normal prior centred on PRIOR_BPM, picks
   a period family. Octave rule (mappers time at the beat the music implies): among the pick and
   its relatives x2, x1/2, x3/2, x2/3, the grid (fitted as in 3.) with the largest onset strength
   per beat x (BPM / PRIOR_BPM) ** OCTAVE_GAMMA wins. Per-beat strength alone favours slow grids
   (they sit only on the strongest beats), the total favours fast ones (every eighth note scores);
   with the exponent 0.7 (0.6-0.8 do alike on the synthetic songs, 0.5 far worse), a grid half
   as fast must be 1.6x as strong per beat to win. Above RARE_BPM a grid's weight falls off as a
   half-Gaussian (osu! music that fast is rare; a 115-125 BPM song doubled is the usual error):
   welcome's 240 became its 120; 3 real + 60 synthetic songs 55/79 -> 59/79 sections right
   (seeds 1000-1079: 64/108 -> 72/108). Per-beat strength cannot settle the rest: on synthetic
   songs a grid and its double relate alike (0.63-0.79 per beat) whichever of the two is true.
3. Grid fit: for each period near the estimate (a coarse then a fine search), the envelope is folded
   modulo the period into a phase histogram; the period and phase with the sharpest peak maximise
   the onset strength aligned on the grid over the whole section, which fixes BPM to ~0.01% on a
   long section and the phase to a fraction of a frame. A constant ONSET_LAG_MS is then added:
   the flux peaks ~4.5 ms before a sample-exact synthetic note (the 21 ms window sees it coming).
   The grid moves half a beat where that puts more of the onsets below ~2 kHz (kick, snare
   body, bass, chords) plus spectral change on its beats: off-beat hi-hats can outweigh the
   beats in the full-band flux (welcome's do), and a third of a beat where it sits on a swing's
   off-beat (onsets a third after its beats, none two thirds after). This, the downbeat and the
   meter (5.) are in
   core/downbeat.py; steps 1-3 are in core/tempo_grid.py, step 4 in core/tempo_changes.py.
4. Tempo changes: the tempo is estimated in 5 s windows every 0.5 s (within x/÷1.55 of the global
   one); runs of windows that agree (within 2.5%, octave flips counting as agreement) form
   sections, runs shorter than 3 s are dropped. A section is kept as a change only if its own grid
   beats the previous tempo's grid there by CHANGE_GAIN (weighed as in the octave rule), and a
   section under 10 s between two of the same tempo is a rhythmic figure (triangles has a 4.5 s
   triplet-feel bar), not a change; one at an octave relative of the tempo before must win by
   RELATED_GAIN, else the octave rule picks one tempo for both. The test runs both ways: the
   tempo before must also fit its own section better than the new tempo would there (War of
   freedom, a real song at 140 BPM, had its 12 s intro timed at 210, which beat 140 there by
   less than 1%), and a section whose beats carry under WEAK of the song's typical strength (a
   fade-out) is no evidence of a tempo. A merged stretch keeps the tempo with more onset
   strength on its beats. Each change is placed on the beat of the new grid that best splits
   onset strength between the two grids, and a first tempo that lasts under MIN_SECTION_S into
   the music is dropped. Before that, a section whose tempo is no octave relative of the song's (the
   whole envelope's estimate) takes the song's where that fits it better (`keep_song_tempo`):
   merging pair by pair keeps the stronger tempo of each pair, and a mastered metal song
   (benchmarks/timing_accuracy --master) carried its intro's 209 BPM over all of its 170.
   3 real + 60 synthetic songs: 59/79 -> 62/79 -> 63/79 sections right
   (the last with the two-way test; 8 real Frets on Fire songs 6/8 -> 7/8); 226 songs: the
   right count of red lines 199 -> 216 -> 220.
5. Offset: the first DOWNBEAT at or after the first strong onset (strength > 0.3 of its 99.5th
   percentile, with a quarter beat of slack), or the one a bar before it where the music starts
   with pickup notes (as mappers do: no note before the first red line, and generation places
   none there); the downbeat is the beat class (mod meter, read over a pair of bars) where the
   spectrum below ~2 kHz changes most from the beats before to the beats after (chords and bass
   change on the bar line and hold through it; a snare on 2 and 4 often carries more onset
   strength than the kick on 1), the kick's onsets breaking ties: of 78 songs in 4/4 with MIDI
   truth as kiai times them, 40 of 50 at their tempo and 20 of 28 at double get it (the change
   over one beat either side: 33 and 14; core.downbeat.CHANGE_BEATS).
   Meter 4 by default, 3 when its accent contrast is 1.5x that of 4 (6/8 songs come out as 3).
6. Drift: where a section's beats follow a tempo ramp (a live band's accelerando) clearly better
   than its constant grid, it becomes a red line every few bars along the ramp
   (core/tempo_drift.py); a steady section keeps its one.

A tempo the caller gives (`bpm`: the mapper knows it, and the octave rule is a factor 2 off on
about one song in five) replaces steps 2 and 4: one section at exactly that tempo. A tempo the
audio file's tags name (`hint`: ID3 TBPM, a Vorbis BPM comment; core.audio_tags) is weaker:
after step 4, where it is x2, x1/2, x3/2 or x2/3 of a section's tempo and its grid keeps
HINT_KEEP of that section's weighted strength, every section moves to its octave
(`follow_hint`); a tag the estimate agrees with, one that is no such multiple (6% off), or one
the beats refuse changes nothing. Told each song's true tempo, the 93 real songs' sections are
right 89 of 97 times (58 without; synthetic 60 -> 73 of 76), and a tag 6% off changes none; a
tag an octave off is followed too (halved or doubled, none of the 97 right;
benchmarks/timing_accuracy --tag): the tag is the producer's or the store's word, and the
mapper is told where the tempo came from and the other reading.

Output times are whole ms of beatmap time (objects go on whole ms, floor(tick), and a red line
at 316.634 had the first one 0.63 ms before it), LATENCY_MS before the audio's onsets
(core.audio: osu! maps are timed so, and lazer's editor draws its waveform so); beat_length ms
per beat. A steady
section's BPM is the nearest whole number where that grid keeps WHOLE_KEEP of the fitted one's
onset strength (`whole_bpm`: music made to a click is at a whole BPM, and a mapper expects 180,
not 180.11, whose grid is 36 ms adrift after a minute), else rounded to 0.01 where that moves the
grid by less than 2 ms over the section, else as fitted. 93 real and 80 synthetic songs: 186
of 197 sections whole (87 before); the songs at 128.985, 140.06, 192.25 and 119.05 BPM kept them
(their first minute alone made 128.985 a 129, 7 ms adrift at its end); first minutes fitted
0.02-0.11 BPM off became right (General MIDI songs with 90% of their beats within 10 ms of the
grid 54 -> 57 of 63); General MIDI maps with 85% of objects on a true 1/4 tick 58 -> 60 of 72.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from core.audio import FRAME_MS, LATENCY_MS, SAMPLE_RATE, band_hz, load_audio, log_mel
from core.backbeat import KICK_HZ
from core.beatmap.model import TimingPoint
from core.downbeat import (
    accent_curve,
    bar_change,
    downbeat,
    meter_of,
    on_the_beat,
    on_the_swing,
    spectral_novelty,
)
from core.tempo_changes import (
    MIN_SECTION_S,
    change_at,
    confirm_changes,
    keep_song_tempo,
    near_ratio,
)
from core.tempo_changes import sections as find_sections
from core.tempo_drift import drift_lines
from core.tempo_grid import (
    FPS,
    RELATIVES,
    Grid,
    fit_grid,
    fold,
    octave_ranking,
    onset_envelope,
    period_of,
    weighted,
)

LOW_MID_BANDS = 40  # log-mel bands below ~2 kHz: kick, snare body, bass, chords; no hi-hats
MIN_GIVEN_BPM, MAX_GIVEN_BPM = 20.0, 1000.0  # a tempo the caller gives (osu! maps: ~30-400)
ONSET_LAG_MS = 4.5  # added to fitted phases (calibrated on synthetic songs, see the benchmark)
MIN_SECONDS = 4.0  # shorter audio has too few beats for a tempo
WHOLE_KEEP = 0.8  # a whole-number BPM's grid keeps this share of the fitted grid's strength
HINT_KEEP = 0.5  # a tagged tempo's grid must keep this share of the estimate's weighted strength


class TimingError(Exception):
    """Audio whose timing cannot be estimated (too short, silent, no beat): `file` names it."""

    def __init__(self, file: str | os.PathLike, reason: str):
        self.file = str(file)
        self.reason = reason
        super().__init__(f"{self.file}: {reason}")


def estimate_timing(audio: np.ndarray | str | os.PathLike, *, name: str | None = None,
                    meter: int | None = None, bpm: float | None = None,
                    hint: float | None = None) -> list[TimingPoint]:
    """Uninherited timing points for mono audio at SAMPLE_RATE (an array) or an audio file.

    The first point is on the first downbeat at or after the music's first strong onset, or a
    bar before it when the music starts with pickup notes (see the module docstring); later
    points mark tempo changes. `meter` forces the meter (else 4, or 3 when the accents say so).
    `bpm` gives the tempo (the mapper knows it; the octave rule can be a factor 2 off): one
    section at exactly that tempo, whose offset is found from the audio. `hint`, a tempo the
    file's tags name (core.audio_tags), only settles the octave where the beats allow it
    (follow_hint); tempo changes and drift are still found.
    Raises TimingError (or AudioError for an unreadable file).
    """
    if isinstance(audio, (str, os.PathLike)):
        name = name or str(audio)
        audio = load_audio(Path(audio))
    name = name or "<audio>"
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or len(audio) < MIN_SECONDS * SAMPLE_RATE:
        raise TimingError(name, f"too short: {len(audio) / SAMPLE_RATE:.1f} s of audio, "
                                f"at least {MIN_SECONDS:g} s are needed for a tempo")
    if not np.any(audio) or float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < 1e-4:
        raise TimingError(name, "silent: no beat to time")
    return timing_from_mel(log_mel(audio), name=name, meter=meter, bpm=bpm, hint=hint)


def timing_from_mel(mel: np.ndarray | torch.Tensor, *, name: str = "<audio>",
                    meter: int | None = None, bpm: float | None = None,
                    hint: float | None = None) -> list[TimingPoint]:
    """estimate_timing for a song whose features (core.audio.log_mel, FRAME_MS apart) are
    already computed, as the generator's are: the audio is not decoded twice."""
    mel = _as_array(mel)
    if mel.ndim != 2 or mel.shape[1] < MIN_SECONDS * FPS:
        raise TimingError(name, f"too short: {mel.shape[-1] / FPS:.1f} s of audio, "
                                f"at least {MIN_SECONDS:g} s are needed for a tempo")
    env = onset_envelope(mel)
    if env.max() <= 0 or np.count_nonzero(env > 0.1 * env.max()) < 4:
        raise TimingError(name, "no onsets: nothing to time")
    if bpm is not None:
        if not MIN_GIVEN_BPM <= bpm <= MAX_GIVEN_BPM:
            raise TimingError(name, f"{bpm:g} BPM: expected {MIN_GIVEN_BPM:g} to "
                                    f"{MAX_GIVEN_BPM:g}")
        period = 60_000 / bpm / FRAME_MS
        strength, phase, _ = fold(env, 0, period)
        sections, grids = [(0, len(env), period)], [(period, phase, strength)]
    else:
        song = period_of(env)
        sections = find_sections(env, song)
        grids = [fit_grid(env, a, b, p) for a, b, p in sections]
    confirm_changes(env, sections, grids)
    if bpm is None:
        keep_song_tempo(env, sections, grids, song)
    if bpm is None and hint is not None and MIN_GIVEN_BPM <= hint <= MAX_GIVEN_BPM:
        follow_hint(env, sections, grids, 60_000 / hint / FRAME_MS)
    starts = [0.0]
    for i in range(1, len(grids)):
        starts.append(change_at(env, grids[i - 1], grids[i], sections[i][0]))
    first = _first_onset(env)
    # a first tempo that changes within MIN_SECTION_S of the music's start (its first onset,
    # soft ones too) is a stray fit before the first beat, not a section: the next starts the song
    while len(grids) > 1 and starts[1] - _first_onset(env, 0.1) < MIN_SECTION_S * FPS:
        del grids[0], starts[1]
    novelty = spectral_novelty(mel)
    below = onset_envelope(mel[:LOW_MID_BANDS])
    accent = accent_curve(below, novelty)  # which half of the beat is the beat
    points: list[TimingPoint] = []
    for i, (period, phase, _) in enumerate(grids):
        end = starts[i + 1] if i + 1 < len(grids) else len(env)
        phase = on_the_swing(env, period, on_the_beat(accent, period, phase, starts[i], end),
                             starts[i], end)
        if i == 0:
            m = meter or meter_of(env, novelty, period, phase, end)
            beat = downbeat(bar_change(mel[:LOW_MID_BANDS], period),
                            onset_envelope(mel[band_hz() < KICK_HZ]), period, phase, m,
                            max(first - period / 4, 0), end)
            if beat - first > period / 4:  # pickup notes: the red line goes a bar earlier
                beat -= m * period
        else:  # on the change, or the half or third of a beat after it where on_the_beat or
            # on_the_swing moved the grid
            m = meter or points[-1].meter
            beat = starts[i] + (phase - starts[i] + 1.0) % period - 1.0
        lines = [(beat, period)] if bpm is not None else drift_lines(env, period, beat, m, end,
                                                                     accent)
        if len(lines) == 1:  # a steady section: the BPM given, else a whole one if it fits
            if bpm is not None:
                lines = [(beat, 60_000 / bpm)]
            else:
                lines = [whole_bpm(env, period, beat, end)
                         or (beat, _round_bpm(period * FRAME_MS, (end - beat) / period))]
        else:
            lines = [(at, line_period * FRAME_MS) for at, line_period in lines]
        for at, beat_ms in lines:
            points.append(TimingPoint(time=float(round(beatmap_ms(at))),
                                      beat_length=float(beat_ms), meter=int(m)))
    return points


def follow_hint(env: np.ndarray, sections: list[tuple[int, int, float]], grids: list[Grid],
                hint: float) -> None:
    """Refit, in place, every section at the octave the period `hint` (frames) names, which a
    file's BPM tag gives, where the tag is an octave relative (x2, x1/2, x3/2, x2/3: the octave
    rule's own doubt) of a section's tempo, the longest such, and its grid there keeps
    HINT_KEEP of that section's weighted strength (without the penalty on fast tempos: a 260
    BPM tag is no rarer for being fast). Every section moves by the same factor, so tempo
    changes keep their ratios. A section already at the tag's tempo means the estimate agrees:
    the others are changes. The tag is trusted: its word settles what the beats cannot (a
    grid at half the tempo keeps 0.62 of the weighted strength, so a halved tag passes too)."""
    if any(abs(g[0] / hint - 1) < 0.01 for g in grids):
        return
    related = [i for i, g in enumerate(grids) if near_ratio(g[0] / hint, RELATIVES[1:])]
    if not related:
        return
    main = max(related, key=lambda i: sections[i][1] - sections[i][0])
    base = grids[main][0]
    a, b, _ = sections[main]
    tagged = fit_grid(env, a, b, hint, coarse=0.005)
    if weighted(tagged, rare=False) < HINT_KEEP * weighted(grids[main], rare=False):
        return
    factor = tagged[0] / base
    for i, (start, end, _) in enumerate(sections):
        grids[i] = tagged if i == main else fit_grid(env, start, end, grids[i][0] * factor,
                                                     fine=True)


def tempo_alternative(mel: np.ndarray | torch.Tensor,
                      points: list[TimingPoint]) -> float | None:
    """The BPM the octave rule ranks next to estimated timing's one tempo (x2, x1/2, x3/2 or
    x2/3 of it), to offer the mapper as the tempo to give: where the estimate is a multiple
    off, this is the song's tempo (51 of 54 such songs among 11 real and 226 synthetic ones).
    It is that exact multiple of the estimate's BPM (a 180 estimate offers 90, not the 89.99 a
    refit might give), to 0.01. None for timing with tempo changes (one given tempo would undo
    them) or no runner-up."""
    red = [p for p in points if p.uninherited]
    if len(red) != 1:
        return None
    env = onset_envelope(_as_array(mel))
    period = red[0].beat_length / FRAME_MS
    others = [p for _, p in octave_ranking(env, 0, len(env), period)
              if abs(p / period - 1) > 0.02]
    if not others:
        return None
    ratio = min(RELATIVES, key=lambda r: abs(others[0] / period / r - 1))
    return round(red[0].bpm / ratio, 2)


def beatmap_ms(frame: float) -> float:
    """Beatmap time (ms) of an onset the envelope shows at `frame`: ONSET_LAG_MS after it (the
    flux peaks before the note), LATENCY_MS before the audio (core.audio)."""
    return frame * FRAME_MS + ONSET_LAG_MS - LATENCY_MS


def onset_frame(ms: float | np.ndarray) -> float | np.ndarray:
    """The envelope frame (fractional) of beatmap time `ms`: beatmap_ms's inverse."""
    return (ms + LATENCY_MS - ONSET_LAG_MS) / FRAME_MS


def _as_array(mel: np.ndarray | torch.Tensor) -> np.ndarray:
    return mel.float().numpy() if isinstance(mel, torch.Tensor) else np.asarray(mel, np.float32)


def _first_onset(env: np.ndarray, above: float = 0.3) -> float:
    strong = np.flatnonzero(env > above)
    return float(strong[0]) if len(strong) else 0.0


def whole_bpm(env: np.ndarray, period: float, beat: float,
              end: float) -> tuple[float, float] | None:
    """(first beat in frames, beat ms) of the whole-number BPM nearest a steady section's fitted
    one, where that grid keeps WHOLE_KEEP of the fitted grid's onset strength on [beat, end);
    else None. Music made to a click is at a whole BPM (91% of the corpus's maps' first red
    lines), and a fit over a short or sparse section can miss it by a few hundredths: 180.11 on
    a minute of a 180 BPM song is 36 ms adrift at its end. The new grid keeps the old one's beat
    nearest the section's onset-weighted centre (searched within an eighth of a beat, never the
    off-beat), so it moves least where the onsets are."""
    beats_a_minute = round(60 * FPS / period)
    whole = 60 * FPS / beats_a_minute
    start = int(max(beat, 0))
    seg = env[start:int(end)]
    if abs(whole - period) < 1e-9 or seg.sum() <= 0:
        return None
    centre = start + float(np.average(np.arange(len(seg)), weights=seg))
    pivot = beat + round((centre - beat) / period) * period
    fitted, _, _ = fold(seg, start, period, beat % period, 0.0, between=False)
    shifted, phase, _ = fold(seg, start, whole, pivot % whole, 1 / 8)
    if fitted <= 0 or shifted < WHOLE_KEEP * fitted:
        return None
    first = beat + (phase - beat + whole / 2) % whole - whole / 2  # its beat nearest `beat`
    return first, 60_000 / beats_a_minute  # exactly: whole * FRAME_MS is 333.33333333333337


def _round_bpm(beat_ms: float, beats: float) -> float:
    """beat_ms at 0.01 BPM when that drifts < 2 ms over `beats`, else as fitted."""
    rounded = 60_000 / round(60_000 / beat_ms, 2)
    return rounded if abs(rounded - beat_ms) * beats < 2.0 else beat_ms
