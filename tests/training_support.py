"""What the training tests share: a tiny model's sizes and settings for fast runs on the
`training_set` fixture (conftest), and a batch of its windows."""

from __future__ import annotations

from pathlib import Path

import torch

from core.dataset_loader import WindowConfig, WindowDataset, collate
from core.model import MapModel, ModelDims
from core.tokens.vocab import DEFAULT, Vocab
from core.train_config import TrainConfig

TINY = ModelDims(n_vocab=len(Vocab(DEFAULT)), d_model=32, n_heads=2, n_layers=2, d_ff=64,
                 encoder_layers=2, max_tokens=512, max_frames=1024)
WINDOW_S = 4.0  # 800 frames; the songs' 20 s give 5 windows per map, 25 per set


def tiny_config(data: Path, out: Path, **changes) -> TrainConfig:
    settings = {"window_s": WINDOW_S, "batch_size": 4, "max_steps": 8, "lr": 3e-3,
                "warmup_steps": 3, "eval_interval": 4, "workers": 0, "device": "cpu"}
    return TrainConfig(data=data, out=out, **(settings | changes))


def tiny_model(seed: int = 0) -> MapModel:
    torch.manual_seed(seed)
    return MapModel(TINY)


def batch_of(data_set: Path, size: int = 6) -> dict:
    data = WindowDataset(data_set, WindowConfig(window_s=WINDOW_S, no_prefix_p=0.3))
    return collate([data[i] for i in range(0, 5 * size, 5)])
