"""Where the next object's head may go while decoding: within the spacing ceiling of where the
last object ended, and clear of it.

The ceiling (DecodingOptions.spacing, px per ms of gap) bounds the jumps, which decide most of
the star rating. The floor (DecodingOptions.min_distance, px) keeps an object that comes
OVERLAP_GAP_MS or more after the last one's end (or a half beat of the song's tempo, where that
is shorter but no stream's step) from overlapping it: ranked maps put 0.3-12% of
such neighbours within 0.8 of a circle's diameter of each other, the starter model put 54% at 2
stars (benchmarks/map_style.py), where the ceiling is a circle's width over a half beat and the
model stays inside it. Streams (shorter gaps) may overlap and stack as mappers draw them. After a
slider, its head is kept clear too (where a y allows): its body starts there and is still on
screen (9.2% of such neighbours sat on it, ranked maps' 0.5%). So are the objects before the
last that are still on screen (ended within ON_SCREEN_MS, SequenceState.earlier): the head
stacks on one or keeps the floor from it, never half over it (kiai's maps had a median 11.9 such
pairs a beat or more apart per 100 objects, ranked maps 1.1; QA, session 25). ON_SCREEN_MS is
AR 5's approach: at higher AR it keeps clear of some objects already gone.

Distance snap (DecodingOptions.spacing_spread): a move as long in time as the last one (within
a decoding time step) keeps within that fraction of the last one's distance, or, in a
continuation, of the map's own distance for that gap (DecodingOptions.snap_distances); a
stream's step within STREAM_SPREAD of the step before. Ranked maps differ by a median 1-2.4%
between such neighbouring moves up to 4.5 stars and 11-19% above; the starter's by 25-31%
(map_style).

Streams (DecodingOptions.stream_step): a head under STREAM_GAP_MS after a circle steps at most
that far from it, and after a step of a stream does not turn back (over 90 degrees) from it.
(From a slider's end the next head often comes that soon, and a jump away is the pattern.)

The join (SequenceState.join): where the new objects must lead into a kept one (a filled
range's end, `--until`), every head stays within the ceiling's reach of it for the time left,
so the last one's jump into it is one the map's spacing allows (it had been 151 px on a 1/4
gap where the mapper's median was 22 px). It yields to the ring where both cannot hold.

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
    from core.decoding import DecodingOptions
    from core.sequence_state import SequenceState

NEG_INF = float("-inf")
# From the last object's end to the next one's start: at or above, the two circles must not
# overlap (a half beat up to 166 BPM; a 1/4 stream's gaps are shorter down to 83 BPM), nor
# from a half beat down to STREAM_GAP_MS where that is shorter (SpacingLimit._overlap_gap)
OVERLAP_GAP_MS = 180.0
# Where the floor meets a lower ceiling, the ceiling is raised to leave this much room beyond
# the floor (a ring 1/4 of the floor wide): the floor is the stronger rule, and the star
# rating's retries answer the wider jumps with sparser rhythm
FLOOR_ROOM = 1.25
# Distance snap (DecodingOptions.spacing_spread): moves this near in time are the same rhythm
# (in a map's snapped times; decoding's own times are whole time steps, where a 1/4 beat of
# 93.75 ms comes 90 or 100 ms after the last, and moves one step apart are the same rhythm:
# compared within SAME_GAP_MS only, a stream's steps at such a tempo never kept the snap)
SAME_GAP_MS = 2.0
STACK_PX = 4.0  # a move shorter than this is a stack: no distance to keep
# An object ended this recently is on screen with the one being placed (about AR 5's 1200 ms
# of approach), which keeps a diameter from it too, or stacks on it
ON_SCREEN_MS = 1200.0
# Under this from a circle to the next head, a move is a stream's step
# (DecodingOptions.stream_step): a 1/4 beat from 107 BPM, a half beat from 214
STREAM_GAP_MS = 140.0
# A stream's step keeps within this fraction of the step before (under the map's own spread):
# ranked maps' steps differ by a median 1.5-7.4% per star band, the starter's by 30-44%
STREAM_SPREAD = 0.1
# DecodingOptions.snap_floor holds over gaps up to this many beats (a longer pause is no rhythm
# to snap to: held over 2 beats, a 2.5-star map's 2-beat rests became 306 px jumps, QA round 4)
SNAP_BEATS = 1.0


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
        self.same_gap = max(SAME_GAP_MS, self.step)  # decoding's times are whole steps

    def rings(self, state: SequenceState
              ) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        """(floor, reach) in osu!pixels from the last end for the object being placed: the
        ceiling's and floor's ring, then distance snap's narrower one; each None where it
        limits nothing."""
        overlap_gap = self._overlap_gap(state)
        reach = self._reach(state.gap, math.inf)  # (the floor's room: below, after the cuts)
        if state.soft is not None and self.options.soft_spacing not in (None, 1.0) \
                and state.soft(state.cursor):  # a soft passage: smaller jumps
            reach = max(reach * self.options.soft_spacing, self.min_reach)
        if self.options.stream_step is not None and streaming(state):
            # (a stream's step comes under the overlap gap: the floor never holds for it)
            reach = max(min(reach, self.options.stream_step), self.min_reach)
        floor = (self.options.min_distance or 0.0) if state.gap >= overlap_gap else 0.0
        if floor > 0.0:  # the floor is the stronger rule: room beyond it (FLOOR_ROOM), else
            # the ring is empty and apply() drops every limit (a soft passage's smaller
            # ceiling had done so: 387 px jumps in 167 ms at 2.5 stars, QA round 5)
            reach = max(reach, FLOOR_ROOM * floor)
        if self.options.snap_floor and not math.isinf(reach) and state.beat_ms is not None \
                and not streaming(state) and not state.after_spinner \
                and state.gap <= SNAP_BEATS * state.beat_ms(state.cursor):
            # distance snap: near the ceiling's reach for the time, whatever the rhythm
            floor = max(floor, self.options.snap_floor * reach)
        ring = None if floor <= 0.0 and math.isinf(reach) else (floor, reach)
        spread, last = self.options.spacing_spread, state.last_move
        if spread is not None and last is not None and last[0] < STREAM_GAP_MS \
                and streaming(state):  # a stream's steps, evener than other moves
            spread = min(spread, STREAM_SPREAD)
        snap = None
        own = min(self.options.snap_distances or (), default=None,
                  key=lambda gap_px: abs(state.gap - gap_px[0]))
        if own is not None and (abs(state.gap - own[0]) > self.same_gap or (
                streaming(state) and (state.run_notes == 0 or state.run_stacked))):
            own = None  # (a run's first step may stack, and a stacked run stays stacked)
        if spread is not None and own is None and last is not None \
                and abs(state.gap - last[0]) <= self.same_gap and last[1] >= STACK_PX:
            own = last
        if spread is not None and own is not None:
            # the same rhythm, the same spacing: within `spread` of the map's own distance for
            # it (a continuation), else of the last move's, as far as floor and ceiling allow
            inner = min(max(floor, own[1] * (1 - spread)), reach)
            snap = (inner, max(min(reach, own[1] * (1 + spread)), inner))
        return ring, snap

    def apply(self, logits: Tensor, state: SequenceState, axis: Category) -> None:
        """Edit `logits` (V,) in place for a head's `axis` coordinate (COORD_X or COORD_Y):
        the limits' masks in turn, strongest first, each where it leaves the model a choice."""
        span = self.x_span if axis is Category.COORD_X else self.y_span
        cells = logits[span.start: span.stop]
        masks = self._x_masks(state) if axis is Category.COORD_X else self._y_masks(state)
        far: Tensor | None = None
        for mask in masks:
            tried = mask if far is None else far | mask
            if bool(torch.isfinite(cells.masked_fill(tried, NEG_INF)).any()):
                far = tried
        if far is not None:
            cells.masked_fill_(far, NEG_INF)

    def join_reach(self, state: SequenceState) -> float:
        """How far (px) from the kept object the head being placed may be: the ceiling over
        the time until it starts (not less than the floor's room where that is long enough
        for the floor to hold); infinite without a join or a ceiling."""
        if state.join is None or self.options.spacing is None:
            return math.inf
        return self._reach(state.join[0] - state.cursor, self._overlap_gap(state))

    def _overlap_gap(self, state: SequenceState) -> float:
        """From how long after the last end the head must clear it: OVERLAP_GAP_MS, or a half
        beat of the song's tempo (within a time step) where that is shorter but no stream's
        step. At 186 BPM a half beat is 161 ms: without it, a 4-star map put 65 of its 245 half
        beats' circles 3-40 px from the last, half over it (QA, session 28)."""
        if state.beat_ms is None:
            return OVERLAP_GAP_MS
        half_beat = state.beat_ms(state.cursor) / 2 - self.step
        return max(STREAM_GAP_MS, min(OVERLAP_GAP_MS, half_beat))

    def _reach(self, gap: float, overlap_gap: float) -> float:
        """How far (px) the ceiling reaches over `gap` ms (infinite without one), raised to
        FLOOR_ROOM x the floor where the gap is long enough (`overlap_gap`) for the floor to
        hold."""
        reach = math.inf
        if self.options.spacing is not None:
            reach = max(self.options.spacing * max(gap, self.step), self.min_reach)
        if self.options.min_distance and gap >= overlap_gap:
            reach = max(reach, FLOOR_ROOM * self.options.min_distance)
        return reach

    def _last_end(self, state: SequenceState) -> tuple[float, float] | None:
        """Where the last object ended, its nearest point on the playfield (None: no object
        yet)."""
        if state.last_position is None:
            return None
        lx, ly = state.last_position
        return min(max(lx, 0.0), PLAYFIELD_WIDTH), min(max(ly, 0.0), PLAYFIELD_HEIGHT)

    def _x_ring(self, end: tuple[float, float], floor: float, reach: float
                ) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """The x cells with no y on the playfield between `floor` and `reach` from `end`, and
        per x the y intervals there (below and above it)."""
        lx, ly = end
        dx = self.x_values - lx
        room = torch.sqrt((reach ** 2 - dx ** 2).clamp(min=0.0))
        inner = torch.sqrt((floor ** 2 - dx ** 2).clamp(min=0.0))
        rows = [((ly - room).clamp(min=0.0), ly - inner),
                (ly + inner, (ly + room).clamp(max=PLAYFIELD_HEIGHT))]
        return (dx.abs() > reach) | ~((rows[0][0] <= rows[0][1]) | (rows[1][0] <= rows[1][1])), \
            rows

    def _y_ring(self, state: SequenceState, end: tuple[float, float], floor: float,
                reach: float) -> Tensor:
        """The y cells (for the x chosen) not between `floor` and `reach` from `end`."""
        lx, ly = end
        dx = state.pending_x - lx
        room = max(math.sqrt(max(reach ** 2 - dx ** 2, 0.0)), self.y_step / 2)
        inner = math.sqrt(max(floor ** 2 - dx ** 2, 0.0))
        dy = (self.y_values - ly).abs()
        return (dy > room) | (dy < inner)

    def _x_masks(self, state: SequenceState) -> list[Tensor]:
        """The x cells with no y on the playfield in the ring; then those whose ring's y meet
        none within the join's reach; then those outside distance snap's ring."""
        masks = []
        full = torch.zeros_like(self.x_values)
        rows = [(full, full + PLAYFIELD_HEIGHT)]  # per x, the y intervals the ring leaves
        end = self._last_end(state)
        ring, snap = self.rings(state) if end is not None else (None, None)
        if ring is not None:
            mask, rows = self._x_ring(end, *ring)
            masks.append(mask)
        reach = self.join_reach(state)
        if not math.isinf(reach):
            _, jx, jy = state.join
            dx = self.x_values - jx
            room = torch.sqrt((reach ** 2 - dx ** 2).clamp(min=0.0))
            meets = torch.zeros_like(dx, dtype=torch.bool)
            for low, high in rows:
                meets |= torch.maximum(low, jy - room) <= torch.minimum(high, jy + room)
            masks.append((dx.abs() > reach) | ~meets)
        if snap is not None:
            masks.append(self._x_ring(end, *snap)[0])
        heading = self._stream_heading(state)
        if heading is not None:
            (lx, ly), (hx, hy) = end, heading
            dx = self.x_values - lx
            if abs(hy) < 1e-9:  # a level step: its x side of the last end
                masks.append(dx * hx < 0)
            else:  # the y from which (dx, dy) . heading >= 0, below or above
                edge = ly - dx * hx / hy
                low, high = (edge, torch.full_like(dx, PLAYFIELD_HEIGHT)) if hy > 0 else \
                    (torch.zeros_like(dx), edge)
                meets = torch.zeros_like(dx, dtype=torch.bool)
                for row_low, row_high in rows:
                    meets |= torch.maximum(row_low, low) <= torch.minimum(row_high, high)
                masks.append(~meets)
        shown = self._shown(state)
        if ring is not None and ring[0] > 0.0 and shown:
            # the x cells whose every y in the ring sits half over an earlier object
            ys = self.y_values[None, :]
            dx = self.x_values[:, None] - end[0]
            from_last = torch.sqrt(dx ** 2 + (ys - end[1]) ** 2)
            free = (from_last >= ring[0]) & (from_last <= ring[1]) \
                & (ys >= 0) & (ys <= PLAYFIELD_HEIGHT)
            for bx, by in shown:
                distance = torch.sqrt((self.x_values[:, None] - bx) ** 2 + (ys - by) ** 2)
                free &= (distance < STACK_PX) | (distance >= ring[0])
            masks.append(~free.any(dim=1))
        return masks

    @staticmethod
    def _shown(state: SequenceState) -> list[tuple[float, float]]:
        """Where the objects before the last that are still on screen ended."""
        return [(x, y) for x, y, end in state.earlier if state.cursor - end < ON_SCREEN_MS]

    def _stream_heading(self, state: SequenceState) -> tuple[float, float] | None:
        """The last step's (dx, dy) where this head and the last one are both a stream's
        steps and one more turning back would take the map's share of them over
        DecodingOptions.stream_turns: the next may not turn back from it."""
        share = self.options.stream_turns
        if share is None or state.stream_turns + 1 <= share * (state.turnable + 1):
            return None
        return state.stream_heading()

    def _y_masks(self, state: SequenceState) -> list[Tensor]:
        """The y cells (for the x chosen) outside the ring; outside the join's reach; outside
        distance snap's ring; on the last slider's head."""
        masks = []
        end = self._last_end(state)
        ring, snap = self.rings(state) if end is not None else (None, None)
        if ring is not None:
            masks.append(self._y_ring(state, end, *ring))
        reach = self.join_reach(state)
        if not math.isinf(reach):
            _, jx, jy = state.join
            room = max(math.sqrt(max(reach ** 2 - (state.pending_x - jx) ** 2, 0.0)),
                       self.y_step / 2)
            masks.append((self.y_values - jy).abs() > room)
        if snap is not None:
            masks.append(self._y_ring(state, end, *snap))
        heading = self._stream_heading(state)
        if heading is not None:
            (lx, ly), (hx, hy) = end, heading
            masks.append((state.pending_x - lx) * hx + (self.y_values - ly) * hy < 0)
        head = state.last_head
        if ring is not None and ring[0] > 0.0 and head is not None and head != state.last_position:
            # the last slider's head too: its body starts there and is still on screen
            clear = self.options.min_distance or 0.0
            inner = math.sqrt(max(clear ** 2 - (state.pending_x - head[0]) ** 2, 0.0))
            masks.append((self.y_values - head[1]).abs() < inner)
        shown = self._shown(state)
        if ring is not None and ring[0] > 0.0 and shown:
            # the objects before the last still on screen: on one (a stack) or clear of it,
            # not half over it (see the module's docstring)
            half_over = torch.zeros_like(self.y_values, dtype=torch.bool)
            for bx, by in shown:
                distance = torch.sqrt((state.pending_x - bx) ** 2 + (self.y_values - by) ** 2)
                half_over |= (distance >= STACK_PX) & (distance < ring[0])
            masks.append(half_over)
        return masks


def streaming(state: SequenceState) -> bool:
    """Whether the head being placed is a stream's step: under STREAM_GAP_MS after a circle."""
    return state.after_circle and state.last_position is not None \
        and state.start_gap < STREAM_GAP_MS
