"""The model's shapes, and the KV cache: one token at a time gives the full forward's logits."""

from __future__ import annotations

import pytest
import torch

from core.model import MapModel, ModelDims, preset_dims
from core.tokens.vocab import DEFAULT, Vocab


def tiny_model(seed: int = 0) -> MapModel:
    torch.manual_seed(seed)
    dims = ModelDims(n_vocab=len(Vocab(DEFAULT)), d_model=64, n_heads=4, n_layers=3, d_ff=128,
                     max_tokens=256, max_frames=512)
    return MapModel(dims).eval()


def inputs(batch: int = 2, frames: int = 300, tokens: int = 40):
    g = torch.Generator().manual_seed(1)
    mel = torch.randn(batch, 80, frames, generator=g)
    ids = torch.randint(3, 700, (batch, tokens), generator=g)
    difficulty = torch.rand(batch, 5, generator=g)
    return mel, ids, difficulty


def test_shapes_and_presets():
    model = tiny_model()
    mel, ids, difficulty = inputs()
    logits = model(mel, ids, difficulty)
    assert logits.shape == (2, 40, len(Vocab(DEFAULT)))
    assert model.encoder(mel).shape == (2, 150, 64)  # 5 ms frames -> 10 ms positions
    seed = preset_dims("seed", 703)
    assert (seed.d_model, seed.n_heads, seed.n_layers, seed.d_ff, seed.dropout) == \
        (512, 8, 6, 2048, 0.1)
    assert preset_dims("small", 703).d_model < 512
    with pytest.raises(ValueError, match="unknown model preset"):
        preset_dims("huge", 703)


@torch.no_grad()
def test_cached_decoding_matches_full_forward():
    model = tiny_model()
    mel, ids, difficulty = inputs()
    full = model(mel, ids, difficulty)
    audio = model.encoder(mel)
    cache = model.new_cache()
    steps = [model.decoder(ids[:, :7], audio, difficulty, cache)]  # a prefix at once ...
    for t in range(7, ids.shape[1]):  # ... then one token at a time
        steps.append(model.decoder(ids[:, t: t + 1], audio, difficulty, cache))
    cached = torch.cat(steps, dim=1)
    assert cache.length == ids.shape[1]
    assert (cached - full).abs().max().item() <= 1e-5


@torch.no_grad()
def test_cache_reorder_follows_beams():
    model = tiny_model()
    mel, ids, difficulty = inputs()
    audio = model.encoder(mel)
    cache = model.new_cache()
    model.decoder(ids[:, :10], audio, difficulty, cache)
    cache.reorder(torch.tensor([1, 1]))
    nxt = model.decoder(ids[1:2, 10:11].repeat(2, 1), audio[[1, 1]], difficulty[[1, 1]], cache)
    reference = model(mel[1:2], ids[1:2, :11], difficulty[1:2])[:, -1]
    assert (nxt[:, -1] - reference).abs().max().item() <= 1e-5


def test_difficulty_changes_the_output():
    model = tiny_model()
    mel, ids, difficulty = inputs(batch=1)
    with torch.no_grad():
        a = model(mel, ids, difficulty)
        b = model(mel, ids, difficulty + 0.5)
    assert (a - b).abs().max().item() > 1e-3
