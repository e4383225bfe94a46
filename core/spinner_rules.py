"""Where a spinner may start: where the music holds, not in full music.

The starter model learnt spinners from synthetic songs whose only spinner is the outro, and in
real songs it spins in full music (QA, session 27: 17 spinners in busy_schedule's 128 s, at
16-27 MIDI notes a second, four in kiai time; harp_harmony's three in its busiest part).
Mappers spin over held notes, build-ups and the outro, where few notes start. So a spinner may
start only where the LOOK_MS after it holds at most CALM x the song's median count of onsets
over as long (counted where the music is loud, within BREAK_DB of its level): the synthetic
sets' own spinners have 0-0.25 of it, the starter's in real songs 0.5-1.3. Past the audio's
end nothing is heard: calm. It ends by where the music stops holding, and starts ENTRY_MS or
more after the last object ends (it had come 112-188 ms after one).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from core.audio import FRAME_MS, LATENCY_FRAMES
from core.music_presence import BREAK_DB, onset_peaks, song_levels
from core.tempo_grid import onset_envelope

CALM = 0.4
LOOK_MS = 1500.0
ENTRY_MS = 300.0


def calm_frames(mel: Tensor, envelope: np.ndarray | None = None) -> Tensor:
    """(F,) bool per feature frame: whether the LOOK_MS of audio from it holds at most CALM x
    the song's median count of onsets (music_presence.onset_peaks) over as long (`envelope`:
    its onset_envelope, where already computed)."""
    onsets = onset_peaks(onset_envelope(mel.numpy()) if envelope is None else envelope)
    look = max(1, round(LOOK_MS / FRAME_MS))
    ahead = np.convolve(onsets, np.ones(look))[look - 1:]  # onsets in the look from each frame
    levels, typical = song_levels(mel)
    music = (levels >= typical - 2.0 * BREAK_DB / 80.0).numpy()
    median = float(np.median(ahead[music])) if music.any() else 0.0
    return torch.from_numpy(ahead <= CALM * median)


def spinner_reach(calm: Tensor, origin: float) -> Callable[[float], float]:
    """SequenceState.spinner_until for the window at beatmap time `origin`: the latest window
    time a spinner starting at a window time may end, where the music stops holding: the
    first frame after it that is not calm looks ahead LOOK_MS, of which the last CALM share
    holds the music that made it busy. A spinner that started calm had run on into the
    song's busiest part (QA)."""
    frames = calm.numpy()
    busy = np.flatnonzero(~frames)

    def until(t: float) -> float:
        frame = int((origin + t) // FRAME_MS) + LATENCY_FRAMES
        after = busy[np.searchsorted(busy, frame):]
        if not len(after):
            return float("inf")
        return (int(after[0]) - LATENCY_FRAMES) * FRAME_MS - origin + (1 - CALM) * LOOK_MS

    return until


def spinner_test(calm: Tensor, origin: float) -> Callable[[float], bool]:
    """SequenceState.spinner_ok for the window at beatmap time `origin`: whether a spinner may
    start at a window time (the audio there is LATENCY_MS later)."""
    def calm_at(t: float) -> bool:
        frame = int((origin + t) // FRAME_MS) + LATENCY_FRAMES
        return not 0 <= frame < calm.shape[0] or bool(calm[frame])

    return calm_at
