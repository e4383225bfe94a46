"""core.optimizer: AdamW's weight-decay groups and the learning-rate schedule, over steps and
over a wall-clock budget (a budgeted run itself: test_training.py)."""

from __future__ import annotations

import math

import pytest
import torch

from core.model import MapModel, ModelDims
from core.optimizer import learning_rate, make_optimizer
from core.training import TrainConfig


def tiny_model() -> MapModel:
    torch.manual_seed(0)
    return MapModel(ModelDims(n_vocab=64, d_model=32, n_heads=2, n_layers=1, d_ff=64,
                              encoder_layers=1))


def test_schedule_and_weight_decay_groups(tmp_path):
    config = TrainConfig(data=tmp_path, out=tmp_path, lr=1e-3, warmup_steps=10, max_steps=100)
    rates = [learning_rate(step, config, 100) for step in range(100)]
    assert rates[:10] == sorted(rates[:10]) and max(rates) <= 1e-3
    assert rates[10:] == sorted(rates[10:], reverse=True)
    assert rates[-1] == pytest.approx(1e-4, rel=0.01)  # down to a tenth of the peak
    model = tiny_model()
    decayed, plain = make_optimizer(model, config, torch.device("cpu")).param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    names = {p: n for n, p in model.named_parameters()}
    assert all(p.dim() >= 2 for p in decayed["params"])
    assert "decoder.token_embedding.weight" in {names[p] for p in plain["params"]}
    assert all(n.endswith("bias") or "ln" in n or "norm" in n or "embedding" in n
               for n in (names[p] for p in plain["params"]))


def test_budget_share_moves_the_cosine_on(tmp_path):
    config = TrainConfig(data=tmp_path, out=tmp_path, lr=1e-3, warmup_steps=10, max_steps=1000,
                         budget_s=60.0)
    floor = 1e-4
    halfway = floor + 0.5 * (1e-3 - floor)  # the cosine at half its length
    assert learning_rate(20, config, 1000, share=0.5) == pytest.approx(halfway)
    assert learning_rate(505, config, 1000, share=0.1) == pytest.approx(halfway)  # steps lead
    assert learning_rate(20, config, 1000, share=1.0) == floor
    # The warmup scales the cosine: a budget spent mid-warmup still ends below the floor, and
    # a warmup that took a fifth of the budget ends where the cosine is at a fifth.
    assert learning_rate(5, config, 1000, share=0.99) < floor
    at_fifth = floor + 0.5 * (1 + math.cos(math.pi * 0.2)) * (1e-3 - floor)
    assert learning_rate(9, config, 1000, share=0.2) == pytest.approx(at_fifth * 10 / 11)
    assert learning_rate(10, config, 1000, share=0.2) == pytest.approx(at_fifth)
    with pytest.raises(ValueError, match="budget_s"):
        TrainConfig(data=tmp_path, out=tmp_path, budget_s=0.0)
