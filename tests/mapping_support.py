"""What the companion.mapping tests read off a generated map (their fixtures are in conftest)."""

from __future__ import annotations

from core.beatmap.ticks import TickGrid


def red(beatmap):
    return [p for p in beatmap.timing_points if p.uninherited]


def on_ticks(beatmap, divisors) -> float:
    """The share of the map's objects within 1 ms of one of its own ticks at `divisors`."""
    ticks = TickGrid(beatmap.timing_points, divisors)
    return sum(ticks.snap(o.time, 1.0) is not None for o in beatmap.hit_objects) / max(
        len(beatmap.hit_objects), 1)
