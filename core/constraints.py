"""The rules decoding keeps to: which tokens may come next in one sequence (DESIGN §8).

Every sequence the filter allows is a valid map: the grammar's categories, time moving forward,
objects that start inside the window, after the generation start and after the previous object's
end, on the map's ticks when its timing is known, within the playfield, with jumps no wider than
the spacing ceiling and heads clear of the last object (core.spacing_limit), and sliders that
end on the playfield. `SequenceState.step` updates what the rules know per token, never
rescanning the history.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from core.accents import accent_room, slider_fits
from core.anchor_turns import AnchorTurns
from core.beatmap.model import PLAYFIELD_HEIGHT, PLAYFIELD_WIDTH
from core.music_pull import apply_pull
from core.object_fit import MIN_SPINNER_MS, SPINNER_RECOVERY_MS
from core.object_mix import (
    circle_not_slider,
    land_slider_body,
    limit_slider_ends,
    tilt_body_to_long,
    tilt_to_long,
    tilt_to_reverses,
    tilt_to_sliders,
)
from core.playfield import curve_reach
from core.rhythm import GAP_LEVELS_MS
from core.sequence_state import SequenceState
from core.spacing_limit import SpacingLimit
from core.spinner_rules import ENTRY_MS
from core.stacks import steer_stack
from core.tokens.grammar import Grammar, State
from core.tokens.vocab import Category, Vocab

if TYPE_CHECKING:
    from core.decoding import DecodingOptions

C = Category
NEG_INF = float("-inf")
LANDING_MS = 2000.0  # gaps up to this must land on a tick when timing is known (longer: breaks)
# Anchors a generated slider may have: 99.7% of the corpus's sliders have at most 16; a model
# that does not end its path otherwise scattered 64 anchors over the playfield (the grammar's
# bound, which real maps' tokens need)
MAX_GENERATED_ANCHORS = 16
# After a spinner the player needs time to find the cursor again: objects had followed within
# 8 ms. About a beat at 150 BPM (the ranking criteria ask a beat or more, by difficulty).
# (core.object_fit.SPINNER_RECOVERY_MS: a spinner's end snapped later keeps it too.)
# A slider sent back for the reverse floor spans at least this many min_slider_lengths (1.5
# radii for a new map: a 1/4-beat kick is not sent back, a beat at 2 stars is)
REVERSE_SPAN = 1.5

__all__ = ["NEG_INF", "SPINNER_RECOVERY_MS", "ConstraintFilter", "SequenceState",
           "spinner_recovery_ms"]


def spinner_recovery_ms(options: DecodingOptions, state: SequenceState, at: float) -> float:
    """The time a spinner ending at `at` (ms from the window's origin) leaves before the next
    object: SPINNER_RECOVERY_MS, or DecodingOptions.spinner_recovery_beats of the map's beat
    there where that is known and longer."""
    if options.spinner_recovery_beats and state.beat_ms is not None:
        return max(SPINNER_RECOVERY_MS, options.spinner_recovery_beats * state.beat_ms(at))
    return SPINNER_RECOVERY_MS


class ConstraintFilter:
    """Masks every token the grammar or the timing rules forbid (see the module docstring)."""

    def __init__(self, vocab: Vocab, options: DecodingOptions) -> None:
        self.vocab = vocab
        self.options = options
        self.grammar = Grammar(vocab.config)
        self.step = vocab.config.time_step_ms
        self.shifts = torch.tensor(vocab.shift_values_ms)
        self.shift_span = vocab.spans[C.TIME_SHIFT]
        self.log_gaps = torch.log2(self.shifts.clamp(min=1.0))
        self.eos = vocab.id(C.EOS)
        self.shift_values = list(vocab.shift_values_ms)
        self.landing_count = sum(v <= LANDING_MS for v in self.shift_values)
        self.landings = torch.tensor(self.shift_values[: self.landing_count], dtype=torch.float64)
        # on_tick and end_on_tick at every time-step multiple of the window, filled as far as
        # landings reach: shifts are whole steps, so every cursor and landing is one (see
        # _land_on_ticks); one table per test, for the window's state
        self.tick_tables: dict[Callable[[float], bool], Tensor] = {}
        self.masks: dict[tuple[State, bool], Tensor] = {}  # allowed ids per state
        for state in State:
            for anchors_full in (False, True):
                anchors = self.grammar.max_anchors if anchors_full else 0
                mask = torch.zeros(len(vocab), dtype=torch.bool)
                for category in self.grammar.allowed(state, anchors):
                    span = vocab.spans[category]
                    mask[span.start: span.stop] = True
                self.masks[(state, anchors_full)] = mask
        self.spacing = SpacingLimit(vocab, options)
        self.anchor_turns = AnchorTurns(vocab)
        self.curves: dict[tuple, float] = {}  # a slider's reach (ms) by its path
        self.spinner_ids = vocab.spans[C.PLACE_SPINNER]
        self.durations = torch.tensor(vocab.spinner_durations_ms) \
            if vocab.config.spinner_duration_bins else None
        self.circle_ids, self.slider_ids, self.end_slider_ids = (
            slice(vocab.spans[c].start, vocab.spans[c].stop)
            for c in (C.PLACE_CIRCLE, C.START_SLIDER, C.END_SLIDER))
        self.segment_ids = vocab.spans[C.START_SLIDER]  # inside a slider: a new segment
        self.object_ids = [vocab.spans[c] for c in
                           (C.NEW_COMBO, C.PLACE_CIRCLE, C.START_SLIDER, C.PLACE_SPINNER)]
        # Positions the reader writes inside the playfield (real maps put some slider anchors
        # outside it; generated ones stay in, which is always playable).
        self.off_playfield = {
            C.COORD_X: self._outside(C.COORD_X, vocab.x_values, PLAYFIELD_WIDTH),
            C.COORD_Y: self._outside(C.COORD_Y, vocab.y_values, PLAYFIELD_HEIGHT),
        }

    def _outside(self, category: Category, values: Sequence[float], size: int) -> Tensor:
        mask = torch.zeros(len(self.vocab), dtype=torch.bool)
        start = self.vocab.spans[category].start
        for i, value in enumerate(values):
            mask[start + i] = not 0 <= round(value) <= size
        return mask

    def apply(self, logits: Tensor, state: SequenceState) -> None:
        """Edit `logits` (V,) in place for the next token of `state`."""
        walker = state.walker
        full = walker.anchors >= min(self.grammar.max_anchors, MAX_GENERATED_ANCHORS)
        logits.masked_fill_(~self.masks[(walker.state, full)], NEG_INF)
        no_spinner = state.cursor < state.spinners_from \
            or state.cursor - state.last_end < ENTRY_MS \
            or (state.spinner_ok is not None and not state.spinner_ok(state.cursor))
        if no_spinner and walker.state is not State.OBJECT:
            logits[self.spinner_ids.start: self.spinner_ids.stop] = NEG_INF
        if walker.state is State.SLIDER_BODY and not state.segments_allowed:
            logits[self.segment_ids.start: self.segment_ids.stop] = NEG_INF
        span = self.shift_span
        if walker.state in _X_STATES:
            logits.masked_fill_(self.off_playfield[C.COORD_X], NEG_INF)
            if walker.state is not State.ANCHOR_X:
                self.spacing.apply(logits, state, C.COORD_X)
                self._stack(logits, state, C.COORD_X)
            else:
                self.anchor_turns.apply(logits, state, C.COORD_X)
        elif walker.state in _Y_STATES:
            logits.masked_fill_(self.off_playfield[C.COORD_Y], NEG_INF)
            if walker.state is not State.ANCHOR_Y:
                self.spacing.apply(logits, state, C.COORD_Y)
                self._stack(logits, state, C.COORD_Y)
            elif len(state.path) == 1 and state.pending_x == state.path[0][0]:
                # the first anchor may not sit on the head: a path of no extent is a slider
                # of no length (osu! cannot extend it), which no player can follow
                head_y = self.vocab.spans[C.COORD_Y].start + self.vocab.y_values.index(
                    state.path[0][1])
                logits[head_y] = NEG_INF
            else:  # later anchors: no doubling back (core.anchor_turns)
                self.anchor_turns.apply(logits, state, C.COORD_Y)
        elif walker.state is State.OBJECT:
            # Ending the window is final (the next window starts at this one's end), so it is
            # decided, not drawn: only where the model finds it likelier than going on. Beam
            # search too: left to its scores, an early end (a few tokens, each likely) beat
            # whole windows of objects, whose coordinates cost ~1-2 nats a token.
            eos_logit = float(logits[self.eos])
            if math.isfinite(eos_logit) and float(torch.softmax(logits, -1)[self.eos]) < 0.5:
                logits[self.eos] = NEG_INF
            if no_spinner:  # after the end is decided: as likely as the model finds it
                logits[self.spinner_ids.start: self.spinner_ids.stop] = NEG_INF
            # A shift may not move the cursor to or past the window's end ...
            room = state.window_end - state.cursor
            allowed = int(torch.searchsorted(self.shifts, room, right=False))
            logits[span.start + allowed: span.stop] = NEG_INF
            # With a start test (known timing, or silence in the song), a gap of up to
            # LANDING_MS must land where an object may start (on a tick, not in silence, after
            # the earliest start):
            # the model picks the next object's time with its gap, and a gap that ends off the
            # ticks would only force another (a sampled chain of them can skip a window).
            # ... and an object may start only after the generation start and the last object.
            earliest = self._earliest(state)
            if state.on_tick is not None:
                self._land_on_ticks(logits, state, allowed, earliest)
            if state.cursor < earliest or (state.on_tick and not state.on_tick(state.cursor)):
                for s in self.object_ids:
                    logits[s.start: s.stop] = NEG_INF
            if state.fill is not None:
                self._fill(logits, state, earliest)
            if state.pull is not None:  # toward the beats and what is heard (core.music_pull)
                apply_pull(logits, state.pull, state.cursor, self.landings, self.step, span,
                           self.object_ids)
            bias = self.options.density_bias
            if state.soft is not None and self.options.soft_bias and state.soft(state.cursor):
                bias += self.options.soft_bias  # a soft passage: calmer
            if bias:
                self._tilt(logits[span.start: span.stop], bias)
            if not bool(torch.isfinite(logits).any()):  # nowhere left to go: the window ends
                logits[self.eos] = eos_logit
        elif walker.state in (State.SLIDER_TIME, State.SPINNER_TIME, State.SLIDER_BODY,
                              State.SPINNER):
            room = self.options.max_object_ms - state.body
            if walker.state in (State.SPINNER, State.SPINNER_TIME) and state.spinner_until:
                room = min(room, state.spinner_until(state.cursor) - state.cursor - state.body)
            if walker.state in (State.SLIDER_BODY, State.SLIDER_TIME):
                room = min(room, self._slider_room(state))
            allowed = int(torch.searchsorted(self.shifts, room, right=True))
            if walker.state in (State.SLIDER_BODY, State.SPINNER):
                allowed = max(allowed, 1)  # a shift is all that may follow: the shortest stays
            logits[span.start + allowed: span.stop] = NEG_INF
            if walker.state is State.SPINNER:  # one that can be spun, as long as room allows
                shortest = int(torch.searchsorted(self.shifts, min(room, MIN_SPINNER_MS)))
                logits[span.start: span.start + min(shortest, allowed - 1)] = NEG_INF
                if self.durations is not None:  # ... in duration bins (the seed language)
                    bins = self.vocab.spans[C.SPINNER_DURATION]
                    fits = (self.durations <= room) & (self.durations >= min(room,
                                                                            MIN_SPINNER_MS))
                    if bool(fits.any()):
                        logits[bins.start: bins.stop].masked_fill_(~fits, NEG_INF)
            if walker.state in (State.SLIDER_BODY, State.SLIDER_TIME) and state.end_on_tick \
                    and allowed > 0:
                steps = torch.round((state.cursor + state.body + self.shifts[:allowed].double())
                                    / self.step).long()
                on = self._ticks(state.end_on_tick, int(steps[-1]))[steps]
                land_slider_body(logits[span.start: span.start + allowed], on)
            if walker.state is State.SLIDER_BODY and self.options.long_share \
                    and state.beat_ms is not None:
                tilt_body_to_long(logits[span.start: span.stop], self.shifts, state.body,
                                  self.options.long_share, state.sliders, state.longs,
                                  state.beat_ms(state.cursor))
            if walker.state is State.SLIDER_TIME:
                end = state.cursor + state.body
                speed = state.slider_speed
                limit_slider_ends(logits, self.end_slider_ids,
                                  state.end_on_tick is None or state.end_on_tick(end),
                                  self.options.min_slider_length,
                                  None if speed is None else speed(state.cursor) * state.body)
                if self.options.reverse_share:
                    tilt_to_reverses(logits, self.end_slider_ids, self.options.reverse_share,
                                     state.sliders, state.reverses,
                                     None if speed is None else speed(state.cursor) * state.body,
                                     REVERSE_SPAN * (self.options.min_slider_length or 0.0))
                if self.options.long_share and state.beat_ms is not None:
                    tilt_to_long(logits, self.end_slider_ids, self.options.long_share,
                                 state.sliders, state.longs, state.body,
                                 state.beat_ms(state.cursor))
        if walker.state in (State.OBJECT, State.NEW_COMBO) and state.next_accent is not None \
                and state.beat_ms is not None and self.options.accent_margin_beats is not None \
                and not self._slider_fits(state):
            circle_not_slider(logits, self.circle_ids, self.slider_ids)  # it would end on it
        if walker.state in (State.OBJECT, State.NEW_COMBO) and self.options.slider_share:
            tilt_to_sliders(logits, self.circle_ids, self.slider_ids, self.options.slider_share,
                            state.circles + state.sliders, state.sliders)


    def _stack(self, logits: Tensor, state: SequenceState, axis: Category) -> None:
        """A run of 1/4 notes stacked on its circle, or stepping (core.stacks)."""
        if not self.options.stack_share or state.last_position is None:
            return
        x_axis = axis is C.COORD_X
        span = self.vocab.spans[axis]
        steer_stack(logits[span.start: span.stop], self.spacing.x_values if x_axis
                    else self.spacing.y_values, state.last_position[0 if x_axis else 1],
                    x_axis, state, self.options.stack_share)

    def decide_timing(self, logits: Tensor, state: SequenceState) -> None:
        """Leave only the likeliest timing choice in filtered `logits` (V,): when things happen
        is decided, not drawn, while what happens stays the model's to sample. Where a time
        shift may come next (before an object, or in a slider's or spinner's duration), the
        likelier of "a shift" and "anything else" (an object here, the end, an anchor) wins;
        a shift is then the likeliest shift."""
        if state.walker.state not in _TIMED_STATES:
            return
        span = self.shift_span
        probs = torch.softmax(logits, -1)
        shifts = probs[span.start: span.stop]
        moved = float(shifts.sum())
        if moved <= 0.0:
            return
        if moved < 0.5:  # something other than a shift is likelier: sample among those
            logits[span.start: span.stop] = NEG_INF
            return
        best = span.start + int(torch.argmax(shifts))
        keep = float(logits[best])
        logits.fill_(NEG_INF)
        logits[best] = keep

    def _slider_room(self, state: SequenceState) -> float:
        """How much longer (ms) the slider being placed may last before its end leaves the
        playfield: a slider longer than its curve goes on in a straight line past its end
        (osu! extends the path), and a span is the longest its end travels. Unbounded when
        its velocity is unknown."""
        if state.slider_speed is None or len(state.path) < 2:
            return math.inf
        key = (state.curve, state.path, state.segments)
        if key not in self.curves:
            self.curves[key] = curve_reach(state.slider())
        speed = state.slider_speed(state.cursor)
        room = self.curves[key] / speed - state.body if speed > 0 else math.inf
        margin = self.options.accent_margin_beats
        if state.next_accent is not None and state.beat_ms is not None and margin is not None:
            # ... and before the song's next accent (core.accents)
            room = min(room, accent_room(state.next_accent(state.cursor), state.cursor,
                                         state.body, state.beat_ms(state.cursor), margin))
        return room

    def _slider_fits(self, state: SequenceState) -> bool:
        """Whether a slider starting at the cursor fits before the song's next accent: a
        quarter beat and a circle's radius long at least, ending on a tick (core.accents)."""
        speed = state.slider_speed(state.cursor) if state.slider_speed else 0.0
        shortest = (self.options.min_slider_length or 0.0) / speed if speed > 0 else 0.0
        return slider_fits(state.next_accent(state.cursor), state.cursor,
                           state.beat_ms(state.cursor), shortest, state.end_on_tick, self.step,
                           self.options.accent_margin_beats)

    def _earliest(self, state: SequenceState) -> float:
        """Where the next object may start: after the generation start and the last object's
        end (SPINNER_RECOVERY_MS after a spinner's, or DecodingOptions.spinner_recovery_beats
        where the map's beat is known and that is longer); two steps after it when times snap to
        ticks (one step apart, both could snap onto the same tick); and a GAP_LEVELS_MS level
        after the last one's start where one more gap under it would take the sequence's share
        of them over its `gap_shares`."""
        gap = 2 * self.step if state.on_tick is not None else self.step
        if state.after_spinner:
            gap = max(gap, spinner_recovery_ms(self.options, state, state.last_end))
        earliest = max(state.min_start, state.last_end + gap)
        if self.options.gap_shares is not None:
            for level, share, count in zip(GAP_LEVELS_MS, self.options.gap_shares,
                                           state.short_gaps):
                if count + 1 > share * (state.gaps + 1):
                    earliest = max(earliest, state.last_start + level)
        return earliest

    def _fill(self, logits: Tensor, state: SequenceState, earliest: float) -> None:
        """Close the shifts that would leave the music unmapped past the latest start
        `state.fill` gives after the last object's end or the generation start, whichever is
        later (never before `earliest`, where the next object may first start), where an
        object here or a shift landing in time is left to choose."""
        start = state.min_start if state.generation_start is None else state.generation_start
        latest = max(state.fill(max(state.last_end, start)), earliest)
        span = self.shift_span
        count = int(torch.searchsorted(self.shifts, latest - state.cursor, right=True))
        late = logits[span.start + count: span.stop]
        if math.isinf(latest) or not (bool(torch.isfinite(late).any())
                                      or math.isfinite(float(logits[self.eos]))):
            return
        in_time = bool(torch.isfinite(logits[span.start: span.start + count]).any()) or any(
            bool(torch.isfinite(logits[s.start: s.stop]).any()) for s in self.object_ids)
        if in_time:
            late.fill_(NEG_INF)
            if latest < state.window_end:  # nor may the window end here: the next one would
                logits[self.eos] = NEG_INF  # start after a retry's step, past the latest

    def _land_on_ticks(self, logits: Tensor, state: SequenceState, allowed: int,
                       earliest: float) -> None:
        """Close the gaps (up to LANDING_MS) that land before `earliest` or off the ticks."""
        count = min(allowed, self.landing_count)
        if count <= 0:
            return
        landing = state.cursor + self.landings[:count]
        steps = torch.round(landing / self.step).long()
        on = self._ticks(state.on_tick, int(steps[-1]))[steps]
        start = self.shift_span.start
        logits[start: start + count].masked_fill_(~on | (landing < earliest), NEG_INF)

    def _ticks(self, test: Callable[[float], bool], last: int) -> Tensor:
        """Whether each time step 0..last of the window (step * i ms) passes `test` (an on_tick
        of the state): asked once per step and window, not once per gap and decoding step."""
        table = self.tick_tables.get(test, _EMPTY)
        if table.numel() <= last:
            grown = max(last + 1, 2 * table.numel())
            more = [test(i * self.step) for i in range(table.numel(), grown)]
            table = torch.cat([table, torch.tensor(more, dtype=torch.bool)])
            self.tick_tables[test] = table
        return table

    def _tilt(self, shifts: Tensor, bias: float) -> None:
        """Reweigh the gaps by `bias` (density_bias), keeping their total probability (so the
        choice between a gap, an object and the end of the map stays the model's)."""
        allowed = torch.isfinite(shifts)
        if not bool(allowed.any()):
            return
        mass = torch.logsumexp(shifts[allowed], 0)
        tilted = shifts[allowed] - bias * self.log_gaps[allowed]
        shifts[allowed] = tilted - torch.logsumexp(tilted, 0) + mass


_EMPTY = torch.zeros(0, dtype=torch.bool)
_TIMED_STATES = (State.OBJECT, State.SLIDER_TIME, State.SLIDER_BODY, State.SPINNER_TIME,
                 State.SPINNER)
_X_STATES = (State.CIRCLE_X, State.HEAD_X, State.ANCHOR_X)
_Y_STATES = (State.CIRCLE_Y, State.HEAD_Y, State.ANCHOR_Y)
