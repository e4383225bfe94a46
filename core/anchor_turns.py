"""Slider anchors that do not double back on the path they draw.

The starter drew Bezier sliders with hooks and cusps: 33 of 239 free Bezier sliders (14%) in
20 maps turned sharper than 60 degrees somewhere, three crossed themselves (QA, session 25);
ranked maps' do so 2 times in 1,598. Such a shape comes from anchors whose control polygon
turns back on itself. So while a slider's anchors are placed, the next one may not turn the
polygon by more than MAX_TURN_DEGREES from its last segment (a U of four anchors turns 90 at
each; a red anchor, two on one spot, or a change of curve type there, is a corner the mapper
means and is left free).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from core.beatmap.model import PLAYFIELD_HEIGHT
from core.sequence_state import SequenceState
from core.tokens.vocab import Category, Vocab

MAX_TURN_DEGREES = 120.0
_COS = math.cos(math.radians(MAX_TURN_DEGREES))
SAME_SPOT_PX = 1.0  # anchors this near are one spot (a red anchor)


class AnchorTurns:
    """Masks the anchor coordinates that would turn a slider's control polygon back."""

    def __init__(self, vocab: Vocab) -> None:
        self.xs = torch.tensor(vocab.x_values)
        self.ys = torch.tensor(vocab.y_values)
        self.x_span = vocab.spans[Category.COORD_X]
        self.y_span = vocab.spans[Category.COORD_Y]
        self.y_on = (self.ys >= 0) & (self.ys <= PLAYFIELD_HEIGHT)

    def apply(self, logits: Tensor, state: SequenceState, axis: Category) -> None:
        """Close (in place) the `axis` cells of the next anchor where every anchor there turns
        back, where that leaves the model a choice."""
        heading = _heading(state.path)
        if heading is None or (state.segments and state.segments[-1][0] == len(state.path) - 1):
            return  # a corner: after a red anchor, or where the curve's type changes
        (px, py), (hx, hy) = state.path[-1], heading
        if axis is Category.COORD_X:
            dx, dy = (self.xs - px)[:, None], (self.ys - py)[None, :]
            allowed = _ahead(dx, dy, hx, hy) & self.y_on[None, :]
            closed = ~allowed.any(dim=1)
            span = self.x_span
        else:
            dx = torch.full_like(self.ys, state.pending_x - px)
            closed = ~_ahead(dx, self.ys - py, hx, hy)
            span = self.y_span
        cells = logits[span.start: span.stop]
        if bool(torch.isfinite(cells.masked_fill(closed, float("-inf"))).any()):
            cells.masked_fill_(closed, float("-inf"))


def _ahead(dx: Tensor, dy: Tensor, hx: float, hy: float) -> Tensor:
    """Whether a step (dx, dy) turns no more than MAX_TURN_DEGREES from (hx, hy), or stays on
    the spot."""
    length = torch.sqrt(dx ** 2 + dy ** 2)
    return (dx * hx + dy * hy >= _COS * length * math.hypot(hx, hy)) | (length < SAME_SPOT_PX)


def _heading(path: tuple[tuple[float, float], ...]) -> tuple[float, float] | None:
    """The direction of the path's last segment of any length (None before there is one, or
    right after a red anchor: a corner is free)."""
    if len(path) < 2:
        return None
    (ax, ay), (bx, by) = path[-2], path[-1]
    if math.hypot(bx - ax, by - ay) < SAME_SPOT_PX:
        return None
    return bx - ax, by - ay
