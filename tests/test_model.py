"""The model's shapes, and the KV cache: one token at a time gives the full forward's logits."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from core.incremental import StepDecoder
from core.model import MapModel, ModelDims, pointer_fields, preset_dims
from core.tokens.timeline import cursor_times
from core.tokens.vocab import DEFAULT, Vocab


def tiny_model(seed: int = 0, pointer: bool = True, kv_heads: int | None = None) -> MapModel:
    torch.manual_seed(seed)
    vocab = Vocab(DEFAULT)
    dims = ModelDims(n_vocab=len(vocab), d_model=64, n_heads=4, n_kv_heads=kv_heads, n_layers=3,
                     d_ff=128, max_tokens=256, max_frames=512,
                     **(pointer_fields(vocab) if pointer else {}))
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
    assert seed.kv_heads == 2 and preset_dims("small", 703).kv_heads == 4
    for bad in (3, -2):
        with pytest.raises(ValueError, match=f"n_kv_heads {bad}"):
            ModelDims(n_vocab=10, d_model=64, n_heads=4, n_kv_heads=bad)
    assert preset_dims("small", 703).d_model < 512
    with pytest.raises(ValueError, match="unknown model preset"):
        preset_dims("huge", 703)


@torch.no_grad()
@pytest.mark.parametrize("pointer", [True, False], ids=["pointer", "no-pointer"])
@pytest.mark.parametrize("stepper", ["module", "step-decoder"])
@pytest.mark.parametrize("grow", [256, 3], ids=["room", "regrown"])
@pytest.mark.parametrize("kv_heads", [None, 2, 1], ids=["mha", "gqa", "mqa"])
def test_cached_decoding_matches_full_forward(pointer, stepper, grow, kv_heads, monkeypatch):
    """One token at a time, through Decoder.forward or decoding's StepDecoder (fused
    self-attention projections, no modules), gives the full forward's logits; also where the
    cache's buffers fill up and are regrown (copied) every few tokens, and with grouped-query
    attention (fewer key/value heads: the step decoder folds query heads per group)."""
    monkeypatch.setattr("core.model.GROW_TOKENS", grow)
    model = tiny_model(pointer=pointer, kv_heads=kv_heads)
    mel, ids, difficulty = inputs()
    times = torch.cumsum(torch.randint(0, 60, ids.shape), dim=1).float()  # (B, T) ms
    full = model(mel, ids, difficulty, times)
    audio = model.encoder(mel)
    cache = model.new_cache()
    steps = [model.decoder(ids[:, :7], audio, difficulty, cache, times[:, :7])]  # a prefix ...
    step = StepDecoder(model.decoder)
    for t in range(7, ids.shape[1]):  # ... then one token at a time
        if stepper == "module":
            steps.append(model.decoder(ids[:, t: t + 1], audio, difficulty, cache,
                                       times[:, t: t + 1]))
        else:
            steps.append(step(ids[:, t: t + 1], audio, difficulty, cache, times[:, t: t + 1])
                         [:, None])
    cached = torch.cat(steps, dim=1)
    assert cache.length == ids.shape[1]
    assert cache.self_k[0].shape[2] == (7 + 256 if grow == 256 else 40)  # 10 -> 20 -> 40
    assert cache.self_k[0].shape[1] == cache.cross_v[0].shape[1] == (kv_heads or 4)
    assert (cached - full).abs().max().item() <= 1e-5


@torch.no_grad()
@pytest.mark.parametrize("kv_heads", [None, 2], ids=["mha", "gqa"])
def test_int8_step_decoder_stays_close_to_float32(kv_heads):
    """Precision int8 (int8 weights, bfloat16 blocks and cache) moves logits by ~1% of their
    range and keeps the likeliest token; a wrong scale or layout would scramble them."""
    model = tiny_model(kv_heads=kv_heads)
    mel, ids, difficulty = inputs()
    times = torch.cumsum(torch.randint(0, 60, ids.shape), dim=1).float()
    full = model(mel, ids, difficulty, times)[:, 7:]
    audio = model.encoder(mel)
    cache = model.new_cache()
    model.decoder(ids[:, :7], audio, difficulty, cache, times[:, :7])
    step = StepDecoder(model.decoder, "int8")
    cached = torch.stack([step(ids[:, t: t + 1], audio, difficulty, cache, times[:, t: t + 1])
                          for t in range(7, ids.shape[1])], dim=1)
    assert cached.dtype == torch.float32 and cache.self_k[0].dtype == torch.bfloat16
    error = (cached - full).abs().max().item()
    spread = (full.amax(-1) - full.amin(-1)).min().item()
    assert 0 < error <= 0.03 * spread
    agree = (cached.argmax(-1) == full.argmax(-1)).float().mean().item()
    assert agree >= 0.95
    with pytest.raises(ValueError, match="unknown precision"):
        StepDecoder(model.decoder, "int4")


def test_auto_precision_takes_int8_only_where_it_pays(monkeypatch):
    """auto: int8 on a CPU running AVX-512 kernels with bfloat16, float32 with AVX2 kernels
    (int8 steps ran 0.5-0.75x as fast there) and on GPUs."""
    from core import incremental
    from core.cpu import fast_bfloat16

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    for capability, bf16, expected in [("AVX512", True, "int8"), ("AVX512", False, "float32"),
                                       ("AVX2", True, "float32")]:
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda b=bf16: b,
                            raising=False)
        fast_bfloat16.cache_clear()
        assert incremental.resolve_precision("auto", cpu) == expected
        assert incremental.resolve_precision("auto", gpu) == "float32"
        assert incremental.resolve_precision("int8", gpu) == "int8"
    fast_bfloat16.cache_clear()
    assert StepDecoder(tiny_model().decoder).precision == "float32"  # the exact default


def test_step_decoder_is_reused_until_the_weights_change():
    """Decoding builds its step once per model (int8 packing is slow), not per window, and
    builds it again after training moves a weight or a checkpoint is loaded."""
    from core.incremental import step_decoder

    model = tiny_model()
    first = step_decoder(model, "float32")
    assert step_decoder(model, "float32") is first
    assert step_decoder(model, "int8").precision == "int8"
    assert step_decoder(model, "float32") is not first  # one precision cached at a time
    first = step_decoder(model, "float32")
    with torch.no_grad():
        model.decoder.head.weight.add_(1.0)  # as an optimizer step does, in place
    moved = step_decoder(model, "float32")
    assert moved is not first and torch.equal(moved.head, model.decoder.head.weight.t())
    model.load_state_dict(tiny_model(seed=1).state_dict())
    assert step_decoder(model, "float32") is not moved
    decoder = weakref.ref(model.decoder)  # the cache keeps no model alive
    del model
    gc.collect()
    assert decoder() is None


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


def test_token_times_change_the_output():
    model = tiny_model()
    mel, ids, difficulty = inputs(batch=1)
    with torch.no_grad():
        a = model(mel, ids, difficulty, torch.zeros(ids.shape))
        b = model(mel, ids, difficulty, torch.full(ids.shape, 500.0))
    assert (a - b).abs().max().item() > 1e-3


def test_cursor_times_follow_shifts_between_objects_only():
    vocab = Vocab(DEFAULT)
    t = vocab.token
    ids = [t("SOS"), t("TIME_SHIFT_9"), t("PLACE_CIRCLE"), t("COORD_X_60"), t("COORD_Y_60"),
           t("TIME_SHIFT_4"), t("START_SLIDER_B"), t("COORD_X_1"), t("COORD_Y_1"),
           t("ADD_SLIDER_ANCHOR"), t("COORD_X_9"), t("COORD_Y_9"), t("TIME_SHIFT_19"),
           t("END_SLIDER_0R"), t("TIME_SHIFT_29"), t("EOS")]
    times = cursor_times(ids, vocab)
    assert times[:3] == [0, 100, 100]
    assert times[6] == 150 and times[12] == 150  # the slider's own length does not move it
    assert times[14] == 450 and times[-1] == 450


def test_difficulty_changes_the_output():
    model = tiny_model()
    mel, ids, difficulty = inputs(batch=1)
    with torch.no_grad():
        a = model(mel, ids, difficulty)
        b = model(mel, ids, difficulty + 0.5)
    assert (a - b).abs().max().item() > 1e-3


@torch.no_grad()
def test_the_audio_pointer_looks_where_each_shift_lands():
    """A shift's pointer score is the audio at cursor + shift: moving the cursor 10 ms on moves
    every fine (10 ms) shift's score one bin down; a shift past the window scores 0."""
    model = tiny_model()
    vocab = Vocab(DEFAULT)
    mel = inputs(batch=1, frames=400)[0]  # 200 positions: 2 s
    audio = model.encoder(mel)
    x = torch.randn(1, 1, 64)
    at = model.decoder.pointer_logits(x, audio, torch.tensor([[500.0]]), None)[0, 0]
    later = model.decoder.pointer_logits(x, audio, torch.tensor([[510.0]]), None)[0, 0]
    fine = vocab.config.fine_shift_bins
    assert tuple(vocab.shift_values_ms[:3]) == (10.0, 20.0, 30.0)
    assert torch.allclose(later[:50], at[1:51])
    assert at[:100].abs().min() > 0 and at[150:fine].abs().max() == 0  # 500 + 1500 ms = end
    empty = tiny_model(pointer=False)
    assert empty.decoder.pointer_query is None


def test_old_checkpoints_without_the_pointer_still_load(tmp_path):
    from core.checkpoint import load_model, save_model_only

    model = tiny_model(pointer=False)
    path = save_model_only(model, DEFAULT, tmp_path / "old")
    loaded, _, _ = load_model(path)
    assert loaded.dims.shift_ms == () and loaded.decoder.pointer_query is None
    pointed = save_model_only(tiny_model(), DEFAULT, tmp_path / "new")
    assert load_model(pointed)[0].dims.shift_ms == tuple(Vocab(DEFAULT).shift_values_ms)
