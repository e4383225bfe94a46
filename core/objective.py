"""The training objective: next-token cross-entropy over the map tokens after SOS and the prefix
(DESIGN §7), teacher-forced on a batch from core.dataset_loader.collate.

Tokens may weigh differently (`token_weights`): on synthetic songs the coordinates are ~48% of
the tokens but ~89% of the loss (4.5-4.8 nats each against 0.2-0.6 for rhythm tokens), because
where an object goes is mostly free while when it goes is fixed by the music. Unweighted, their
gradient drowns the rhythm's; a lower coordinate weight lets a CPU budget go to the rhythm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.beat_grid import UNKNOWN
from core.cpu import fast_bfloat16
from core.model import ModelDims
from core.tokens.vocab import Category, Vocab
from core.training_data import drop_audio


def token_weights(vocab: Vocab, coord_weight: float = 1.0) -> Tensor | None:
    """(V,) loss weight per token id: `coord_weight` for COORD_X and COORD_Y, 1 elsewhere
    (None when every weight is 1, the plain cross-entropy)."""
    if coord_weight == 1.0:
        return None
    weights = torch.ones(len(vocab))
    for category in (Category.COORD_X, Category.COORD_Y):
        span = vocab.spans[category]
        weights[span.start: span.stop] = coord_weight
    return weights


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The forward pass's autocast type for TrainConfig.precision on `device` (None: float32):
    "auto" is bfloat16 on CUDA and on a CPU with fast bfloat16 (core.cpu)."""
    if precision == "auto":
        fast = device.type == "cuda" or (device.type == "cpu" and fast_bfloat16())
        return torch.bfloat16 if fast else None
    return torch.bfloat16 if precision == "bfloat16" else None


def batch_loss(model: nn.Module, batch: dict, dims: ModelDims,
               device: torch.device | str = "cpu", audio_dropout: float = 0.0,
               weights: Tensor | None = None, grid_dropout: float = 0.0,
               autocast: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    """(summed cross-entropy, number of target tokens) of a batch from `collate`, teacher-forced:
    the model reads tokens[:, :-1] and predicts tokens[:, 1:]. Windows longer than the model's
    max_tokens are cut there; `weights` (V,) weigh each target by its id (token_weights);
    `grid_dropout` of the windows lose their beat grid (UNKNOWN), as a song without timing.
    `autocast` (autocast_dtype) runs the forward pass in that type; the loss is float32."""
    device = torch.device(device)
    tokens = batch["tokens"][:, :dims.max_tokens + 1].to(device, non_blocking=True)  # (B, T+1)
    mask = batch["loss_mask"][:, 1:dims.max_tokens + 1].to(device, non_blocking=True)  # (B, T)
    audio = drop_audio(batch["audio"].to(device, non_blocking=True), audio_dropout)  # (B, M, F)
    difficulty = batch["difficulty"].to(device, non_blocking=True)  # (B, 5)
    times = batch.get("times")
    if times is not None:
        times = times[:, :tokens.shape[1] - 1].to(device, non_blocking=True)  # (B, T)
    grid = batch.get("grid")
    if grid is not None:
        grid = grid.to(device, non_blocking=True)
        if grid_dropout > 0:
            unknown = torch.rand(grid.shape[0], device=device) < grid_dropout
            grid = grid.masked_fill(unknown[:, None], UNKNOWN)
    with torch.autocast(device.type, dtype=autocast or torch.bfloat16,
                        enabled=autocast is not None):
        logits = model(audio, tokens[:, :-1], difficulty, times, grid)  # (B, T, V)
    return next_token_loss(logits, tokens[:, 1:], mask,
                           None if weights is None else weights.to(device))


def next_token_loss(logits: Tensor, targets: Tensor, mask: Tensor,
                    weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(summed cross-entropy, count) of logits (B, T, V) against targets (B, T) where mask
    (B, T) is true; positions where it is false (SOS, the prefix, PAD) take no part. With
    `weights` (V,), each target counts weights[target] times in the sum and in the count."""
    picked = logits[mask].float()  # (N, V), in float32 under autocast too
    chosen = targets[mask]
    if weights is None:
        return F.cross_entropy(picked, chosen, reduction="sum"), mask.sum().clamp(min=1)
    w = weights[chosen]
    loss = (F.cross_entropy(picked, chosen, reduction="none") * w).sum()
    return loss, w.sum().clamp(min=1e-6)
