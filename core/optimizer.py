"""How a training run steps: AdamW's parameter groups, the learning-rate schedule, and a budgeted
run's clock.

nanoGPT's choices: weight decay on matrices only; linear warmup, then cosine decay to a floor
over the run's steps, or over its wall-clock budget (`TrainConfig.budget_s`) when that is
further along. Sized in steps from a few timed ones, a schedule ended early or late on a machine
whose speed drifted (a 55-minute CPU run lost 147 of its 3,197 steps and never reached the
floor); on the clock it ends on time.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import nn

from core.distributed import Processes

if TYPE_CHECKING:
    from core.training import TrainConfig


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device
                   ) -> torch.optim.AdamW:
    """AdamW, decoupled weight decay on linear and convolution weights only: biases, norms and
    embeddings are not decayed (decaying an embedding shrinks rare tokens' rows toward zero)."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            is_matrix = isinstance(module, (nn.Linear, nn.Conv1d)) and name == "weight"
            (decay if is_matrix else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    fused = True if device.type == "cuda" else None  # one kernel per step on CUDA
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=fused)


def learning_rate(step: int, config: TrainConfig, total: int, share: float = 0.0) -> float:
    """nanoGPT's schedule for step `step` (0-based) of `total`; `share` (0-1), a budgeted run's
    share of its time spent, moves the cosine on when it is further along than the steps. The
    warmup scales the rate rather than preceding the cosine, so a budget spent mid-warmup still
    ends low, and a warmup that took a share of the budget ends on the cosine where it is."""
    min_lr = config.lr * config.min_lr_ratio
    # 1) past the end (of the steps or the budget), the floor
    if step >= total or share >= 1.0:
        return min_lr
    # 2) cosine decay down to the floor at the last step (or the budget's end) ...
    ratio = max((step - config.warmup_steps) / max(1, total - config.warmup_steps), share, 0.0)
    rate = min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (config.lr - min_lr)
    # 3) ... scaled by a linear warmup over the first warmup_steps steps
    if step < config.warmup_steps:
        rate *= (step + 1) / (config.warmup_steps + 1)
    return rate


class BudgetClock:
    """A budgeted run's loop time, the same on every process (rank 0's clock, broadcast each
    step, so that every process sets the same learning rate and stops at the same step)."""

    def __init__(self, budget_s: float | None, before_s: float, procs: Processes) -> None:
        self.budget, self.before, self.procs = budget_s, before_s, procs
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.start

    def share(self) -> float:
        """The share of the budget spent (0 without one)."""
        if self.budget is None:
            return 0.0
        now = self.seconds()
        if self.procs.world > 1:
            clock = torch.tensor([now], dtype=torch.float64, device=self.procs.device)
            dist.broadcast(clock, src=0)
            now = float(clock.item())
        return now / self.budget
