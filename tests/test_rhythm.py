"""core.rhythm: how often objects follow each other closely, and the caps decoding keeps to."""

from __future__ import annotations

import itertools
import math
import zipfile

import pytest
import torch
from corpus_files import require_corpus, resource

from companion.continuation import continue_beatmap
from companion.mapping import load_generator
from core.beatmap.model import Beatmap, Circle, Spinner, TimingPoint
from core.beatmap.parser import parse_file
from core.constraints import ConstraintFilter, SequenceState
from core.decoding import DecodingOptions
from core.rhythm import (
    GAP_LEVELS_MS,
    GAP_SLACK,
    gap_shares,
    gap_shares_for_stars,
    observed_gap_shares,
    start_gaps,
)
from core.tokens.grammar import Grammar, GrammarWalker
from core.tokens.vocab import DEFAULT, Category, Vocab

VOCAB = Vocab(DEFAULT)


def small_map() -> Beatmap:
    beatmap = Beatmap()
    beatmap.timing_points = [TimingPoint(time=0.0, beat_length=400.0)]
    beatmap.hit_objects = [
        Circle(x=0, y=0, time=0), Circle(x=0, y=0, time=100), Circle(x=0, y=0, time=300),
        Circle(x=0, y=0, time=700),
        Spinner(x=256, y=192, time=1000, spinner_end=2000),  # not rhythm: skipped
        Circle(x=0, y=0, time=2100),
        Circle(x=0, y=0, time=5000),  # after a pause: no gap
        Circle(x=0, y=0, time=5200),
    ]
    return beatmap


def test_gaps_run_from_start_to_start_without_spinners_or_pauses():
    assert start_gaps(small_map()) == [100, 200, 400, 1400, 200]
    assert start_gaps(small_map(), until_ms=700) == [100, 200]
    # under 125 ms: one of five; under 250 ms and under 340 ms: three; under 600 ms: four
    assert gap_shares(small_map()) == pytest.approx((0.2, 0.6, 0.6, 0.8))
    assert gap_shares(Beatmap()) is None


def test_too_few_gaps_tell_nothing_and_the_caps_keep_a_little_slack():
    assert observed_gap_shares(small_map()) is None
    # each share GAP_SLACK over the map's (held to the exact 99% under 600 ms of a map that
    # pauses now and then, a continuation from a dense stretch had to pause first) ...
    assert observed_gap_shares(small_map(), minimum_gaps=5) == pytest.approx(
        tuple(v + GAP_SLACK for v in (0.2, 0.6, 0.6, 0.8)))
    # ... and no further than 1; a level the map never goes under stays closed
    dense = Beatmap(hit_objects=[Circle(x=0, y=0, time=200.0 * i) for i in range(20)])
    assert observed_gap_shares(dense) == pytest.approx((0.0, 1.0, 1.0, 1.0))


def test_the_caps_rise_with_the_stars_and_nest():
    table = [gap_shares_for_stars(s) for s in (0.0, 1.0, 2.5, 4.0, 5.5, 7.5, 8.0, 12.0)]
    for level in range(len(GAP_LEVELS_MS)):
        column = [shares[level] for shares in table]
        assert column == sorted(column) and column[-1] == 1.0
    # a gap under 125 ms is also under 250 ms (and 340, 600): its cap is never the larger
    assert all(list(shares) == sorted(shares) for shares in table)
    assert gap_shares_for_stars(2.0)[0] == 0.0  # a Normal has no streams


def after_object(gaps: int, short: tuple[int, ...]) -> SequenceState:
    """A sequence that just placed a circle at 1000 ms, with `gaps` gaps before, `short` of
    them under each level; the cursor still on the circle, and every 10 ms a tick (so that
    gaps landing too early are closed, not only objects placed there)."""
    walker = GrammarWalker(Grammar(VOCAB.config))
    walker.step(Category.SOS)
    return SequenceState(walker, VOCAB, cursor=1000.0, last_end=1000.0, last_start=1000.0,
                         window_end=16_000.0, gaps=gaps, short_gaps=short,
                         on_tick=lambda t: True)


def open_gaps(seq: SequenceState, shares) -> list[float]:
    logits = torch.zeros(len(VOCAB))
    ConstraintFilter(VOCAB, DecodingOptions(gap_shares=shares)).apply(logits, seq)
    span = VOCAB.spans[Category.TIME_SHIFT]
    return [VOCAB.shift_values_ms[j] for j in range(span.size)
            if math.isfinite(float(logits[span.start + j]))]


def test_a_short_gap_is_open_only_while_the_share_allows_one_more():
    # 20 gaps so far, 2 under 125 ms: a third would be 3 of 21 (14%)
    seq = after_object(20, (2, 10, 14, 18))
    assert min(open_gaps(seq, (0.15, 1.0, 1.0, 1.0))) == 20.0  # within 15%: a 1/4 gap may come
    assert min(open_gaps(seq, (0.10, 1.0, 1.0, 1.0))) == 130.0  # over 10%: not before 125 ms
    # and the second level on its own: 11 of 21 under 250 ms is over half
    assert min(open_gaps(seq, (1.0, 0.5, 1.0, 1.0))) == 250.0
    # the third: 15 of 21 under 340 ms is over 70%; the fourth: 19 of 21 under 600 over 90%
    assert min(open_gaps(seq, (1.0, 1.0, 0.7, 1.0))) == 340.0
    assert min(open_gaps(seq, (1.0, 1.0, 1.0, 0.9))) == 600.0
    assert min(open_gaps(seq, None)) == 20.0  # no caps, no limit


def test_the_state_counts_the_gaps_it_places():
    walker = GrammarWalker(Grammar(VOCAB.config))
    walker.step(Category.SOS)
    seq = SequenceState(walker, VOCAB)
    shift = VOCAB.spans[Category.TIME_SHIFT].start

    def circle_after(ms: int) -> None:
        if ms:
            seq.step(shift + VOCAB.shift_values_ms.index(float(ms)))
        seq.step(VOCAB.spans[Category.PLACE_CIRCLE].start)
        seq.step(VOCAB.spans[Category.COORD_X].start)
        seq.step(VOCAB.spans[Category.COORD_Y].start)

    for ms in (0, 100, 200, 2500, 300):  # the first has no gap, the 2.5 s one is a pause
        circle_after(ms)
    assert (seq.gaps, seq.short_gaps) == (3, (1, 2, 3, 3))


def test_a_continuation_keeps_the_maps_rhythm(tmp_path):
    """Renatus' Insane thinned to no gap under 125 ms before `from`: continued, it streams
    nowhere, where the same continuation without the cap does."""
    root = require_corpus()
    beatmap = parse_file(resource(root, "Soleily - Renatus (Gamu) [Insane].osu")).beatmap
    from_ms, until_ms = 60_000.0, 80_000.0
    kept, last = [], -math.inf
    for obj in beatmap.hit_objects:
        if obj.time >= from_ms or obj.time - last >= GAP_LEVELS_MS[0]:
            kept.append(obj)
            last = obj.time
    beatmap.hit_objects = kept
    shares = observed_gap_shares(beatmap, from_ms)
    assert shares[0] == 0.0 and shares[1] > 0.2
    with zipfile.ZipFile(root / "osu-resources" / "triangles.osz") as z:
        audio = tmp_path / beatmap.audio_filename
        audio.write_bytes(z.read("audio.mp3"))
    generator = load_generator(None)

    def fast_gaps(options: DecodingOptions) -> tuple[int, int]:
        result = continue_beatmap(generator, beatmap, audio, from_ms, until_ms, options)
        times = [o.time for o in result.hit_objects
                 if not isinstance(o, Spinner) and o.time < until_ms]
        new = [(a, b) for a, b in itertools.pairwise(times) if b >= from_ms]
        return sum(b - a < GAP_LEVELS_MS[0] for a, b in new), len(new)

    fast, count = fast_gaps(DecodingOptions(seed=1, max_tokens=400))
    assert count > 10 and fast == 0
    free, _ = fast_gaps(DecodingOptions(seed=1, max_tokens=400, gap_shares=(1.0,) * 4))
    assert free > 0  # the model streams here when it may


@pytest.mark.parametrize("shares", [(0.5,), (0.1, 1.5), (-0.1, 0.5)])
def test_caps_are_a_share_per_level(shares):
    with pytest.raises(ValueError, match="gap_shares"):
        DecodingOptions(gap_shares=shares)
