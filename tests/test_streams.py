"""core.streams and the stream rule in core.spacing_limit: streams that step a little and flow."""

from __future__ import annotations

import math

import pytest

from core.beatmap.model import Beatmap, Circle, Slider
from core.constraints import SequenceState
from core.decoding import DecodingOptions
from core.streams import (
    TURN_SHARE,
    observed_stream_step,
    observed_stream_turns,
    stream_step_for_stars,
    stream_steps,
    stream_turns_for_stars,
)
from core.tokens.grammar import Grammar, GrammarWalker
from core.tokens.vocab import Category
from tests.limit_cells import VOCAB, X, Y, at_x, open_cells


def stepping(heading: tuple[float, float] | None, gap: float = 100.0) -> SequenceState:
    """A sequence about to place a circle `gap` ms after a circle at (256, 192), which came
    `heading` from the one before, also `gap` ms earlier."""
    walker = GrammarWalker(Grammar(VOCAB.config))
    walker.step(Category.SOS)
    seq = SequenceState(walker, VOCAB, cursor=1000.0, last_end=1000.0 - gap,
                        last_start=1000.0 - gap, last_position=(256.0, 192.0),
                        last_head=(256.0, 192.0), last_was_circle=True)
    if heading is not None:
        seq.last_move, seq.last_heading = (gap, math.hypot(*heading)), heading
    seq.step(VOCAB.token("PLACE_CIRCLE"))
    return seq


def test_a_streams_step_is_short_and_does_not_turn_back():
    options = DecodingOptions(spacing=2.0, stream_step=40.0, stream_turns=0.0)  # ceiling 200 px
    seq = stepping((30.0, 0.0))  # the last step went right
    xs = open_cells(seq, X, options)
    assert min(xs) == 256.0 and max(xs) == 296.0  # within 40 px, and not back to the left
    ys = open_cells(at_x(seq, 256.0), Y, options)  # straight up or down: a right angle
    assert min(ys) == 152.0 and max(ys) == 232.0
    ys = open_cells(at_x(stepping((0.0, -30.0)), 256.0), Y, options)  # the last went up
    assert max(ys) == 192.0 and min(ys) == 152.0
    # no step before: any direction; a slower rhythm (a half beat at 150 BPM): the ceiling's
    assert min(open_cells(stepping(None), X, options)) == 216.0
    assert min(open_cells(stepping((30.0, 0.0), gap=200.0), X, options)) == 0.0  # 400 px
    assert min(open_cells(stepping((30.0, 0.0)), X, DecodingOptions(spacing=2.0))) == 56.0
    # an infinite step (5-6 stars): as far as the ceiling reaches, but still not back
    free_step = open_cells(stepping((30.0, 0.0)), X, DecodingOptions(
        spacing=2.0, stream_step=math.inf, stream_turns=0.0))
    assert min(free_step) == 256.0 and max(free_step) == 456.0
    after_slider = stepping((30.0, 0.0))  # a slider ended there: a jump away is the pattern
    after_slider.after_circle = False
    assert min(open_cells(after_slider, X, options)) == 56.0


def test_from_6_stars_a_share_of_a_streams_steps_may_turn_back():
    """Left free from 6 stars, kiai's streams turned back on 56% of steps (ranked maps of 5.5+
    stars 28%): DecodingOptions.stream_turns caps the share over the map so far."""
    options = DecodingOptions(spacing=2.0, stream_turns=0.3)
    seq = stepping((30.0, 0.0))
    seq.turnable, seq.stream_turns = 9, 2  # a third turn in 10 steps: within 0.3
    assert min(open_cells(seq, X, options)) == 56.0  # back to the left too
    seq.stream_turns = 3  # a fourth would not be
    assert min(open_cells(seq, X, options)) == 256.0
    assert min(open_cells(seq, X, DecodingOptions(spacing=2.0))) == 56.0  # None: free
    # counted as the map is decoded: a step right, then one back
    walker = GrammarWalker(Grammar(VOCAB.config))
    walker.step(Category.SOS)
    counted = SequenceState(walker, VOCAB, cursor=0.0)
    for token in ("PLACE_CIRCLE", f"COORD_X_{VOCAB.x_index(100.0)}",
                  f"COORD_Y_{VOCAB.y_index(100.0)}", "TIME_SHIFT_9", "PLACE_CIRCLE",
                  f"COORD_X_{VOCAB.x_index(140.0)}", f"COORD_Y_{VOCAB.y_index(100.0)}",
                  "TIME_SHIFT_9", "PLACE_CIRCLE", f"COORD_X_{VOCAB.x_index(100.0)}",
                  f"COORD_Y_{VOCAB.y_index(100.0)}"):
        counted.step(VOCAB.token(token))
    assert (counted.turnable, counted.stream_turns) == (1, 1)


def timed(objects) -> Beatmap:
    return Beatmap(hit_objects=objects)


def test_a_maps_streams_are_read_for_its_continuation():
    zigzag = [Circle(x=100 + 20 * (i % 2), y=100, time=1000.0 + 100 * i) for i in range(20)]
    steps, turns, _ = stream_steps(timed(zigzag))
    assert steps == [20.0] * 19 and all(turns)
    assert observed_stream_step(timed(zigzag)) is None  # it turns back: left free
    assert observed_stream_turns(timed(zigzag)) == 1.0  # ... as often as it does
    line = [Circle(x=100 + 25 * i, y=100 + 5 * (i % 3), time=1000.0 + 100 * i)
            for i in range(15)]
    assert observed_stream_step(timed(line)) == pytest.approx(math.hypot(25, 10))
    assert observed_stream_step(timed(line[:12])) is None  # 11 steps: too few to tell
    # from a slider's end the next head often comes as soon: not a stream's step
    slider = Slider(x=100, y=100, time=1000.0, points=[(200.0, 100.0)], length=100.0)
    steps, _, _ = stream_steps(timed([slider, Circle(x=300, y=300, time=1050.0)]))
    assert steps == []


def test_the_limit_by_stars():
    assert stream_step_for_stars(2.0, 80.0) == pytest.approx(40.0)
    assert stream_step_for_stars(4.0, 80.0) == pytest.approx(80.0 * 0.6)
    assert stream_step_for_stars(5.0, 80.0) == math.inf  # any step, not turning back
    assert stream_step_for_stars(6.0, 80.0) is None  # free: see core.streams
    assert stream_turns_for_stars(5.9) == 0.0 and stream_turns_for_stars(6.0) == TURN_SHARE
