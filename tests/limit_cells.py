"""What the decoding limits leave open for a head's coordinates, for the tests of
core.spacing_limit's rules (test_map_craft, test_streams)."""

from __future__ import annotations

import math

import torch

from core.constraints import ConstraintFilter, SequenceState
from core.decoding import DecodingOptions
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
