"""What `kiai synth` makes: one frozen config, checked in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.synth.encode import FORMATS

DIFFICULTIES = ("Easy", "Normal", "Hard", "Insane", "Expert")
SAMPLE_RATES = (44_100, 22_050)
MIN_DURATION_S, MAX_DURATION_S = 20.0, 600.0
MAX_COUNT = 10_000  # song ids are seed * MAX_COUNT + index, unique per (seed, index)


class SynthError(Exception):
    """A synthetic song cannot be written (bad settings, or its folder already exists)."""


@dataclass(frozen=True)
class SynthConfig:
    """Songs to synthesize. The same config gives byte-identical files."""

    # Where and how many.
    out: Path
    count: int = 1
    seed: int = 0
    # Each song.
    duration_s: float = 90.0  # the music; the song ends with a held chord inside it
    difficulties: tuple[str, ...] = DIFFICULTIES
    # Audio file. OGG is what osu! songs ship; WAV is exact but ~10x larger.
    sample_rate: int = 44_100
    audio_format: str = "ogg"

    def __post_init__(self) -> None:
        self._verify()

    def _verify(self) -> None:
        if not 1 <= self.count <= MAX_COUNT:
            raise SynthError(f"count must be 1..{MAX_COUNT}, got {self.count}")
        if self.seed < 0:
            raise SynthError(f"seed must be non-negative, got {self.seed}")
        # Below ~20 s a slow song has no room for a chorus, and difficulties tie on density.
        if not MIN_DURATION_S <= self.duration_s <= MAX_DURATION_S:
            raise SynthError(f"duration must be {MIN_DURATION_S:g}..{MAX_DURATION_S:g} s, "
                             f"got {self.duration_s:g}")
        if not self.difficulties:
            raise SynthError("at least one difficulty is needed")
        unknown = [d for d in self.difficulties if d not in DIFFICULTIES]
        if unknown:
            raise SynthError(f"unknown difficulties {unknown}; choose from {list(DIFFICULTIES)}")
        if len(set(self.difficulties)) != len(self.difficulties):
            raise SynthError(f"difficulties repeated: {list(self.difficulties)}")
        if self.sample_rate not in SAMPLE_RATES:
            raise SynthError(f"sample rate must be one of {SAMPLE_RATES}, got {self.sample_rate}")
        if self.audio_format not in FORMATS:
            raise SynthError(f"audio format must be one of {FORMATS}, got {self.audio_format!r}")
