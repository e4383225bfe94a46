"""One decoding step at a time without nn.Module dispatch (DESIGN §8's KV-cache decoding).

At batch 1 and one token a step, the small model's arithmetic is a few million multiply-adds;
its ~35 Linear calls, 12 LayerNorms and the modules' Python around them cost more than the
maths. `StepDecoder` runs the same computation as `Decoder.forward` with a cache, from the same
weights, with the self-attention's query, key and value fused into one matrix and no dropout
(inference only), calling torch's functional ops directly. Prefill (many tokens at once) stays
with `Decoder.forward`; `tests/test_model.py` checks that both give the same logits.

A step is memory-bound: the seed preset reads ~80 MB of fp32 weights and, at 2,048 tokens,
~23 MB of keys and values (8 query heads over 2 key/value heads; ~90 MB with 8) per token.
Precision "int8" holds each matrix as int8 with a scale per output channel and runs the blocks
in bfloat16 (activations and the cache's keys and values), the embeddings, final norm, head and
audio pointer staying float32: on an AVX-512 CPU with bfloat16 the seed preset steps 1.8-2.0x
faster (benchmarks/decode_speed.py); logits move by ~1% (tests/test_model.py bounds
it). With AVX2 kernels only, bfloat16 attention is slow and int8 steps run 0.5-0.75x as fast, so
"auto" (decoding's default) takes int8 only where it pays.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from core.cpu import fast_bfloat16
from core.model import Decoder, DecoderBlock, KVCache

PRECISIONS = ("auto", "float32", "int8")


def check_precision(precision: str) -> None:
    """ValueError unless `precision` is one of PRECISIONS."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (one of {', '.join(PRECISIONS)})")


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" made concrete: int8 on a CPU with fast bfloat16 (core.cpu), else float32."""
    check_precision(precision)
    if precision != "auto":
        return precision
    return "int8" if device.type == "cpu" and fast_bfloat16() else "float32"


# decoder -> ((precision, weights' identity), StepDecoder): packing the seed preset's weights
# as int8 takes ~0.3 s, once per model and precision instead of once per window. A StepDecoder
# holds tensors, never the decoder, so an entry goes when its model does.
_steps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def step_decoder(model, precision: str = "float32") -> Callable[..., Tensor]:
    """The one-token step for `model`: a StepDecoder for a MapModel's decoder (reused while
    its weights are unchanged: an optimizer step, `copy_` or load_state_dict bumps their
    versions; writes through `.data` do not, so call StepDecoder yourself after those); any
    other decoder (a test's stand-in) is called as it is, its last position's logits taken."""
    if isinstance(model.decoder, Decoder):
        decoder = model.decoder
        precision = resolve_precision(precision, decoder.token_embedding.weight.device)
        try:
            key = (precision, tuple((p.data_ptr(), p._version) for p in decoder.parameters()))
        except RuntimeError:  # weights made under inference_mode have no version: no reuse
            return StepDecoder(decoder, precision)
        cached = _steps.get(decoder)
        if cached is None or cached[0] != key:
            cached = (key, StepDecoder(decoder, precision))
            _steps[decoder] = cached
        return cached[1]
    return lambda tokens, audio, difficulty, cache, times: model.decoder(
        tokens, audio, difficulty, cache, times)[:, -1]


class StepDecoder:
    """A frozen view of `decoder`'s weights for one-token steps (it holds its own copies of the
    weight matrices, transposed for addmm or packed as int8, so later training does not reach
    it: `step_decoder` builds a new one when the weights change). Activations are (B, D): with
    one token a step, heads need no transposes."""

    def __init__(self, decoder: Decoder, precision: str = "float32") -> None:
        precision = resolve_precision(precision, decoder.token_embedding.weight.device)
        self.precision = precision
        # the embeddings are read, not copied: a step indexes them
        self.embedding, self.positions = decoder.token_embedding.weight, decoder.positions
        self.times = decoder.times if decoder.time_embedding else None
        self.d_model = decoder.token_embedding.weight.shape[1]
        attn = decoder.blocks[0].self_attn if len(decoder.blocks) else None
        self.heads = attn.n_heads if attn else 1
        self.kv_heads = attn.n_kv_heads if attn else 1
        self.kv_width = self.d_model // self.heads * self.kv_heads  # keys' (and values') width
        int8 = precision == "int8"
        self.block_dtype = torch.bfloat16 if int8 else torch.float32
        self.linear = _int8_linear if int8 else _linear
        self.layers = [_layer_weights(block, _int8_affine if int8 else _affine,
                                      self.block_dtype) for block in decoder.blocks]
        self.final = _norm_weights(decoder.ln)
        self.head = decoder.head.weight.t().contiguous()
        self.condition = _affine(decoder.condition.weight, decoder.condition.bias)
        self._conditioned: tuple[Tensor | None, Tensor | None] = (None, None)
        if decoder.pointer_query is not None:
            first = decoder.shift_first
            self.pointer = (slice(first, first + decoder.shift_steps.shape[0]),
                            _affine(decoder.pointer_query.weight, decoder.pointer_query.bias),
                            decoder.shift_steps)
        else:
            self.pointer = None

    def __call__(self, tokens: Tensor, audio: Tensor, difficulty: Tensor, cache: KVCache,
                 times: Tensor) -> Tensor:
        """Logits (B, V) of the next token after `tokens` (B, 1), whose cursor times are
        `times` (B, 1); appends their keys and values to `cache` (already prefilled: the
        cross-attention and pointer keys come from it)."""
        d, heads, kv_heads, kv = self.d_model, self.heads, self.kv_heads, self.kv_width
        b, offset = tokens.shape[0], cache.length
        if offset + 1 > self.positions.shape[0]:
            raise ValueError(f"sequence of {offset + 1} tokens exceeds max_tokens")
        x = self.embedding[tokens.view(-1)] + self.positions[offset]  # (B, D)
        times = times.view(b)
        if self.times is not None:
            x = x + self.times[torch.round(times / 10.0).long().clamp(0, self.times.shape[0] - 1)]
        x = (x + self._condition(difficulty)).to(self.block_dtype)
        if cache.cross_k[0].dtype != self.block_dtype:  # just prefilled by Decoder.forward
            cache.cast(self.block_dtype)
        linear = self.linear
        # torch.layer_norm and plain slicing, not F.layer_norm and Tensor.split: their Python
        # wrappers cost more than the arithmetic at these sizes (~5 and ~25 us a call).
        for layer, (ln_self, qkv, out, ln_cross, cross_q, cross_out, ln_mlp, up, down) in \
                enumerate(self.layers):
            qkv_x = linear(qkv, torch.layer_norm(x, *ln_self))  # (B, D + 2 * kv)
            k, v = cache.append(layer, _heads(qkv_x[:, d:d + kv], kv_heads),
                                _heads(qkv_x[:, d + kv:], kv_heads))
            y = F.scaled_dot_product_attention(_queries(qkv_x[:, :d], heads, kv_heads), k, v)
            x = linear(out, y.reshape(b, d)).add_(x)
            q = linear(cross_q, torch.layer_norm(x, *ln_cross))
            y = F.scaled_dot_product_attention(_queries(q, heads, kv_heads),
                                               cache.cross_k[layer], cache.cross_v[layer])
            x = linear(cross_out, y.reshape(b, d)).add_(x)
            h = F.gelu(linear(up, torch.layer_norm(x, *ln_mlp)))
            x = linear(down, h).add_(x)
        cache.length += 1
        x = torch.layer_norm(x.float(), *self.final)
        logits = x @ self.head  # (B, V)
        if self.pointer is not None:  # Decoder.pointer_logits, with the cached keys
            span, (weight, bias), shift_steps = self.pointer
            keys = cache.pointer_k  # (B, S, P)
            query = torch.addmm(bias, x, weight) * keys.shape[-1] ** -0.5  # (B, P)
            scores = (keys @ query[:, :, None])[:, :, 0]  # (B, S)
            target = torch.round(times[:, None] / 10.0 + shift_steps).long()  # (B, n)
            inside = target < keys.shape[1]
            logits[:, span] += scores.gather(-1, target.clamp(0, keys.shape[1] - 1)) * inside
        return logits

    def _condition(self, difficulty: Tensor) -> Tensor:
        """The difficulty's embedding (B, D): the same tensor every step of a window."""
        source, value = self._conditioned
        if source is not difficulty:
            value = torch.addmm(self.condition[1], difficulty / 10.0, self.condition[0])
            self._conditioned = (difficulty, value)
        return value


def _layer_weights(block: DecoderBlock, affine: Callable[[Tensor, Tensor], tuple],
                   dtype: torch.dtype) -> tuple:
    """A block's tensors in the order StepDecoder uses them, each Linear packed by `affine`;
    the self-attention's query, key and value projections as one (D + 2 kv, D) matrix (the key
    has no bias; kv is the width of the keys, D where heads are not grouped)."""
    a, c = block.self_attn, block.cross_attn
    qkv = affine(torch.cat([a.query.weight, a.key.weight, a.value.weight]),
                 torch.cat([a.query.bias, a.value.bias.new_zeros(a.key.out_features),
                            a.value.bias]))
    up, down = block.mlp[0], block.mlp[2]
    return (_norm_weights(block.ln_self, dtype), qkv, affine(a.out.weight, a.out.bias),
            _norm_weights(block.ln_cross, dtype), affine(c.query.weight, c.query.bias),
            affine(c.out.weight, c.out.bias), _norm_weights(block.ln_mlp, dtype),
            affine(up.weight, up.bias), affine(down.weight, down.bias))


def _affine(weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """(W^T contiguous, b): torch.addmm(b, x, W^T) is nn.Linear's x W^T + b."""
    return weight.t().contiguous(), bias


def _linear(packed: tuple[Tensor, Tensor], x: Tensor) -> Tensor:
    return torch.addmm(packed[1], x, packed[0])


def _int8_affine(weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(W as int8 (N, K), a bfloat16 scale per output row, the bias in bfloat16): symmetric
    per-channel rounding, the largest weight of a row to +-127."""
    scale = weight.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    q = torch.round(weight / scale[:, None]).clamp_(-127, 127).to(torch.int8).contiguous()
    return q, scale.to(torch.bfloat16), bias.to(torch.bfloat16)


def _int8_linear(packed: tuple[Tensor, Tensor, Tensor], x: Tensor) -> Tensor:
    return torch._weight_int8pack_mm(x, packed[0], packed[1]).add_(packed[2])


def _norm_weights(ln: torch.nn.LayerNorm, dtype: torch.dtype = torch.float32) -> tuple:
    return ln.normalized_shape, ln.weight.to(dtype), ln.bias.to(dtype), ln.eps


def _heads(x: Tensor, heads: int) -> Tensor:
    """(B, D) -> (B, H, 1, K): one position, so no transpose is needed (a column slice of the
    fused q/k/v is strided, hence reshape: a view where it can be)."""
    b, d = x.shape
    return x.reshape(b, heads, 1, d // heads)


def _queries(x: Tensor, heads: int, kv_heads: int) -> Tensor:
    """One position's queries (B, H * K) as (B, kv_heads, H // kv_heads, K): the query heads
    sharing a key/value head become that head's query rows (head h = group * G + g, as SDPA's
    enable_gqa pairs them), so grouped-query attention is one plain SDPA call that reads each
    key once. With kv_heads == H it is _heads."""
    b, d = x.shape
    return x.reshape(b, kv_heads, heads // kv_heads, d // heads)
