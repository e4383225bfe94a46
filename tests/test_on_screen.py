"""core.spacing_limit's rule for the objects before the last still on screen: the next head
stacks on one or keeps clear of it, never half over it."""

from __future__ import annotations

import math

from core.decoding import DecodingOptions
from core.sequence_state import EARLIER_KEPT
from core.spacing_limit import ON_SCREEN_MS
from core.tokens.vocab import Category
from tests.limit_cells import VOCAB, X, Y, at_x, open_cells
from tests.test_map_craft import placing_after

OPTIONS = DecodingOptions(spacing=0.4, min_distance=80.0)  # 160 px reach in 400 ms


def test_a_head_is_not_placed_half_over_an_earlier_object_on_screen():
    seq = placing_after(400.0)  # the last ended at (256, 192), 400 ms ago
    seq.earlier = ((256.0, 312.0, 700.0),)  # one before it ended 120 px below, 700 ms ago
    ys = open_cells(at_x(seq, 256.0), Y, OPTIONS)
    # below the last: 272-352 would be its ring, but 232-392 is half over the earlier one;
    # its own spot (312) is a stack, which is fine
    assert 312.0 in ys and all(not (4 <= abs(y - 312.0) < 80) for y in ys)
    assert any(y < 192 for y in ys)  # above the last is free
    # an x whose every ring y would be half over it is closed, but for its own column (a
    # stack): 150 px right of the last, the ring leaves y within 56 px of 192
    seq.earlier = ((406.0, 192.0, 1200.0),)
    xs = open_cells(seq, X, OPTIONS)
    assert 408.0 in xs and not {396.0, 400.0, 412.0, 416.0} & set(xs)
    seq.earlier = ((256.0, 312.0, 700.0),)
    # gone from the screen: free again
    seq.earlier = ((256.0, 312.0, 1000.0 - ON_SCREEN_MS - 400.0),)
    assert 280.0 in open_cells(at_x(seq, 256.0), Y, OPTIONS)


def test_the_state_remembers_where_the_objects_before_the_last_ended():
    seq = placing_after(400.0)
    circle, x0, y0 = (VOCAB.token("PLACE_CIRCLE"), VOCAB.spans[X].start, VOCAB.spans[Y].start)
    shift = VOCAB.spans[Category.TIME_SHIFT].start + 10  # any gap
    seq.step(x0 + VOCAB.x_index(100.0))
    seq.step(y0 + VOCAB.y_index(100.0))
    for i in range(EARLIER_KEPT + 2):
        seq.step(shift)
        seq.step(circle)
        seq.step(x0 + VOCAB.x_index(100.0 + 40 * i))
        seq.step(y0 + VOCAB.y_index(100.0))
    assert len(seq.earlier) == EARLIER_KEPT
    xs = [x for x, _, _ in seq.earlier]
    assert xs == sorted(xs) and all(math.isfinite(end) for _, _, end in seq.earlier)
