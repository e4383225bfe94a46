"""The training objective: next-token cross-entropy over the map tokens after SOS and the prefix
(DESIGN §7), teacher-forced on a batch from core.dataset_loader.collate."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.model import ModelDims
from core.training_data import drop_audio


def batch_loss(model: nn.Module, batch: dict, dims: ModelDims,
               device: torch.device | str = "cpu", audio_dropout: float = 0.0
               ) -> tuple[Tensor, Tensor]:
    """(summed cross-entropy, number of target tokens) of a batch from `collate`, teacher-forced:
    the model reads tokens[:, :-1] and predicts tokens[:, 1:]. Windows longer than the model's
    max_tokens are cut there. bf16 autocast on CUDA only (CPU bf16 is slow and of no use here)."""
    device = torch.device(device)
    tokens = batch["tokens"][:, :dims.max_tokens + 1].to(device, non_blocking=True)  # (B, T+1)
    mask = batch["loss_mask"][:, 1:dims.max_tokens + 1].to(device, non_blocking=True)  # (B, T)
    audio = drop_audio(batch["audio"].to(device, non_blocking=True), audio_dropout)  # (B, M, F)
    difficulty = batch["difficulty"].to(device, non_blocking=True)  # (B, 5)
    times = batch.get("times")
    if times is not None:
        times = times[:, :tokens.shape[1] - 1].to(device, non_blocking=True)  # (B, T)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model(audio, tokens[:, :-1], difficulty, times)  # (B, T, V)
    return next_token_loss(logits, tokens[:, 1:], mask)


def next_token_loss(logits: Tensor, targets: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(summed cross-entropy, count) of logits (B, T, V) against targets (B, T) where mask
    (B, T) is true; positions where it is false (SOS, the prefix, PAD) take no part."""
    count = mask.sum()  # ()
    picked = logits[mask].float()  # (N, V), in float32 under autocast too
    return F.cross_entropy(picked, targets[mask], reduction="sum"), count.clamp(min=1)
