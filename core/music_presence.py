"""Where a song's music is: silence no object may start in, and loud or busy stretches a map
should not leave unmapped (the levels and onsets core.generate's window rules read; 80 dB over
log_mel's -1..1)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.signal import find_peaks
from torch import Tensor

from core.audio import FRAME_MS, LATENCY_FRAMES
from core.tempo_grid import onset_envelope

# No object starts where the audio is silent: every mel band SILENCE_DB under the song's peak
# (log_mel's -1..1 spans 80 dB), or QUIET_DB under the median over the song of each frame's
# loudest band, from its time to SILENCE_REACH_MS after. Sound before it does not count: an
# object marks a sound that starts or goes on where it is, not one that has stopped. A quiet
# passage sits 20-30 dB under that median; the peak rule alone let objects start in fade-outs,
# a last hit's tail and a backing stem's near-silent intro, 37-55 dB under it (QA, session 25:
# 96 objects in 15 of 20 maps).
SILENCE_DB = 60.0
QUIET_DB = 35.0
# The median is taken over the frames whose loudest band is within REFERENCE_DB of the song's
# loud frames (its 99th percentile): 120 s of -50 dB tape hiss before a 111 s song had made the
# hiss the median frame, and 459 of a map's 854 objects went into it (QA, session 32).
REFERENCE_DB = 40.0
SILENCE_REACH_MS = 50.0
# ... or where one band rings on alone: the loudest band RING_DB under its median and the mean
# band HUSH_DB under the song's typical level (a full stop's decaying hum: 29-33 dB and 46 dB
# under, where a bare song's map had put three objects; QA, session 26). A quiet passage is
# quieter in every band, not one band left: its mean sits as far under as its loudest.
RING_DB = 25.0
HUSH_DB = 40.0
# The music goes on where the audio sits within BREAK_DB of the song's typical level (the mean
# log-mel band's median); a break sits 15-20 dB under it. core.generate takes back a spinner the
# model ended a window on where the music goes on after it (the tenth starter's spinners in loud
# real music, 1-3 a map, were each followed by 2-6 s of nothing), and fills such music: a
# break after a spinner, which maps do have, keeps its spinner and its rest.
BREAK_DB = 10.0
# ... or where it is busy: BUSY_RATE onsets a second or more (END_ONSET of the song's strongest,
# ONSET_SPACING_MS apart) over the BUSY_WINDOW_MS around it, audible. Of 87 songs with MIDI
# truth, 963 s sat BREAK_DB or more under their song's level, and notes went on in most of it
# (a soft verse, a breakdown): where kiai counts 1.5 onsets a second or more, 95-98% of the
# time has a MIDI note a second or more; under 1 a second, 85-93% has none. By level alone
# those were breaks, left unfilled: Blupi's music003 had 19 holes of 2-5 s at 4 stars, in
# passages 14-21 dB under with 7-10 MIDI notes a second (QA, session 28).
BUSY_RATE = 1.5
BUSY_WINDOW_MS = 2000.0
ONSET_SPACING_MS = 50.0  # onsets closer than this are one
# Where it returns after a break or a silence, the next object comes within RETURN_MS of it
RETURN_MS = 500.0
RETURN_STEP_MS = 100.0
RETURN_HORIZON_MS = 60_000.0
# The music ends at its last frame within BREAK_DB of the song's typical level or with an
# audible onset of END_ONSET of the song's strongest (core.tempo_grid's envelope; log-mel flux
# is gain-free, so a soft coda's notes count as loud ones do): no object starts after it. A
# last chord's reverb tail, 30-57 dB under, held 2-13 objects in 7 of 9 new maps (QA,
# session 27), all passing the silence rule.
END_ONSET = 0.2
# ... and a loud last chord rings on at most RING_MS past the song's last onset: held 4.7 s,
# it had carried 10 objects with no note under them (QA round 5)
RING_MS = 500.0
# ... and an onset ends the music only where the level rises END_RISE_DB into it (its max over
# RISE_AFTER_MS against its mean over RISE_BEFORE_MS before): a distorted guitar's fading last
# chord kept crossing END_ONSET for 6.5 s, 20 objects (QA round 6; its last notes rose 5-11 dB,
# the chord's flux under 1.3). Of 69 General MIDI songs, the music's end came over 1.5 s after
# the last note in 8 -> 3, over 0.5 s before it in 6 -> 6
END_RISE_DB = 2.0
RISE_BEFORE_MS, RISE_AFTER_MS = 70.0, 50.0
# A soft passage (an intro, a breakdown) sits SOFT_DB or more under the song's typical level
# over the SOFT_WINDOW_MS around it, still audible: 0-24% of a song (median 7%, 87 songs with
# MIDI truth). Mappers map it calmer: kiai's maps had put full density and their longest jumps
# there (QA, session 28: Chaos God's intro, 11.5 dB under, at the map's 3.9 objects a second
# with 100-150 px half-beat jumps; 300 px jumps in a breakdown 25 dB under).
SOFT_DB = 8.0
SOFT_WINDOW_MS = 2000.0


def audible_frames(mel: Tensor) -> Tensor:
    """(F,) bool per feature frame (audio time): whether any sound above SILENCE_DB under the
    song's peak and QUIET_DB under the median of each frame's loudest band, and not one band
    ringing on alone (RING_DB, HUSH_DB), is in it or the SILENCE_REACH_MS after it
    (core.audio.log_mel's scale: 80 dB over -1..1)."""
    loudest, mean = mel.amax(dim=0), mel.mean(dim=0)
    # the song's typical frame, among those within REFERENCE_DB of its loud ones: where tape
    # hiss or a near-silent intro fills most of the file, the median frame is the hiss
    loud_level = float(loudest.float().sort().values[int(0.99 * (loudest.numel() - 1))])
    sounding = loudest >= loud_level - 2.0 * REFERENCE_DB / 80.0  # (torch.quantile: 16M at most)
    typical_loudest = float(loudest[sounding].median())
    level = max(-1.0 + 2.0 * (80.0 - SILENCE_DB) / 80.0,
                typical_loudest - 2.0 * QUIET_DB / 80.0)
    ringing = (loudest < typical_loudest - 2.0 * RING_DB / 80.0) \
        & (mean < float(mean[sounding].median()) - 2.0 * HUSH_DB / 80.0)
    loud = ((loudest > level) & ~ringing).float()[None, None]  # (1, 1, F)
    reach = int(SILENCE_REACH_MS // FRAME_MS)
    ahead = torch.nn.functional.pad(loud, (0, reach))  # frame f sees frames f .. f + reach
    return torch.nn.functional.max_pool1d(ahead, reach + 1, stride=1)[0, 0] > 0


def music_end_ms(mel: Tensor, envelope: np.ndarray | None = None) -> float:
    """Beatmap time of the song's last audible music (END_ONSET), or -inf where it has
    none (`envelope`: its onset_envelope, where already computed)."""
    levels, typical = song_levels(mel)
    if envelope is None:
        envelope = onset_envelope(mel.numpy())
    heard = audible_frames(mel)
    onsets = torch.nonzero((torch.from_numpy(envelope) >= END_ONSET) & heard
                           & rising(levels)).flatten()
    loud = torch.nonzero((levels >= typical - 2.0 * BREAK_DB / 80.0) & heard).flatten()
    if not onsets.numel() and not loud.numel():
        return -math.inf
    last = int(onsets[-1]) if onsets.numel() else int(loud[-1])
    if loud.numel() and onsets.numel():  # a loud ring goes on RING_MS past its last onset
        last = max(last, min(int(loud[-1]), last + round(RING_MS / FRAME_MS)))
    return float(last - LATENCY_FRAMES) * FRAME_MS


def rising(levels: Tensor) -> Tensor:
    """(F,) bool per frame: whether the level (song_levels) rises END_RISE_DB into it, its max
    over RISE_AFTER_MS from it against its mean over RISE_BEFORE_MS ending a frame before it."""
    if not levels.numel():
        return torch.zeros(0, dtype=torch.bool)
    before, after = round(RISE_BEFORE_MS / FRAME_MS), round(RISE_AFTER_MS / FRAME_MS)
    padded = torch.nn.functional.pad(levels[None, None], (before + 1, after), mode="replicate")
    mean_before = torch.nn.functional.avg_pool1d(padded, before, stride=1)[0, 0]
    max_after = torch.nn.functional.max_pool1d(padded, after, stride=1)[0, 0]
    n = levels.numel()
    return max_after[before + 1: before + 1 + n] - mean_before[:n] >= END_RISE_DB / 40.0


def soft_passages(levels: Tensor, typical: float, audible: Tensor | None) -> Tensor:
    """(F,) bool per feature frame (audio time): whether the SOFT_WINDOW_MS around it sits
    SOFT_DB or more under the song's `typical` level (song_levels), and it is `audible`
    (audible_frames; None: all of it)."""
    window = max(1, round(SOFT_WINDOW_MS / FRAME_MS))
    around = torch.nn.functional.avg_pool1d(levels[None, None], window, stride=1,
                                            padding=window // 2, count_include_pad=False)
    around = around[0, 0, : levels.numel()]
    soft = around <= typical - 2.0 * SOFT_DB / 80.0
    return soft if audible is None else soft & audible


def soft_test(soft: Tensor, origin: float) -> Callable[[float], bool]:
    """SequenceState.soft for the window at beatmap time `origin`."""
    def at(t: float) -> bool:
        frame = int((origin + t) // FRAME_MS) + LATENCY_FRAMES
        return 0 <= frame < soft.numel() and bool(soft[frame])
    return at


def song_levels(mel: Tensor) -> tuple[Tensor, float]:
    """(F,) each feature frame's mean log-mel band, and its median over the song."""
    levels = mel.mean(dim=0)
    return levels, float(levels.median())


def onset_peaks(envelope: np.ndarray) -> np.ndarray:
    """(F,) 1.0 at each onset of an onset_envelope (a peak of END_ONSET or more, the strongest
    of those within ONSET_SPACING_MS), 0.0 elsewhere."""
    peaks, _ = find_peaks(envelope, height=END_ONSET,
                          distance=max(1, round(ONSET_SPACING_MS / FRAME_MS)))
    onsets = np.zeros(len(envelope))
    onsets[peaks] = 1.0
    return onsets


def music_frames(levels: Tensor, typical: float, envelope: np.ndarray,
                 audible: Tensor | None) -> Tensor:
    """(F,) bool per feature frame (audio time): whether the music goes on there, loud (within
    BREAK_DB of the song's `typical` level) or busy (BUSY_RATE onsets a second around it, of
    its onset `envelope`) and `audible` (audible_frames; None: all of it)."""
    window = max(1, round(BUSY_WINDOW_MS / FRAME_MS))
    counts = np.convolve(onset_peaks(envelope), np.ones(window), "same")
    busy = torch.from_numpy(counts >= BUSY_RATE * BUSY_WINDOW_MS / 1000.0)[: levels.numel()]
    if audible is not None:
        busy = busy & audible[: busy.numel()]
    loud = levels >= typical - 2.0 * BREAK_DB / 80.0
    loud[: busy.numel()] |= busy
    return loud


def song_music(mel: Tensor) -> Tensor:
    """music_frames of a song's log-mel `mel`, from scratch (to measure a map by;
    core.generate has the parts already)."""
    levels, typical = song_levels(mel)
    return music_frames(levels, typical, onset_envelope(mel.numpy()), audible_frames(mel))


def music_goes_on(music: Tensor, start_ms: float, end_ms: float) -> bool:
    """Whether the music goes on (`music`: music_frames) over most of beatmap time `start_ms`
    to `end_ms`."""
    first = int(start_ms // FRAME_MS) + LATENCY_FRAMES
    piece = music[max(first, 0): int(end_ms // FRAME_MS) + LATENCY_FRAMES]
    return piece.numel() > 0 and 2 * int(piece.sum()) >= piece.numel()


def fill_test(music: Tensor, origin: float,
              fill_ms: Callable[[float], float]) -> Callable[[float], float]:
    """SequenceState.fill for the window at `origin`: after a window time, the next object
    starts within `fill_ms(beatmap time)` where the music goes on for that long
    (music_goes_on); where it does not (a break, a silence), within RETURN_MS of where it
    returns (the first RETURN_STEP_MS from which it goes on that long again, within
    RETURN_HORIZON_MS), anywhere if it does not. A model trained on synthetic songs had left
    2-3 s holes in loud real music mid-window, where asking a window again (hole_ms) does not
    reach, and let the music come back after a full stop unmapped (its crash 0.4 s before the
    next object; QA, session 26)."""
    loud = torch.cat([torch.zeros(1), torch.cumsum(music.float(), 0)])

    def goes_on(start_ms: float, end_ms: float) -> bool:  # music_goes_on, by counting
        first = max(int(start_ms // FRAME_MS) + LATENCY_FRAMES, 0)
        last = min(int(end_ms // FRAME_MS) + LATENCY_FRAMES, music.numel())
        return last > first and float(loud[last] - loud[first]) * 2 >= last - first

    @functools.lru_cache(maxsize=256)
    def latest(end: float) -> float:
        start = origin + end
        span = fill_ms(start)
        if goes_on(start, start + span):
            return end + span
        at = start + RETURN_STEP_MS
        while at < start + RETURN_HORIZON_MS and at < music.numel() * FRAME_MS:
            if goes_on(at, at + RETURN_STEP_MS) and goes_on(at, at + span):  # back from here
                return at - origin + RETURN_MS
            at += RETURN_STEP_MS
        return math.inf
    return latest
