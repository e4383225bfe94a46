"""Sliders that go back (core.object_mix's reverse floor): ranked maps send 14-27% of their
sliders back up to 5.5 stars; the starter model, trained on synthetic maps, sent none."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from companion.mapping import Target, decoding_options, generate_beatmap
from core.beatmap.model import Beatmap, Circle, Slider
from core.generate import _follow_earlier
from core.object_mix import observed_reverse_share, reverse_share_for_stars, tilt_to_reverses
from core.sequence_state import SequenceState
from core.song_input import resolve
from core.tokens.grammar import Grammar, GrammarWalker
from core.tokens.vocab import Category
from tests.limit_cells import VOCAB

ENDS = slice(VOCAB.spans[Category.END_SLIDER].start, VOCAB.spans[Category.END_SLIDER].stop)


def test_ends_that_go_back_are_raised_only_while_short_of_their_share():
    logits = torch.zeros(len(VOCAB))
    logits[ENDS.start + 1: ENDS.stop] = -11.0  # the starter's typical distaste
    before = torch.softmax(logits, -1)
    tilt_to_reverses(logits, ENDS, share=0.2, sliders=20, reverses=0)  # 4 short
    after = torch.softmax(logits, -1)
    assert float(after[ENDS].sum()) == pytest.approx(float(before[ENDS].sum()))  # ending: same
    assert float(after[ENDS.start + 1: ENDS.stop].sum()) > 0.9 * float(after[ENDS].sum())
    shift = VOCAB.spans[Category.TIME_SHIFT].start
    assert float(after[shift]) == pytest.approx(float(before[shift]))  # going on: same
    for share, reverses in ((0.2, 4), (0.0, 0)):  # the share met, or none asked
        kept = torch.zeros(len(VOCAB))
        tilt_to_reverses(kept, ENDS, share=share, sliders=20, reverses=reverses)
        assert torch.equal(kept, torch.zeros(len(VOCAB)))
    only_through = torch.full((len(VOCAB),), -math.inf)  # spans too short to go back
    only_through[ENDS.start] = 0.0
    tilt_to_reverses(only_through, ENDS, share=0.5, sliders=20, reverses=0)
    assert float(only_through[ENDS.start]) == 0.0


def test_only_ends_whose_spans_stay_long_are_raised():
    # 74% of a 3.5-star map's reverses had been 1/4-beat kicks a radius long
    for travelled, raised in ((100.0, []), (150.0, [2])):  # spans of 60 px or more
        logits = torch.zeros(len(VOCAB))
        logits[ENDS.start + 1: ENDS.stop] = -11.0
        before = logits[ENDS].clone()
        tilt_to_reverses(logits, ENDS, share=0.2, sliders=20, reverses=0, travelled=travelled,
                         min_span=60.0)
        gained = (logits[ENDS] - before)[1:] - (logits[ENDS] - before)[0]
        assert [i + 2 for i, g in enumerate(gained.tolist()) if g > 1.0] == raised


def test_a_maps_own_share_of_sliders_that_go_back():
    sliders = [Slider(x=100, y=100, time=1000.0 * i, points=[(200.0, 100.0)], length=100.0,
                      slides=2 if i % 4 == 0 else 1) for i in range(12)]
    beatmap = Beatmap(hit_objects=[*sliders, Circle(x=0, y=0, time=20_000.0)])
    assert observed_reverse_share(beatmap) == pytest.approx(3 / 12)
    assert observed_reverse_share(beatmap, until_ms=7000.0) is None  # 7 sliders: too few
    assert reverse_share_for_stars(3.0) > reverse_share_for_stars(6.5) > 0.0


def test_a_new_map_sends_back_its_share_of_sliders_over_the_whole_map(starter_generator,
                                                                      timed_song):
    # each window counts the sliders before it (the whole map's): counting only its prefix's,
    # 85% of a 4-star map's sliders went back
    folder, _ = timed_song
    shares = {}
    for wanted in (0.0, 0.5):  # 0: the model's own
        options = dataclasses.replace(decoding_options(seed=0), reverse_share=wanted)
        made = generate_beatmap(starter_generator, resolve(folder), Target(stars=4.0), options,
                                max_attempts=1)
        sliders = [o for o in made.beatmap.hit_objects if isinstance(o, Slider)]
        assert len(sliders) >= 12
        shares[wanted] = sum(o.slides > 1 for o in sliders) / len(sliders)
    # (fewer than asked: only sliders whose spans stay 1.5 radii long are sent back)
    assert 0.25 <= shares[0.5] <= 0.65 and shares[0.5] > shares[0.0] + 0.1


def test_a_window_counts_the_reverses_before_its_prefix_as_it_counts_the_sliders():
    # counting the sliders before the prefix but not their reverses, 85% of a 4-star map's
    # sliders went back: every window saw the whole map's sliders short of reverses
    placed = [Slider(x=100, y=100, time=1000.0 * i, points=[(200.0, 100.0)], length=100.0,
                     slides=2 if i % 2 else 1, duration=300.0) for i in range(10)]
    state = SequenceState(GrammarWalker(Grammar(VOCAB.config)), VOCAB)
    _follow_earlier(state, placed, origin=20_000.0, position=20_000.0, format_version=14)
    assert (state.sliders, state.reverses) == (10, 5)


def test_a_window_counts_the_gaps_and_runs_of_the_whole_map_once():
    """The rhythm caps and the stacked runs count every object placed so far, the prefix's
    (already stepped) with those before it: the gap into the prefix counted, a run across the
    prefix's start counted once."""
    placed = [Circle(x=100, y=100, time=t) for t in (0.0, 100.0, 200.0, 300.0, 1000.0)]
    state = SequenceState(GrammarWalker(Grammar(VOCAB.config)), VOCAB)
    state.gaps, state.run_starts = 7, 3  # what stepping a prefix had counted
    _follow_earlier(state, placed, origin=150.0, position=1100.0, format_version=14)
    assert state.gaps == 4 and state.short_gaps[0] == 3  # 100, 100, 100 (< 125 ms) and 700
    assert (state.run_starts, state.stacked_starts) == (1, 1)  # one stacked run of four
