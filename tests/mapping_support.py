"""Shared by the companion.mapping tests: the starter generator, a timed synthetic song, and
what the tests read off a generated map."""

from __future__ import annotations

from companion.mapping import load_generator
from core.beatmap.parser import parse_file
from core.beatmap.ticks import TickGrid
from core.synth.config import SynthConfig
from core.synth.songs import write_song


def starter_generator():
    return load_generator(None)


def timed_song(tmp_path_factory):
    """A 30 s synthetic song folder (maps + audio) and its true uninherited timing."""
    folder = write_song(SynthConfig(out=tmp_path_factory.mktemp("songs"), seed=3,
                                    duration_s=30.0), 0)
    truth = [p for p in parse_file(next(folder.glob("*.osu"))).beatmap.timing_points
             if p.uninherited]
    return folder, truth


def red(beatmap):
    return [p for p in beatmap.timing_points if p.uninherited]


def on_ticks(beatmap, divisors) -> float:
    """The share of the map's objects within 1 ms of one of its own ticks at `divisors`."""
    ticks = TickGrid(beatmap.timing_points, divisors)
    return sum(ticks.snap(o.time, 1.0) is not None for o in beatmap.hit_objects) / max(
        len(beatmap.hit_objects), 1)
