"""core.constraints on their own: where gaps may land, the density tilt, and EOS."""

from __future__ import annotations

import math

import pytest
import torch

from core.beatmap.model import TimingPoint
from core.beatmap.ticks import TickGrid, divisors_for
from core.constraints import (
    LANDING_MS,
    SPINNER_RECOVERY_MS,
    ConstraintFilter,
    SequenceState,
)
from core.decoding import DecodingOptions, _settled
from core.map_rules import recovery_beats_for_stars
from core.tokens.vocab import Category
from tests.limit_cells import VOCAB, allowed_gaps, coord, feed, open_cells, state

TICKS = TickGrid([TimingPoint(time=103.0, beat_length=400.0)], divisors_for(4))  # 150 BPM


def on_tick(t: float) -> bool:
    return TICKS.snap(t, 6.0) is not None


def test_with_timing_every_gap_lands_on_a_tick():
    seq = state(cursor=200.0, on_tick=on_tick, last_end=200.0)
    gaps = allowed_gaps(seq)
    short = [g for g in gaps if g <= LANDING_MS]
    assert short, "no gap may land anywhere"
    assert all(on_tick(200.0 + g) for g in short)
    assert min(short) >= 20.0  # nothing lands 10 ms after an object: both could snap alike
    # ticks at 303, 403, ... ms: 300 is 3 ms from one (it snaps there), 310 is 7 ms off
    assert 100.0 in gaps and 110.0 not in gaps and 150.0 not in gaps and 200.0 in gaps
    # ... longer gaps (breaks) need not: a fine gap after them lands on a tick
    assert any(g > LANDING_MS for g in gaps)


def test_after_a_spinner_the_player_gets_time_to_find_the_cursor():
    """Objects had followed a spinner's end within 8 ms (4 of 16 generated spinners under a
    beat): the next one comes SPINNER_RECOVERY_MS after it at the earliest."""
    after_circle = state(cursor=200.0, on_tick=on_tick, last_end=200.0)
    after_spinner = state(cursor=200.0, on_tick=on_tick, last_end=200.0)
    after_spinner.after_spinner = True
    assert min(allowed_gaps(after_circle)) < SPINNER_RECOVERY_MS
    assert min(allowed_gaps(after_spinner)) >= SPINNER_RECOVERY_MS
    # a Normal's two beats where the beat is known (a new 2-star map had left one, QA)
    after_spinner.beat_ms = lambda _t: 300.0
    normal = DecodingOptions(spinner_recovery_beats=recovery_beats_for_stars(2.2))
    assert recovery_beats_for_stars(1.5) == 4 and recovery_beats_for_stars(2.2) == 2
    assert recovery_beats_for_stars(3.0) == 1 and recovery_beats_for_stars(5.0) == 0
    assert min(allowed_gaps(after_spinner, normal)) >= 600.0 - 10
    assert min(allowed_gaps(after_spinner, normal)) < 700.0
    # and the flag is the sequence's own: set by a spinner's end, cleared by the next object
    seq = state(cursor=0.0)
    feed(seq, "PLACE_SPINNER", "TIME_SHIFT_50", "END_SPINNER")
    assert seq.after_spinner
    feed(seq, "TIME_SHIFT_50", "PLACE_CIRCLE")
    assert not seq.after_spinner


def test_without_timing_any_gap_goes():
    gaps = allowed_gaps(state(cursor=200.0))
    assert {10.0, 20.0, 30.0, 1990.0} <= set(gaps)


def test_the_density_tilt_keeps_the_gaps_total_probability():
    seq = state(cursor=200.0)
    plain = torch.tensor(list(allowed_gaps(seq).values()))
    tilted = allowed_gaps(seq, DecodingOptions(density_bias=1.0))
    values = torch.tensor(list(tilted.values()))
    assert torch.isclose(torch.logsumexp(values, 0), torch.logsumexp(plain, 0))
    assert abs((tilted[100.0] - tilted[200.0]) - 1.0) < 1e-5  # half the gap: twice as likely


class _FixedModel:
    """Stands in for MapModel: the same logits at every step (EOS likely, not the likeliest)."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits

    def new_cache(self):
        return None

    def decoder(self, tokens, audio, difficulty, cache=None, times=None):
        return self.logits.expand(tokens.shape[0], tokens.shape[1], -1).clone()  # fresh, as
        # a model's are: the filter edits them in place


def test_the_end_of_a_window_is_never_a_lucky_draw():
    from core.decoding import decode_window

    logits = torch.full((len(VOCAB),), -30.0)
    eos = VOCAB.id(Category.EOS)
    shift = VOCAB.spans[Category.TIME_SHIFT].start + 49  # a 500 ms gap
    logits[eos], logits[shift] = 0.0, 0.4  # EOS has 40% of the probability, the gap 60%
    model = _FixedModel(logits)
    sos = [VOCAB.id(Category.SOS)]
    lengths = []
    for seed in range(20):
        seq = state(cursor=0.0)
        result = decode_window(model, VOCAB, None, None, sos, seq,
                               DecodingOptions(seed=seed, max_tokens=6, top_p=None),
                               torch.Generator().manual_seed(seed))
        lengths.append(len(result.tokens))
    assert lengths == [6] * 20  # never ended early: EOS was never likelier than going on
    logits[eos] = 1.0  # now it is (62%): the window ends at once, whatever the draw
    result = decode_window(model, VOCAB, None, None, sos, state(cursor=0.0),
                           DecodingOptions(seed=0, max_tokens=6, top_p=None),
                           torch.Generator().manual_seed(0))
    assert result.finished and result.tokens == []


def test_the_spacing_limit_keeps_a_jump_within_its_reach():
    x, y = Category.COORD_X, Category.COORD_Y
    seq = state(cursor=0.0)
    feed(seq, "PLACE_CIRCLE", coord(x, 200.0), coord(y, 200.0), "TIME_SHIFT_19")  # 200 ms on
    assert seq.last_position == (200.0, 200.0) and seq.cursor == 200.0
    options = DecodingOptions(spacing=0.5)  # 100 px in 200 ms
    feed(seq, "PLACE_CIRCLE")
    xs = open_cells(seq, x, options)
    assert min(xs) == 100.0 and max(xs) == 300.0
    assert len(open_cells(seq, x, DecodingOptions())) > len(xs)  # no limit: the playfield
    feed(seq, coord(x, 260.0))  # 60 px to the right leaves 80 px up or down
    ys = open_cells(seq, y, options)
    assert min(ys) == 120.0 and max(ys) == 280.0


def test_a_soft_passage_is_mapped_calmer():
    """In a soft passage (core.music_presence.soft_passages: an intro, a breakdown) a new map
    keeps its jumps smaller and its gaps longer (QA: a quiet intro at the map's full density
    with 100-150 px half-beat jumps, 300 px jumps in a breakdown)."""
    x = Category.COORD_X
    options = DecodingOptions(spacing=0.5, soft_spacing=0.6, soft_bias=-1.5)
    seq = state(cursor=0.0)
    feed(seq, "PLACE_CIRCLE", coord(x, 200.0), coord(Category.COORD_Y, 200.0),
         "TIME_SHIFT_19")  # 200 ms on: 100 px of reach
    loud, soft = seq.clone(), seq.clone()
    soft.soft = lambda t: True
    for s in (loud, soft):
        feed(s, "PLACE_CIRCLE")
    assert (min(open_cells(loud, x, options)), max(open_cells(loud, x, options))) \
        == (100.0, 300.0)
    assert (min(open_cells(soft, x, options)), max(open_cells(soft, x, options))) \
        == (140.0, 260.0)  # 60 px
    calm = state(cursor=0.0)
    calm.soft = lambda t: True

    def chance_of_a_beat_or_more(s: SequenceState) -> float:
        gaps = allowed_gaps(s, options)
        probs = torch.softmax(torch.tensor(list(gaps.values())), 0)
        return float(sum(p for g, p in zip(gaps, probs) if g >= 400.0))

    assert chance_of_a_beat_or_more(calm) > 1.2 * chance_of_a_beat_or_more(state(cursor=0.0))


def test_distance_snap_holds_across_rhythms_where_asked():
    """DecodingOptions.snap_floor: a move keeps at least that share of the ceiling's reach for
    its time, so a beat's move is about twice a half beat's (QA: a 2-star map spaced 1/1 gaps
    95 px and 1/2 gaps 90)."""
    x, y = Category.COORD_X, Category.COORD_Y
    seq = state(cursor=0.0)
    seq.beat_ms = lambda t: 400.0
    feed(seq, "PLACE_CIRCLE", coord(x, 200.0), coord(y, 200.0), "TIME_SHIFT_39")  # a beat on
    feed(seq, "PLACE_CIRCLE")
    snapped = DecodingOptions(spacing=0.25, snap_floor=0.8)  # 100 px in 400 ms
    xs = open_cells(seq, x, snapped)
    assert min(xs) == 100.0 and max(xs) == 300.0  # a y within the ring for every x ...
    feed(seq, coord(x, 200.0))  # ... but straight below or above it, 80 to 100 px away
    ys = open_cells(seq, y, snapped)
    assert all(80.0 <= abs(v - 200.0) <= 100.0 for v in ys) and ys
    assert 200.0 in open_cells(seq, y, DecodingOptions(spacing=0.25))  # no floor: a stack
    far = state(cursor=0.0)  # over a longer pause than SNAP_BEATS: no floor
    far.beat_ms = lambda t: 400.0
    feed(far, "PLACE_CIRCLE", coord(x, 200.0), coord(y, 200.0), "TIME_SHIFT_99",
         "PLACE_CIRCLE", coord(x, 200.0))
    assert 200.0 in open_cells(far, y, snapped)


def test_the_spacing_limit_gives_way_where_it_would_leave_nothing():
    seq = state(cursor=0.0)
    seq.last_position, seq.last_end = (-300.0, 200.0), -10.0  # far off the playfield
    feed(seq, "PLACE_CIRCLE")
    xs = open_cells(seq, Category.COORD_X, DecodingOptions(spacing=0.1))
    assert xs and min(xs) >= 0.0  # measured from the playfield's edge, not given up
    assert max(xs) <= 4.0


def test_a_window_that_runs_out_of_tokens_keeps_only_whole_objects():
    from core.decoding import whole_objects

    x, y = Category.COORD_X, Category.COORD_Y
    names = ["TIME_SHIFT_9", "PLACE_CIRCLE", coord(x, 100.0), coord(y, 100.0), "TIME_SHIFT_9",
             "PLACE_CIRCLE", coord(x, 200.0)]  # the second circle has no y yet
    tokens = [VOCAB.token(n) for n in names]
    assert whole_objects(tokens, VOCAB) == tokens[:5]
    assert whole_objects(tokens[:4], VOCAB) == tokens[:4]


def test_when_things_happen_is_decided_while_what_happens_is_drawn():
    from core.decoding import decode_window

    span = VOCAB.spans[Category.TIME_SHIFT]
    short, long = span.start + 29, span.start + 49  # 300 and 500 ms gaps
    logits = torch.full((len(VOCAB),), -30.0)
    logits[short], logits[long] = 0.3, 0.4  # the gaps are nearly as likely as each other
    logits[VOCAB.id(Category.NEW_COMBO)] = logits[VOCAB.id(Category.PLACE_CIRCLE)] = 1.0
    model = _FixedModel(logits)
    sos = [VOCAB.id(Category.SOS)]

    def run(seed: int, draw_gaps: bool) -> list[int]:
        options = DecodingOptions(seed=seed, max_tokens=60, top_p=None, draw_gaps=draw_gaps)
        return decode_window(model, VOCAB, None, None, sos, state(cursor=0.0), options,
                             torch.Generator().manual_seed(seed)).tokens

    decided = [run(seed, draw_gaps=False) for seed in range(8)]
    shifts = {t for tokens in decided for t in tokens if span.start <= t < span.stop}
    assert shifts == {long}  # every gap is the likeliest one, whatever the seed
    combos = {tokens.count(VOCAB.id(Category.NEW_COMBO)) for tokens in decided}
    assert len(combos) > 1  # ... while new combos (what goes there) are still drawn
    drawn = {t for seed in range(8) for t in run(seed, draw_gaps=True)}
    assert short in drawn and long in drawn


def test_an_object_is_placed_where_objects_are_likelier_than_moving_on():
    seq = state(cursor=500.0, last_end=0.0)  # objects may start here
    logits = torch.full((len(VOCAB),), -30.0)
    circle, shift = VOCAB.id(Category.PLACE_CIRCLE), VOCAB.spans[Category.TIME_SHIFT].start + 19
    slider = VOCAB.spans[Category.START_SLIDER].start
    logits[circle], logits[slider], logits[shift] = 0.0, -0.5, -0.2  # a shift: 34%
    filt = ConstraintFilter(VOCAB, DecodingOptions())
    filt.apply(logits, seq)
    filt.decide_timing(logits, seq)
    assert not math.isfinite(float(logits[shift]))
    assert float(logits[circle] - logits[slider]) == pytest.approx(0.5)  # drawn as the model says
    logits[circle], logits[slider], logits[shift] = -1.0, -1.5, 0.0  # a shift: 64%
    filt.decide_timing(logits, seq)
    assert torch.isfinite(logits).sum() == 1 and math.isfinite(float(logits[shift]))


def test_beam_search_waits_for_live_hypotheses_that_can_still_win():
    # (normalised score, tokens) finished; (score, tokens, state, row) live
    early = [(-10.3, []), (-4.0, [5])]  # an empty window, one object: poor per token
    live = [(-2.0 * 40, list(range(40)), None, 0)]  # -2 a token over 40 tokens
    assert not _settled(early, live, width=2, length_penalty=1.0)
    assert _settled(early, [(-12.0 * 40, list(range(40)), None, 0)], width=2, length_penalty=1.0)
    assert not _settled(early[:1], [(-50.0 * 40, list(range(40)), None, 0)], width=2,
                        length_penalty=1.0)  # fewer than `width` finished
