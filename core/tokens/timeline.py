"""The time cursor along a token sequence: where in the window each token leaves the decoder.

The model is told this time at every position (core.model's time embedding), so it need not
add up relative TIME_SHIFTs itself to know which audio it is placing objects on. The cursor
moves on TIME_SHIFTs between objects only; those inside a slider or spinner measure its length.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.tokens.vocab import Category, Vocab

C = Category


def cursor_times(ids: Sequence[int], vocab: Vocab, start_ms: float = 0.0) -> list[float]:
    """(T,) ms from the window's start: the cursor after each token (PAD keeps the last)."""
    shift = vocab.spans[C.TIME_SHIFT]
    values = vocab.shift_values_ms
    sliders, ends = vocab.spans[C.START_SLIDER], vocab.spans[C.END_SLIDER]
    opening = set(range(sliders.start, sliders.stop))
    opening.add(vocab.id(C.PLACE_SPINNER))
    closing = set(range(ends.start, ends.stop))
    closing.add(vocab.id(C.END_SPINNER))
    times, cursor, inside = [], start_ms, False
    for token in ids:
        if token in shift:
            if not inside:
                cursor += values[token - shift.start]
        elif token in opening:
            inside = True  # a START_SLIDER inside a slider (a segment) changes nothing
        elif token in closing:
            inside = False
        times.append(cursor)
    return times
