"""Synthetic songs: rhythmic audio with matching rule-based beatmaps, for tests and for training
a starter model with no download (DESIGN §7). `kiai synth` writes them as osu! song folders."""

from core.synth.config import DIFFICULTIES, SynthConfig, SynthError
from core.synth.songs import planned_folders, write_song

__all__ = ["DIFFICULTIES", "SynthConfig", "SynthError", "planned_folders", "write_song"]
