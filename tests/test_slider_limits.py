"""core.constraints on a slider being placed: its anchors, how long it may run (the playfield,
a path crossing itself, the song's next accent) and where it ends."""

from __future__ import annotations

import math

import pytest
import torch

from core.constraints import MAX_GENERATED_ANCHORS, ConstraintFilter, SequenceState
from core.decoding import DecodingOptions
from core.tokens.grammar import Grammar, GrammarWalker
from core.tokens.vocab import Category, Vocab
from tests.limit_cells import VOCAB, allowed_gaps, coord, feed, open_cells, state


def test_a_slider_ends_where_its_velocity_carries_it():
    x, y = Category.COORD_X, Category.COORD_Y
    seq = state(cursor=0.0)
    seq.slider_speed = lambda t: 0.5  # px per ms
    feed(seq, "START_SLIDER_L", coord(x, 100.0), coord(y, 100.0), "ADD_SLIDER_ANCHOR",
         coord(x, 200.0), coord(y, 100.0), "TIME_SHIFT_29")  # 300 ms: 150 px, past the anchor
    one_span = seq.clone()
    feed(one_span, "END_SLIDER_0R")
    assert one_span.last_position == (250.0, 100.0)  # extended in a straight line
    assert one_span.last_end == 300.0
    feed(seq, "END_SLIDER_1R")  # two spans of 75 px: back at the head
    assert seq.last_position == (100.0, 100.0)


def test_a_sliders_first_anchor_may_not_sit_on_its_head():
    """A line from the head to the head has no length and osu! cannot extend it: the shipped
    starter wrote one (a zero-duration slider) once it learned from human maps."""
    x, y = Category.COORD_X, Category.COORD_Y
    seq = state(cursor=0.0)
    feed(seq, "START_SLIDER_L", coord(x, 336.0), coord(y, 152.0), "ADD_SLIDER_ANCHOR",
         coord(x, 336.0))
    ys = open_cells(seq, y, DecodingOptions())
    head_y = VOCAB.y_values[VOCAB.y_index(152.0)]
    assert head_y not in ys and len(ys) == VOCAB.spans[y].size - 1 - sum(
        not 0 <= round(v) <= 384 for v in VOCAB.y_values)
    beside = seq.clone()  # another x: the head's y is fine
    beside.pending_x = VOCAB.x_values[VOCAB.x_index(340.0)]
    assert head_y in open_cells(beside, y, DecodingOptions())
    # a second anchor may repeat a point (a red anchor): the path already has extent
    feed(seq, coord(y, 200.0), "ADD_SLIDER_ANCHOR", coord(x, 336.0))
    assert VOCAB.y_values[VOCAB.y_index(200.0)] in open_cells(seq, y, DecodingOptions())


def test_a_generated_slider_ends_after_max_generated_anchors():
    """The grammar lets real maps' sliders have up to 64 anchors; a generated one is ended at
    MAX_GENERATED_ANCHORS (16; 99.7% of the corpus's sliders have no more): a model that did not
    end its path had scattered 64 anchors over the playfield."""
    x, y = Category.COORD_X, Category.COORD_Y
    seq = state(cursor=0.0)
    feed(seq, "START_SLIDER_B", coord(x, 100.0), coord(y, 100.0))
    anchor = VOCAB.token("ADD_SLIDER_ANCHOR")
    for n in range(MAX_GENERATED_ANCHORS):
        logits = torch.zeros(len(VOCAB))
        ConstraintFilter(VOCAB, DecodingOptions()).apply(logits, seq)
        assert math.isfinite(float(logits[anchor])), n
        feed(seq, "ADD_SLIDER_ANCHOR", coord(x, 100.0 + 16 * (n + 1)), coord(y, 120.0))
    logits = torch.zeros(len(VOCAB))
    ConstraintFilter(VOCAB, DecodingOptions()).apply(logits, seq)
    assert not math.isfinite(float(logits[anchor]))
    moves_on = [VOCAB.spans[c] for c in (Category.TIME_SHIFT, Category.END_SLIDER)]
    assert any(bool(torch.isfinite(logits[s.start: s.stop]).any()) for s in moves_on)


def test_a_slider_may_not_run_on_past_the_playfield():
    x, y = Category.COORD_X, Category.COORD_Y
    seq = state(cursor=0.0)
    seq.slider_speed = lambda t: 1.0  # px per ms
    # a line from x=400 to x=480, heading right: 112 px to the edge at 512
    feed(seq, "START_SLIDER_L", coord(x, 400.0), coord(y, 200.0), "ADD_SLIDER_ANCHOR",
         coord(x, 480.0), coord(y, 200.0))
    gaps = allowed_gaps(seq)
    assert max(gaps) == 110.0  # 112 ms at 1 px/ms, in 10 ms steps
    feed(seq, "TIME_SHIFT_4")  # 50 ms in: 62 ms left
    assert max(allowed_gaps(seq)) == 60.0
    feed(seq, "TIME_SHIFT_5")  # 110 ms in: no more time, only the end
    assert allowed_gaps(seq) == {}
    # with no velocity known there is no such limit
    free = state(cursor=0.0)
    feed(free, "START_SLIDER_L", coord(x, 400.0), coord(y, 200.0), "ADD_SLIDER_ANCHOR",
         coord(x, 480.0), coord(y, 200.0))
    assert max(allowed_gaps(free)) > 1000.0


def test_a_slider_may_not_play_on_past_where_its_path_crosses_itself():
    """The starter drew a 4-star map's 800 px slider as 18 Bezier anchors strewn over the
    playfield, a knot (QA): a slider now ends before its path first crosses itself."""
    x, y = Category.COORD_X, Category.COORD_Y
    seq = state(cursor=0.0)
    seq.slider_speed = lambda t: 1.0  # px per ms
    # 100 px right, 100 px down, 50 back left, then up through the first leg: the fourth
    # segment, which starts 250 px in, crosses the first
    feed(seq, "START_SLIDER_L", coord(x, 100.0), coord(y, 100.0))
    for px, py in ((200.0, 100.0), (200.0, 200.0), (150.0, 200.0), (150.0, 40.0)):
        feed(seq, "ADD_SLIDER_ANCHOR", coord(x, px), coord(y, py))
    assert 240.0 <= max(allowed_gaps(seq)) <= 250.0  # up to the crossing segment (10 ms steps)
    lasso = state(cursor=0.0)
    lasso.slider_speed = lambda t: 1.0
    feed(lasso, "START_SLIDER_L", coord(x, 100.0), coord(y, 100.0))
    for px, py in ((200.0, 100.0), (200.0, 200.0), (150.0, 200.0), (150.0, 140.0)):
        feed(lasso, "ADD_SLIDER_ANCHOR", coord(x, px), coord(y, py))
    assert max(allowed_gaps(lasso)) > 400.0  # no crossing: on to the playfield's edge


def test_a_slider_ends_before_the_next_accent_and_none_starts_too_near_it():
    """The loudest beats (core.accents) had sat on slider tails and repeats 6-21% of the time
    and inside bodies up to 10% (QA: 18 of a map's 51 crash cymbals unclicked). A slider ends a
    quarter beat or more before the next accent, and where a quarter-beat slider would not fit
    in front of it, a circle comes instead."""
    x, y = Category.COORD_X, Category.COORD_Y
    beat = 400.0
    options = DecodingOptions(accent_margin_beats=0.25)

    def seq(cursor: float) -> SequenceState:
        s = state(cursor=cursor)
        s.slider_speed = lambda t: 0.3  # px per ms: the line below runs 412 px, 1373 ms
        s.beat_ms = lambda t: beat
        s.next_accent = lambda t: 1000.0 if t + 15.0 < 1000.0 else math.inf
        return s

    slider = seq(0.0)
    feed(slider, "START_SLIDER_L", coord(x, 100.0), coord(y, 200.0), "ADD_SLIDER_ANCHOR",
         coord(x, 400.0), coord(y, 200.0))
    assert max(allowed_gaps(slider, options)) == 1000.0 - beat / 4  # its end at 900 at most
    assert max(allowed_gaps(slider)) == 1370.0  # no margin asked: no accent rule
    on_it = seq(1000.0)  # one starting on the accent is not held back by it
    feed(on_it, "START_SLIDER_L", coord(x, 100.0), coord(y, 200.0), "ADD_SLIDER_ANCHOR",
         coord(x, 400.0), coord(y, 200.0))
    assert max(allowed_gaps(on_it, options)) == 1370.0

    def kinds(cursor: float) -> tuple[bool, bool]:
        logits = torch.zeros(len(VOCAB))
        ConstraintFilter(VOCAB, options).apply(logits, seq(cursor))
        circles, sliders = (VOCAB.spans[c] for c in (Category.PLACE_CIRCLE,
                                                   Category.START_SLIDER))
        return (bool(torch.isfinite(logits[circles.start: circles.stop]).any()),
                bool(torch.isfinite(logits[sliders.start: sliders.stop]).any()))

    assert kinds(800.0) == (True, True)  # 100 ms of slider fit before 900
    assert kinds(850.0) == (True, False)  # 50 ms would not: a circle

    def masses(cursor: float) -> tuple[float, float]:
        logits = torch.zeros(len(VOCAB))
        ConstraintFilter(VOCAB, options).apply(logits, seq(cursor))
        objects = [VOCAB.spans[c] for c in (Category.PLACE_CIRCLE, Category.START_SLIDER)]
        shifts = VOCAB.spans[Category.TIME_SHIFT]
        return (float(torch.logsumexp(torch.cat([logits[s.start: s.stop] for s in objects]), 0)),
                float(torch.logsumexp(logits[shifts.start: shifts.stop], 0)))

    # the sliders' chance goes to the circles: placing an object against moving on is the same
    assert masses(850.0)[0] == pytest.approx(masses(800.0)[0])


def test_an_arc_that_would_leave_the_playfield_becomes_a_bezier():
    from core.beatmap.model import Slider
    from core.playfield import keep_arc_inside

    doubling_back = Slider(x=184, y=300, time=0, curve_type="P", points=[(188, 20), (200, 328)])
    keep_arc_inside(doubling_back)
    assert doubling_back.curve_type == "B"
    gentle = Slider(x=100, y=200, time=0, curve_type="P", points=[(150, 150), (200, 200)])
    keep_arc_inside(gentle)
    assert gentle.curve_type == "P"


def test_a_curved_slider_ends_on_its_curve_not_its_anchors_polyline():
    from core.beatmap.curves import slider_path
    from core.beatmap.model import Slider

    x, y = Category.COORD_X, Category.COORD_Y
    seq = state(cursor=0.0)
    seq.slider_speed = lambda t: 1.0
    curve = slider_path(Slider(x=100, y=200, time=0, curve_type="B",
                               points=[(200, 100), (300, 200)]), 14).distance  # ~230 px
    feed(seq, "START_SLIDER_B", coord(x, 100.0), coord(y, 200.0), "ADD_SLIDER_ANCHOR",
         coord(x, 200.0), coord(y, 100.0), "ADD_SLIDER_ANCHOR", coord(x, 300.0),
         coord(y, 200.0), f"TIME_SHIFT_{round(curve / 10) - 1}", "END_SLIDER_0R")
    assert math.dist(seq.last_position, (300.0, 200.0)) < 6.0  # the polyline would say ~45 px off


def test_in_the_seed_language_a_slider_runs_its_whole_curve():
    from core.tokens.vocab import SEED

    vocab = Vocab(SEED)
    walker = GrammarWalker(Grammar(SEED))
    walker.step(Category.SOS)
    seq = SequenceState(walker, vocab, slider_speed=lambda t: 0.5)

    def at(axis: Category, value: float) -> int:
        index = vocab.x_index(value) if axis is Category.COORD_X else vocab.y_index(value)
        return vocab.id(axis, index)

    head = (vocab.x_values[vocab.x_index(100.0)], vocab.y_values[vocab.y_index(100.0)])
    tail = (vocab.x_values[vocab.x_index(300.0)], head[1])
    for token in (vocab.token("START_SLIDER_L"), at(Category.COORD_X, 100.0),
                  at(Category.COORD_Y, 100.0), vocab.token("ADD_SLIDER_ANCHOR"),
                  at(Category.COORD_X, 300.0), at(Category.COORD_Y, 100.0),
                  vocab.token("END_SLIDER_0R")):
        seq.step(token)
    length = tail[0] - head[0]
    assert seq.last_end == pytest.approx(length / 0.5, abs=0.1)  # not its start
    assert seq.last_position == pytest.approx(tail, abs=0.5)


def test_a_path_changes_curve_type_midway_only_where_the_file_can_say_so():
    """A letter inside a path (`L|392:372|P|72:304|208:336`) is lazer's v128; stable reads a v14
    file's first letter for the whole slider and draws another shape. A map written as v14 gets
    none (one of 1,136 generated sliders had one)."""
    x, y = Category.COORD_X, Category.COORD_Y
    allowed = {}
    for segments in (True, False):
        seq = state(cursor=0.0)
        seq.segments_allowed = segments
        feed(seq, "START_SLIDER_L", coord(x, 400.0), coord(y, 360.0), "ADD_SLIDER_ANCHOR",
             coord(x, 392.0), coord(y, 372.0))
        logits = torch.zeros(len(VOCAB))
        ConstraintFilter(VOCAB, DecodingOptions()).apply(logits, seq)
        span = VOCAB.spans[Category.START_SLIDER]
        allowed[segments] = bool(torch.isfinite(logits[span.start: span.stop]).any())
        assert math.isfinite(float(logits[VOCAB.token("ADD_SLIDER_ANCHOR")]))
    assert allowed == {True: True, False: False}
