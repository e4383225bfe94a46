"""One decoding step at a time without nn.Module dispatch (DESIGN §8's KV-cache decoding).

At batch 1 and one token a step, the small model's arithmetic is a few million multiply-adds;
its ~35 Linear calls, 12 LayerNorms and the modules' Python around them cost more than the
maths. `StepDecoder` runs the same computation as `Decoder.forward` with a cache, from the same
weights, with the self-attention's query, key and value fused into one matrix and no dropout
(inference only), calling torch's functional ops directly. Prefill (many tokens at once) stays
with `Decoder.forward`; `tests/test_model.py` checks that both give the same logits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from core.model import Decoder, DecoderBlock, KVCache


def step_decoder(model) -> Callable[..., Tensor]:
    """The one-token step for `model`: a StepDecoder for a MapModel's decoder; any other
    decoder (a test's stand-in) is called as it is, its last position's logits taken."""
    if isinstance(model.decoder, Decoder):
        return StepDecoder(model.decoder)
    return lambda tokens, audio, difficulty, cache, times: model.decoder(
        tokens, audio, difficulty, cache, times)[:, -1]


class StepDecoder:
    """A frozen view of `decoder`'s weights for one-token steps; build it per decoding run (it
    holds its own copies of the weight matrices, transposed for addmm, so later training does
    not reach it). Activations are (B, D): with one token a step, heads need no transposes."""

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        self.d_model = decoder.token_embedding.weight.shape[1]
        self.heads = decoder.blocks[0].self_attn.n_heads if len(decoder.blocks) else 1
        self.layers = [_layer_weights(block) for block in decoder.blocks]
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
        dec, d, heads = self.decoder, self.d_model, self.heads
        b, offset = tokens.shape[0], cache.length
        if offset + 1 > dec.positions.shape[0]:
            raise ValueError(f"sequence of {offset + 1} tokens exceeds max_tokens")
        x = dec.token_embedding.weight[tokens.view(-1)] + dec.positions[offset]  # (B, D)
        times = times.view(b)
        if dec.time_embedding:
            x = x + dec.times[torch.round(times / 10.0).long().clamp(0, dec.times.shape[0] - 1)]
        x = x + self._condition(difficulty)
        # torch.layer_norm and plain slicing, not F.layer_norm and Tensor.split: their Python
        # wrappers cost more than the arithmetic at these sizes (~5 and ~25 us a call).
        for layer, (ln_self, qkv, out, ln_cross, cross_q, cross_out, ln_mlp, up, down) in \
                enumerate(self.layers):
            qkv_x = torch.addmm(qkv[1], torch.layer_norm(x, *ln_self), qkv[0])  # (B, 3D)
            k, v = cache.append(layer, _heads(qkv_x[:, d:2 * d], heads),
                                _heads(qkv_x[:, 2 * d:], heads))
            y = F.scaled_dot_product_attention(_heads(qkv_x[:, :d], heads), k, v)
            x = torch.addmm(out[1], y.view(b, d), out[0]).add_(x)
            q = torch.addmm(cross_q[1], torch.layer_norm(x, *ln_cross), cross_q[0])
            y = F.scaled_dot_product_attention(_heads(q, heads), cache.cross_k[layer],
                                               cache.cross_v[layer])
            x = torch.addmm(cross_out[1], y.view(b, d), cross_out[0]).add_(x)
            h = F.gelu(torch.addmm(up[1], torch.layer_norm(x, *ln_mlp), up[0]))
            x = torch.addmm(down[1], h, down[0]).add_(x)
        cache.length += 1
        x = torch.layer_norm(x, *self.final)
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


def _layer_weights(block: DecoderBlock) -> tuple:
    """A block's tensors in the order StepDecoder uses them; the self-attention's query, key
    and value projections as one (D, 3D) matrix (the key has no bias)."""
    a, c = block.self_attn, block.cross_attn
    qkv = _affine(torch.cat([a.query.weight, a.key.weight, a.value.weight]),
                  torch.cat([a.query.bias, torch.zeros_like(a.query.bias), a.value.bias]))
    up, down = block.mlp[0], block.mlp[2]
    return (_norm_weights(block.ln_self), qkv, _affine(a.out.weight, a.out.bias),
            _norm_weights(block.ln_cross), _affine(c.query.weight, c.query.bias),
            _affine(c.out.weight, c.out.bias), _norm_weights(block.ln_mlp),
            _affine(up.weight, up.bias), _affine(down.weight, down.bias))


def _affine(weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """(W^T contiguous, b): torch.addmm(b, x, W^T) is nn.Linear's x W^T + b."""
    return weight.t().contiguous(), bias


def _norm_weights(ln: torch.nn.LayerNorm) -> tuple:
    return ln.normalized_shape, ln.weight, ln.bias, ln.eps


def _heads(x: Tensor, heads: int) -> Tensor:
    """(B, D) -> (B, H, 1, K): one position, so no transpose is needed (a column slice of the
    fused q/k/v is strided, hence reshape: a view where it can be)."""
    b, d = x.shape
    return x.reshape(b, heads, 1, d // heads)
