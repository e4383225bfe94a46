"""core.anchor_turns: a slider's anchors do not turn its control polygon back (hooks, cusps)."""

from __future__ import annotations

import math

from core.constraints import SequenceState
from core.decoding import DecodingOptions
from core.tokens.grammar import Grammar, GrammarWalker
from tests.limit_cells import VOCAB, X, Y, at_x, open_cells


def drawing(*points: tuple[float, float]) -> SequenceState:
    """A Bezier slider from the first point with the others as anchors, about to place one
    more."""
    walker = GrammarWalker(Grammar(VOCAB.config))
    seq = SequenceState(walker, VOCAB)
    seq.step(VOCAB.token("SOS"))
    seq.step(VOCAB.token("START_SLIDER_B"))
    for i, (x, y) in enumerate(points):
        if i:
            seq.step(VOCAB.token("ADD_SLIDER_ANCHOR"))
        seq.step(VOCAB.spans[X].start + VOCAB.x_index(x))
        seq.step(VOCAB.spans[Y].start + VOCAB.y_index(y))
    seq.step(VOCAB.token("ADD_SLIDER_ANCHOR"))
    return seq


def test_the_next_anchor_turns_at_most_120_degrees_from_the_last_segment():
    options = DecodingOptions()
    seq = drawing((100.0, 192.0), (200.0, 192.0))  # the last segment goes right
    xs = open_cells(seq, X, options)
    # back to the left only as far as a turn of 120 degrees reaches on the playfield: 192 px
    # up or down allows 192 / tan(60) = 111 px back
    assert 80.0 <= min(xs) <= 95.0
    back = at_x(seq, 150.0)  # ~50 px back: at least tan(60) as far up or down
    ys = open_cells(back, Y, options)
    least = math.sqrt(3) * (200.0 - back.pending_x)
    assert ys and all(abs(y - 192.0) >= least - 2.0 for y in ys)
    assert any(y < 120 for y in ys) and any(y > 264 for y in ys)
    # forward, anything on the playfield
    assert len(open_cells(at_x(seq, 300.0), Y, options)) == len(
        [y for y in VOCAB.y_values if 0 <= round(y) <= 384])


def test_a_red_anchor_is_a_corner_left_free():
    seq = drawing((100.0, 192.0), (200.0, 192.0), (200.0, 192.0))
    assert min(open_cells(seq, X, DecodingOptions())) <= 2.0
    assert math.isfinite(min(open_cells(at_x(seq, 10.0), Y, DecodingOptions())))
