"""How far a stream steps: the rule's values for a new map, and a map's own for its continuation.

A stream's step is a move from a circle to a head under core.spacing_limit.STREAM_GAP_MS after
it. In the corpus's ranked maps up to 5.5 stars the 90th percentile of those steps is 0.45-0.77
of a circle's diameter, and 0-8% of them turn back (over 90 degrees) from the step before; in
jump-stream maps of 5.5 stars and more, 1.3-2.5 diameters and up to 42%; and kiai's own maps
get much of their rating at 5 stars and more from their streams (limited, its 5-star requests
came out at 3.6-4.0, out of the retries' reach): from 5 stars the rule leaves the step free,
and from 6 lets TURN_SHARE of the steps turn back (at 5-6 stars kiai's streams had turned back
on 55% of steps, ranked maps' at 4.5-5.5 on 1%; left free from 6, on 56% at 5.5 stars and
more, ranked maps' 28%). A continuation keeps the map's own share (observed_stream_turns).
The starter model stepped 40-88 px (0.5-1.2 diameters) at 4+ stars, half of its steps turning
back (QA, session 24). A retry scales the step as far as it scales the spacing ceiling.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from core.beatmap.model import Beatmap, Circle, HitObject
from core.spacing_limit import STACK_PX, STREAM_GAP_MS

# stars -> the step's limit in circle diameters; none from FREE_STARS
_STEP = [(2.0, 0.5), (4.0, 0.6), (4.9, 0.75)]
FREE_STARS = 5.0  # from here the step is free (an infinite limit: turns still ruled) ...
TURNS_FREE_STARS = 6.0  # ... and from here TURN_SHARE of the steps may turn back
TURN_SHARE = 0.3  # (ranked maps of 5.5 stars and more: a median 28%)
MIN_STEPS = 12  # a map needs this many stream steps before its own limit is read
MAX_TURNING = 0.2  # ... and no more of them turning back, or its streams are left free


def stream_step_for_stars(stars: float, diameter: float) -> float | None:
    """The step limit (osu!pixels) for a new map of `stars` whose circles are `diameter` wide;
    infinite from FREE_STARS (a step of any length, but not turning back: core.spacing_limit),
    None (free) from TURNS_FREE_STARS."""
    if stars >= TURNS_FREE_STARS:
        return None
    if stars >= FREE_STARS:
        return math.inf
    return diameter * float(np.interp(stars, [s for s, _ in _STEP], [v for _, v in _STEP]))


def stream_turns_for_stars(stars: float) -> float:
    """DecodingOptions.stream_turns for a new map of `stars`: none below TURNS_FREE_STARS,
    TURN_SHARE from there."""
    return TURN_SHARE if stars >= TURNS_FREE_STARS else 0.0


def observed_stream_turns(beatmap: Beatmap, until_ms: float = math.inf) -> float | None:
    """The share of the map's stream steps before `until_ms` that turn back; None with fewer
    than MIN_STEPS that follow another."""
    _, turns, _ = stream_steps(beatmap, until_ms)
    return float(np.mean(turns)) if len(turns) >= MIN_STEPS else None


def stream_steps(beatmap: Beatmap, until_ms: float = math.inf
                 ) -> tuple[list[float], list[bool], list[float]]:
    """The map's stream steps before `until_ms` (px); of each that follows another, whether
    it turns back from it, and how far their lengths differ (|a - b| / the longer)."""
    return steps_of([o for o in beatmap.hit_objects if o.time < until_ms])


def steps_of(objects: Sequence[HitObject]) -> tuple[list[float], list[bool], list[float]]:
    """stream_steps of `objects` (in time order)."""
    steps, turns, changes = [], [], []
    last: tuple[float, float] | None = None  # the step before, where it was one
    for a, b in itertools.pairwise(objects):
        if not (isinstance(a, Circle) and b.time - a.time < STREAM_GAP_MS):
            last = None
            continue
        step = (b.x - a.x, b.y - a.y)
        steps.append(math.hypot(*step))
        if last is not None and math.hypot(*last) >= STACK_PX and steps[-1] >= STACK_PX:
            turns.append(last[0] * step[0] + last[1] * step[1] < 0)
            changes.append(abs(steps[-1] - math.hypot(*last)) / max(steps[-1], math.hypot(*last)))
        last = step if isinstance(b, Circle) else None
    return steps, turns, changes


def observed_stream_step(beatmap: Beatmap, until_ms: float = math.inf) -> float | None:
    """The map's own step limit before `until_ms`: the 90th percentile of its stream steps;
    None with fewer than MIN_STEPS, or where more than MAX_TURNING of them turn back."""
    steps, turns, _ = stream_steps(beatmap, until_ms)
    if len(steps) < MIN_STEPS or (turns and np.mean(turns) > MAX_TURNING):
        return None
    return float(np.quantile(steps, 0.9))
