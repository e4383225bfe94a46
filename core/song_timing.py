"""A song's timing estimated from its audio, with what a mapper needs to judge it.

The estimate alone can be an octave off (core.tempo), so it travels with the tempo the octave
rule ranked next and the audio file's BPM tag (core.audio_tags), and says which of the three
settled the tempo: the tempo given, the tag, or the audio alone. `kiai timing` and the daemon's
`timing.estimate` both call `estimate_song_timing`, so the two say the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from core.audio_tags import read_tags
from core.beatmap.model import TimingPoint
from core.tempo import tempo_alternative, timing_from_mel

TempoSource = Literal["given", "tag", "audio"]


@dataclass(frozen=True)
class SongTiming:
    points: list[TimingPoint]  # uninherited, in time order
    tempo_from: TempoSource  # what settled the tempo
    alternative_bpm: float | None = None  # the runner-up tempo: the likeliest fix if it is wrong
    bpm_tag: float | None = None  # the tempo the audio file's tags name (None when given)


def tag_settled(points: list[TimingPoint], tag: float | None) -> bool:
    """Whether estimated timing is at the file's BPM tag (a section within 1% of it): the tag
    then settled the octave (core.tempo.follow_hint); else the beats did not bear it out."""
    return tag is not None and any(abs(p.bpm / tag - 1) < 0.01 for p in points)


def estimate_song_timing(audio: Path, mel: np.ndarray | torch.Tensor, *,
                         bpm: float | None = None, meter: int | None = None) -> SongTiming:
    """Red lines for the song whose audio file is `audio` and whose features are `mel`
    (core.audio.audio_features): at `bpm` where it is given, else estimated with the file's BPM
    tag as a hint. Raises core.tempo.TimingError (too short, no beat) naming the file."""
    tag = read_tags(audio).bpm if bpm is None else None
    points = timing_from_mel(mel, name=str(audio), meter=meter, bpm=bpm, hint=tag)
    if bpm is not None:
        return SongTiming(points, "given")
    return SongTiming(points, "tag" if tag_settled(points, tag) else "audio",
                      tempo_alternative(mel, points), tag)
