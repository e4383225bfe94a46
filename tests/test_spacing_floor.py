"""The overlap floor where a half beat is under OVERLAP_GAP_MS, and the floor's room where a
soft passage shrinks the ceiling (core.spacing_limit)."""

from __future__ import annotations

import pytest

from core.decoding import DecodingOptions
from core.spacing_limit import FLOOR_ROOM
from tests.limit_cells import X, Y, at_x, open_cells, placing_after


def test_a_half_beat_under_the_overlap_gap_keeps_clear_at_a_fast_tempo():
    options = DecodingOptions(spacing=0.4, min_distance=80.0)
    seq = at_x(placing_after(160.0), 256.0)  # 160 ms: under OVERLAP_GAP_MS, over a stream's
    assert 192.0 in open_cells(seq, Y, options)  # no tempo known: it may overlap
    seq.beat_ms = lambda _time: 322.6  # 186 BPM: 160 ms is its half beat
    ys = open_cells(seq, Y, options)
    assert ys and all(abs(y - 192.0) >= 80.0 for y in ys)
    seq.beat_ms = lambda _time: 480.0  # 125 BPM: 160 ms is a third of a beat, a stream's
    assert 192.0 in open_cells(seq, Y, options)


def test_a_soft_passage_keeps_the_floors_room_and_the_ceiling():
    # a soft passage's smaller ceiling (0.6 x 93 px) fell under the floor (75 px): the ring
    # was empty and every limit went, leaving 387 px jumps in 167 ms at 2.5 stars (QA)
    options = DecodingOptions(spacing=0.56, min_distance=75.0, soft_spacing=0.6)
    seq = placing_after(200.0)
    seq.soft = lambda _time: True
    xs = open_cells(seq, X, options)
    assert max(xs) - 256.0 == pytest.approx(FLOOR_ROOM * 75.0, abs=4.0)
    ys = open_cells(at_x(seq, 256.0), Y, options)
    assert ys and all(75.0 <= abs(y - 192.0) <= FLOOR_ROOM * 75.0 for y in ys)
