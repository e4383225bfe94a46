"""What the companion.mapping tests read off a generated map (their fixtures are in conftest)."""

from __future__ import annotations

from pathlib import Path

from core.beatmap.model import TimingPoint
from core.beatmap.parser import parse_file
from core.beatmap.ticks import TickGrid
from core.synth.config import SynthConfig
from core.synth.songs import write_song


def red(beatmap):
    return [p for p in beatmap.timing_points if p.uninherited]


def on_ticks(beatmap, divisors) -> float:
    """The share of the map's objects within 1 ms of one of its own ticks at `divisors`."""
    ticks = TickGrid(beatmap.timing_points, divisors)
    return sum(ticks.snap(o.time, 1.0) is not None for o in beatmap.hit_objects) / max(
        len(beatmap.hit_objects), 1)


def tagged_bare_song(folder: Path, seed: int, work: Path) -> TimingPoint:
    """Make `folder` a song folder with only the audio of synthetic song `seed` (made under
    `work`), its tempo in the file's Vorbis BPM comment; its true first red line."""
    from benchmarks.generated_maps import tagged_copy

    made = write_song(SynthConfig(out=work, seed=seed, duration_s=30.0), 0)
    truth = red(parse_file(next(made.glob("*.osu"))).beatmap)[0]
    tagged_copy(made / "audio.ogg", truth.bpm, folder)
    return truth
