"""Where the next object's head may go while decoding: within the spacing ceiling of where the
last object ended, and clear of it.

The ceiling (DecodingOptions.spacing, px per ms of gap) bounds the jumps, which decide most of
the star rating. The floor (DecodingOptions.min_distance, px) keeps an object that comes
OVERLAP_GAP_MS or more after the last one's end from overlapping it: ranked maps put 0.3-12% of
such neighbours within 0.8 of a circle's diameter of each other, the starter model put 54% at 2
stars (benchmarks/map_style.py), where the ceiling is a circle's width over a half beat and the
model stays inside it. Streams (shorter gaps) may overlap and stack as mappers draw them. After a
slider, its head is kept clear too (where a y allows): its body starts there and is still on
screen (9.2% of such neighbours sat on it, ranked maps' 0.5%).

Distance snap (DecodingOptions.spacing_spread): a move as long in time as the last one keeps
within that fraction of the last one's distance. Ranked maps differ by a median 1-2.4% between
such neighbouring moves up to 4.5 stars and 11-19% above; the starter's by 25-31% (map_style).

x is chosen first, then y for that x: an x stays open where some y on the playfield lies in the
ring between floor and ceiling. Where the limits leave nothing the model may choose, they are
not applied (the model's own choice beats no object).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from core.beatmap.model import PLAYFIELD_HEIGHT, PLAYFIELD_WIDTH
from core.tokens.vocab import Category, Vocab

if TYPE_CHECKING:
    from core.constraints import SequenceState
    from core.decoding import DecodingOptions

NEG_INF = float("-inf")
# From the last object's end to the next one's start: at or above, the two circles must not
# overlap (a half beat up to 333 BPM; a 1/4 stream's gaps are shorter down to 83 BPM)
OVERLAP_GAP_MS = 180.0
# Where the floor meets a lower ceiling, the ceiling is raised to leave this much room beyond
# the floor (a ring 1/4 of the floor wide): the floor is the stronger rule, and the star
# rating's retries answer the wider jumps with sparser rhythm
FLOOR_ROOM = 1.25
# Distance snap (DecodingOptions.spacing_spread): moves this near in time are the same rhythm
SAME_GAP_MS = 2.0
STACK_PX = 4.0  # a move shorter than this is a stack: no distance to keep


def circle_diameter(cs: float) -> float:
    """osu!pixels across a hit circle at circle size `cs` (osu!'s 54.4 - 4.48 CS radius)."""
    return 2.0 * (54.4 - 4.48 * cs)


class SpacingLimit:
    """Masks the coordinate tokens that would put the next head too far from, or on top of,
    where the last object ended."""

    def __init__(self, vocab: Vocab, options: DecodingOptions) -> None:
        self.options = options
        self.step = vocab.config.time_step_ms
        self.x_values = torch.tensor(vocab.x_values)
        self.y_values = torch.tensor(vocab.y_values)
        self.x_span = vocab.spans[Category.COORD_X]
        self.y_span = vocab.spans[Category.COORD_Y]
        self.y_step = vocab.y_step
        self.min_reach = math.hypot(vocab.x_step, vocab.y_step)  # the nearest cell is in reach

    def ring(self, state: SequenceState) -> tuple[float, float]:
        """(floor, reach) in osu!pixels from the last end for the object being placed."""
        reach = math.inf
        if self.options.spacing is not None:
            reach = max(self.options.spacing * max(state.gap, self.step), self.min_reach)
        floor = 0.0
        if self.options.min_distance and state.gap >= OVERLAP_GAP_MS:
            floor = self.options.min_distance
            reach = max(reach, FLOOR_ROOM * floor)
        spread, last = self.options.spacing_spread, state.last_move
        if spread is not None and last is not None and abs(state.gap - last[0]) <= SAME_GAP_MS \
                and last[1] >= STACK_PX:
            # the same rhythm, the same spacing: within `spread` of the last move's distance,
            # as far as the floor and ceiling allow
            floor = min(max(floor, last[1] * (1 - spread)), reach)
            reach = max(min(reach, last[1] * (1 + spread)), floor)
        return floor, reach

    def apply(self, logits: Tensor, state: SequenceState, axis: Category) -> None:
        """Edit `logits` (V,) in place for a head's `axis` coordinate (COORD_X or COORD_Y)."""
        if state.last_position is None:
            return
        floor, reach = self.ring(state)
        if floor <= 0.0 and math.isinf(reach):
            return
        lx, ly = state.last_position  # measured from the nearest point on the playfield
        lx, ly = min(max(lx, 0.0), PLAYFIELD_WIDTH), min(max(ly, 0.0), PLAYFIELD_HEIGHT)
        if axis is Category.COORD_X:
            span = self.x_span
            dx = self.x_values - lx
            room = torch.sqrt((reach ** 2 - dx ** 2).clamp(min=0.0))
            inner = torch.sqrt((floor ** 2 - dx ** 2).clamp(min=0.0))
            # some y on the playfield between inner and room, above or below the last end
            below = torch.minimum(room, torch.tensor(ly)) >= inner
            above = torch.minimum(room, torch.tensor(PLAYFIELD_HEIGHT - ly)) >= inner
            far = (dx.abs() > reach) | ~(below | above)
        else:
            span = self.y_span
            dx = state.pending_x - lx
            room = max(math.sqrt(max(reach ** 2 - dx ** 2, 0.0)), self.y_step / 2)
            inner = math.sqrt(max(floor ** 2 - dx ** 2, 0.0))
            dy = (self.y_values - ly).abs()
            far = (dy > room) | (dy < inner)
            head = state.last_head
            if floor > 0.0 and head is not None and head != state.last_position:
                # the last slider's head too: its body starts there and is still on screen
                clear = self.options.min_distance or 0.0
                inner = math.sqrt(max(clear ** 2 - (state.pending_x - head[0]) ** 2, 0.0))
                on_head = (self.y_values - head[1]).abs() < inner
                if bool(torch.isfinite(logits[span.start: span.stop].masked_fill(
                        far | on_head, NEG_INF)).any()):
                    far = far | on_head
        cells = logits[span.start: span.stop]
        limited = cells.masked_fill(far, NEG_INF)
        if bool(torch.isfinite(limited).any()):
            cells.copy_(limited)
