"""Stacked doubles and triples: a short run of 1/4 notes drawn on one spot.

Mappers draw a 1/4 double or triple (a head under STREAM_GAP_MS after a circle, after a longer
gap) either stacked on its circle or stepping away from it, and never half and half. Of the runs'
first steps in the test corpus's ranked maps, 55% are stacked at 3.5-5 stars and 41% from 5
stars; of their triples, 298 are stacked whole, 391 step whole, none mixed. kiai's maps stacked
none (the starter model places every head somewhere new), so its doubles all read as tiny jumps.

So decoding keeps a floor under the share of runs that start stacked
(DecodingOptions.stack_share, counted over the map so far by SequenceState):
where the runs so far fall short of it, the x of the circle the run starts from is raised by
STACK_GAIN nats per stack missing (at most STACK_TILT), and where the head takes that x, its y
is the circle's too. A run that started stacked stays stacked up to STACK_RUN notes (a
triple); one that started stepping may not stack later. Longer runs are streams, left to
core.streams.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from core.beatmap.model import Beatmap, HitObject, Slider, Spinner
from core.spacing_limit import STACK_PX, STREAM_GAP_MS, streaming

if TYPE_CHECKING:
    from core.sequence_state import SequenceState

NEG_INF = float("-inf")
STACK_GAIN = 8.0  # nats the stack's x is raised per stack missing ...
STACK_TILT = 12.0  # ... at most
STACK_RUN = 3  # notes a stacked run keeps on its spot (a triple); from the fourth, a stream
MIN_RUNS = 8  # run starts a map needs before its own share is read


def stack_share_for_stars(stars: float) -> float:
    """The share of 1/4 doubles and triples ranked maps start stacked (see the docstring)."""
    return 0.5 if stars < 5.0 else 0.4


def run_starts(objects: list[HitObject]) -> list[bool]:
    """Per run of 1/4 notes among `objects` (in time order; a head under STREAM_GAP_MS after a
    circle, after a longer gap), whether its first step stacks."""
    objects = [o for o in objects if not isinstance(o, Spinner)]
    starts = []
    for before, first, second in zip([None, *objects], objects, objects[1:]):
        if isinstance(first, Slider) or second.time - first.time >= STREAM_GAP_MS:
            continue
        if before is not None and not isinstance(before, Slider) \
                and first.time - before.time < STREAM_GAP_MS:
            continue  # a step inside a run, not its first
        starts.append(math.dist((first.x, first.y), (second.x, second.y)) < STACK_PX)
    return starts


def observed_stack_share(beatmap: Beatmap, until_ms: float = math.inf) -> float | None:
    """The share of the map's runs before `until_ms` whose first step stacks; None with fewer
    than MIN_RUNS."""
    starts = run_starts([o for o in beatmap.hit_objects if o.time < until_ms])
    return float(np.mean(starts)) if len(starts) >= MIN_RUNS else None


def steer_stack(cells: Tensor, values: Tensor, at: float, x_axis: bool, state: SequenceState,
                share: float | None) -> None:
    """Edit a head's coordinate `cells` (x or y, their centres `values`) in place toward, onto
    or off the spot `at` of the circle the run steps from (see the docstring). Where other rules
    closed that spot, nothing changes."""
    if not share or not streaming(state) or state.run_notes >= STACK_RUN:
        return  # None or 0: the model's own
    spot = int((values - at).abs().argmin())
    if abs(float(values[spot]) - at) > STACK_PX / 2 or not math.isfinite(float(cells[spot])):
        return
    first = state.run_notes == 0  # the run's first step: the share decides
    wanted = share * (state.run_starts + 1) - state.stacked_starts > 0 if first \
        else state.run_stacked
    on_column = x_axis or abs(state.pending_x - state.last_position[0]) <= STACK_PX / 2
    if not on_column:
        return
    if wanted and (not x_axis or not first):  # onto the spot
        keep = float(cells[spot])
        cells.fill_(NEG_INF)
        cells[spot] = keep
    elif wanted:  # the first step's x: toward the spot
        missing = share * (state.run_starts + 1) - state.stacked_starts
        cells[spot] += min(STACK_GAIN * missing, STACK_TILT)
    elif not first and not x_axis and int(torch.isfinite(cells).sum()) > 1:
        cells[spot] = NEG_INF  # a run that started stepping does not stack later
