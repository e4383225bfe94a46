"""What the decoding limits leave open (a head's coordinates, the gaps) and sequences to ask
them of, for the tests of core.constraints' and core.spacing_limit's rules (test_decoding,
test_slider_limits, test_map_craft, test_streams)."""

from __future__ import annotations

import math

import torch

from core.constraints import ConstraintFilter, SequenceState
from core.decoding import DecodingOptions
from core.tokens.grammar import Grammar, GrammarWalker
from core.tokens.vocab import DEFAULT, Category, Vocab

VOCAB = Vocab(DEFAULT)
X, Y = Category.COORD_X, Category.COORD_Y


def at_x(seq: SequenceState, x: float) -> SequenceState:
    """A copy of `seq` with its head's x chosen: y comes next."""
    chosen = seq.clone()
    chosen.step(VOCAB.spans[X].start + VOCAB.x_index(x))
    return chosen


def open_cells(seq: SequenceState, axis: Category, options: DecodingOptions) -> list[float]:
    """The coordinate values the filter leaves open on `axis` for `seq`'s next token."""
    logits = torch.zeros(len(VOCAB))
    ConstraintFilter(VOCAB, options).apply(logits, seq)
    span = VOCAB.spans[axis]
    values = VOCAB.x_values if axis is X else VOCAB.y_values
    return [values[j] for j in range(span.size) if math.isfinite(float(logits[span.start + j]))]


def state(cursor: float, on_tick=None, last_end: float = -math.inf) -> SequenceState:
    """A sequence at `cursor` with nothing placed yet (or one ended at `last_end`)."""
    walker = GrammarWalker(Grammar(VOCAB.config))
    walker.step(Category.SOS)
    return SequenceState(walker, VOCAB, cursor=cursor, last_end=last_end, window_end=16_000.0,
                         on_tick=on_tick)


def allowed_gaps(seq: SequenceState, options: DecodingOptions | None = None) -> dict:
    """The time shifts (ms) the filter leaves open for `seq`'s next token, and their logits."""
    logits = torch.zeros(len(VOCAB))
    ConstraintFilter(VOCAB, options or DecodingOptions()).apply(logits, seq)
    span = VOCAB.spans[Category.TIME_SHIFT]
    return {VOCAB.shift_values_ms[j]: float(logits[span.start + j])
            for j in range(span.stop - span.start) if math.isfinite(float(logits[span.start + j]))}


def feed(seq: SequenceState, *names: str) -> None:
    """Step `seq` through tokens named as the vocabulary names them."""
    for name in names:
        seq.step(VOCAB.token(name))


def coord(axis: Category, value: float) -> str:
    """The name of the token placing `value` on `axis`."""
    index = VOCAB.x_index(value) if axis is Category.COORD_X else VOCAB.y_index(value)
    return f"{axis.value}_{index}"


def placing_after(gap_ms: float, last: tuple[float, float] = (256.0, 192.0)) -> SequenceState:
    """A sequence about to place a circle `gap_ms` after the last object ended at `last`."""
    walker = GrammarWalker(Grammar(VOCAB.config))
    walker.step(Category.SOS)
    seq = SequenceState(walker, VOCAB, cursor=1000.0 + gap_ms, last_end=1000.0,
                        last_start=1000.0, last_position=last, gap=gap_ms)
    seq.step(VOCAB.token("PLACE_CIRCLE"))
    return seq
