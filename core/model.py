"""The model: a CNN audio encoder and a Transformer decoder over the token language (DESIGN §6).

Read top-down, small parts first (after whisper's model.py): attention, the decoder block, the
audio encoder, the decoder, the whole model. The decoder runs one token at a time with an explicit
`KVCache` (self-attention keys/values grow per step; cross-attention keys/values are computed once
per window), instead of whisper's forward hooks.

Shapes: B batch, T tokens, S encoder positions, F audio frames, D d_model, H heads (key/value
heads where grouped), K head size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.audio import N_MELS
from core.beat_grid import N_CLASSES as N_GRID_CLASSES

N_CONDITIONS = 5  # AR, CS, OD, HP, stars
GROW_TOKENS = 256  # a KV cache that grows leaves room for at least this many more tokens


@dataclass(frozen=True)
class ModelDims:
    n_vocab: int
    n_mels: int = N_MELS
    d_model: int = 512
    n_heads: int = 8
    # Key/value heads (grouped-query attention, Ainslie et al. 2023): each serves n_heads //
    # n_kv_heads query heads. None (or 0): as many as query heads (plain multi-head attention).
    n_kv_heads: int | None = None
    n_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.1
    encoder_layers: int = 3  # conv blocks; the first one halves the frame rate
    max_tokens: int = 2048  # decoder positions (prefix + generated)
    max_frames: int = 8192  # encoder positions (80 s: 10 ms each after 2x downsampling)
    # Add the cursor's window time (10 ms units, the encoder's position table) to every token,
    # so the decoder knows which audio it is at without summing TIME_SHIFTs (core.tokens.timeline).
    time_embedding: bool = True
    # The audio pointer (see Decoder.pointer_logits): every TIME_SHIFT token's logit also scores
    # the encoder output at the time the shift would move the cursor to. `shift_ms` are the
    # vocabulary's shift values and `shift_first` the first TIME_SHIFT id; empty: no pointer
    # (checkpoints from before it).
    shift_first: int = 0
    shift_ms: tuple[float, ...] = ()
    pointer_dim: int = 64
    # The map's beat grid (core.beat_grid) added to the encoder's output as an embedding: which
    # tick each audio position is on. False in checkpoints from before it.
    beat_grid: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "shift_ms", tuple(float(v) for v in self.shift_ms))  # JSON lists
        if (self.n_heads < 1 or self.kv_heads < 1 or self.d_model % self.n_heads
                or self.n_heads % self.kv_heads):
            raise ValueError(f"d_model {self.d_model} must split into n_heads {self.n_heads}, "
                             f"and those into n_kv_heads {self.kv_heads} groups")

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


def preset_dims(name: str, n_vocab: int, shift_first: int = 0,
                shift_ms: tuple[float, ...] = (), beat_grid: bool = False) -> ModelDims:
    """`seed`: the seed's Phase 3 sizes, its 8 heads grouped over 2 key/value heads (a CPU
    step at 2,048 tokens reads the KV cache more than the weights: a quarter of the cache,
    ~2x the tokens per second). `small`: trains on a laptop CPU in minutes. With the
    vocabulary's TIME_SHIFT ids and values (`pointer_fields`), the decoder has the audio pointer;
    with `beat_grid`, the encoder reads the map's beat grid."""
    pointer = {"shift_first": shift_first, "shift_ms": tuple(shift_ms), "beat_grid": beat_grid}
    if name == "seed":  # 8 query heads in 2 groups: a quarter of the KV cache to read per step
        return ModelDims(n_vocab=n_vocab, n_kv_heads=2, **pointer)
    if name == "small":
        return ModelDims(n_vocab=n_vocab, d_model=192, n_heads=4, n_layers=4, d_ff=768,
                         dropout=0.1, encoder_layers=3, **pointer)
    raise ValueError(f"unknown model preset {name!r}; choose from ['seed', 'small']")


def pointer_fields(vocab) -> dict:
    """preset_dims' pointer arguments for a core.tokens.vocab.Vocab."""
    from core.tokens.vocab import Category

    return {"shift_first": vocab.spans[Category.TIME_SHIFT].start,
            "shift_ms": tuple(vocab.shift_values_ms)}


def sinusoids(length: int, channels: int, max_timescale: float = 10_000) -> Tensor:
    """(length, channels) sinusoidal position encoding (whisper's `sinusoids`)."""
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-increment * torch.arange(channels // 2, dtype=torch.float32))
    scaled = torch.arange(length, dtype=torch.float32)[:, None] * inv[None, :]
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)


class KVCache:
    """Keys and values for incremental decoding, in buffers grown ahead of the tokens.

    Self-attention entries are written at `length` and grow as tokens are fed; cross-attention
    entries are filled once from the encoder output. `reorder` follows beam search's choices.
    """

    def __init__(self, n_layers: int) -> None:
        self.self_k: list[Tensor | None] = [None] * n_layers
        self.self_v: list[Tensor | None] = [None] * n_layers
        self.cross_k: list[Tensor | None] = [None] * n_layers
        self.cross_v: list[Tensor | None] = [None] * n_layers
        self.pointer_k: Tensor | None = None  # (B, S, P): the audio pointer's keys
        self.length = 0  # tokens already in the cache

    def append(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store new self-attention k, v (B, H, t, K); returns all so far (B, H, length+t, K)."""
        start, stop = self.length, self.length + k.shape[2]
        buf_k = self.self_k[layer]
        if buf_k is None or buf_k.shape[2] < stop or buf_k.shape[0] != k.shape[0]:
            # room for GROW_TOKENS more steps at least: a window's prefix is fed at once, and
            # a buffer cut to it would be copied again by the very next token
            capacity = max(stop + GROW_TOKENS, 2 * (buf_k.shape[2] if buf_k is not None else 0))
            buf_k = self._grow(buf_k, k, capacity)
            self.self_v[layer] = self._grow(self.self_v[layer], v, capacity)
            self.self_k[layer] = buf_k
        buf_v = self.self_v[layer]
        buf_k[:, :, start:stop] = k
        buf_v[:, :, start:stop] = v
        return buf_k[:, :, :stop], buf_v[:, :, :stop]

    def _grow(self, old: Tensor | None, like: Tensor, capacity: int) -> Tensor:
        b, h, _, d = like.shape
        new = like.new_empty(b, h, capacity, d)  # only [:length] is ever read
        if old is not None and old.shape[0] == b:
            new[:, :, : self.length] = old[:, :, : self.length]
        elif self.length > 0:  # the rows would be uninitialised: reorder() changes the batch
            raise RuntimeError(f"KV cache of batch {old.shape[0] if old is not None else 0} "
                               f"fed a batch of {b} after {self.length} tokens")
        return new

    def cast(self, dtype: torch.dtype) -> None:
        """Hold the attention keys and values as `dtype` (the pointer's keys stay as they are):
        an int8 StepDecoder reads them in bfloat16, half the memory traffic of a step."""
        for entries in (self.self_k, self.self_v, self.cross_k, self.cross_v):
            for i, t in enumerate(entries):
                if t is not None and t.dtype != dtype:
                    entries[i] = t.to(dtype)

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows `index` (B',): beam search's surviving hypotheses."""
        for entries in (self.self_k, self.self_v, self.cross_k, self.cross_v):
            for i, t in enumerate(entries):
                if t is not None:
                    entries[i] = t.index_select(0, index)
        if self.pointer_k is not None:
            self.pointer_k = self.pointer_k.index_select(0, index)


class Attention(nn.Module):
    """Multi-head attention; with n_kv_heads < n_heads, grouped-query: query head h reads
    key/value head h // (n_heads // n_kv_heads), and the KV cache is that much smaller."""

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int | None = None) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads or n_heads
        kv_dim = d_model // n_heads * self.n_kv_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, kv_dim, bias=False)
        self.value = nn.Linear(d_model, kv_dim)
        self.out = nn.Linear(d_model, d_model)

    def _heads(self, x: Tensor, heads: int | None = None) -> Tensor:
        """(B, t, heads * K) -> (B, heads, t, K); keys and values: _heads(x, n_kv_heads)."""
        b, t, d = x.shape
        heads = heads or self.n_heads
        return x.view(b, t, heads, d // heads).transpose(1, 2)  # (B, H, t, K)

    def kv(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values (B, n_kv_heads, t, K) of x (B, t, D)."""
        return (self._heads(self.key(x), self.n_kv_heads),
                self._heads(self.value(x), self.n_kv_heads))

    def forward(self, x: Tensor, k: Tensor, v: Tensor, causal_offset: int | None) -> Tensor:
        """x (B, T, D) attends over k, v (B, H, S, K); causal when `causal_offset` is given
        (query i sits at absolute position causal_offset + i)."""
        q = self._heads(self.query(x))
        mask, causal = None, False
        if causal_offset is not None and q.shape[2] > 1:
            t, s = q.shape[2], k.shape[2]
            if causal_offset == 0 and t == s:  # training: no mask tensor, so CUDA keeps flash
                causal = True
            else:
                rows = torch.arange(t, device=x.device)[:, None] + causal_offset
                mask = torch.arange(s, device=x.device)[None, :] <= rows  # (T, S)
        # No dropout on the attention weights: on the CPU it forces SDPA's slow math path (a
        # small-model step took 2.8x longer); the residual dropout in DecoderBlock regularises.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           enable_gqa=self.n_kv_heads != self.n_heads)
        b, h, t, kd = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, h * kd))


class DecoderBlock(nn.Module):
    def __init__(self, d: ModelDims) -> None:
        super().__init__()
        self.self_attn = Attention(d.d_model, d.n_heads, d.kv_heads)
        self.cross_attn = Attention(d.d_model, d.n_heads, d.kv_heads)
        self.ln_self, self.ln_cross, self.ln_mlp = (nn.LayerNorm(d.d_model) for _ in range(3))
        self.mlp = nn.Sequential(nn.Linear(d.d_model, d.d_ff), nn.GELU(),
                                 nn.Linear(d.d_ff, d.d_model))
        self.drop = nn.Dropout(d.dropout)

    def forward(self, x: Tensor, audio: Tensor, layer: int, cache: KVCache | None) -> Tensor:
        h = self.ln_self(x)
        k, v = self.self_attn.kv(h)
        offset = 0
        if cache is not None:
            offset = cache.length
            k, v = cache.append(layer, k, v)
        x = x + self.drop(self.self_attn(h, k, v, causal_offset=offset))
        ck, cv = self._cross_kv(audio, layer, cache)
        x = x + self.drop(self.cross_attn(self.ln_cross(x), ck, cv, causal_offset=None))
        return x + self.drop(self.mlp(self.ln_mlp(x)))

    def _cross_kv(self, audio: Tensor, layer: int, cache: KVCache | None) -> tuple[Tensor, Tensor]:
        if cache is not None and cache.cross_k[layer] is not None:
            return cache.cross_k[layer], cache.cross_v[layer]
        k, v = self.cross_attn.kv(audio)
        if cache is not None:
            cache.cross_k[layer], cache.cross_v[layer] = k, v
        return k, v


class AudioEncoder(nn.Module):
    """Strided Conv1d blocks with LayerNorm and GELU, then a projection; positions added.

    The first block halves the 5 ms frame rate to 10 ms, one encoder position per TIME_SHIFT step.
    """

    def __init__(self, d: ModelDims) -> None:
        super().__init__()
        convs = [nn.Conv1d(d.n_mels, d.d_model, kernel_size=3, stride=2, padding=1)]
        convs += [nn.Conv1d(d.d_model, d.d_model, kernel_size=3, padding=1)
                  for _ in range(d.encoder_layers - 1)]
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(nn.LayerNorm(d.d_model) for _ in convs)
        self.proj = nn.Linear(d.d_model, d.d_model)
        self.register_buffer("positions", sinusoids(d.max_frames, d.d_model), persistent=False)
        self.grid = nn.Embedding(N_GRID_CLASSES, d.d_model) if d.beat_grid else None

    def forward(self, mel: Tensor, grid: Tensor | None = None) -> Tensor:
        """mel (B, n_mels, F) -> (B, S, D) with S = ceil(F / 2); `grid` (B, S) the beat-grid
        class of each position (core.beat_grid; None: unknown timing), for models with one."""
        x = mel
        for conv, norm in zip(self.convs, self.norms):
            x = F.gelu(norm(conv(x).transpose(1, 2))).transpose(1, 2)  # (B, D, S)
        x = self.proj(x.transpose(1, 2))  # (B, S, D)
        if x.shape[1] > self.positions.shape[0]:
            raise ValueError(f"audio window of {x.shape[1]} positions exceeds max_frames")
        x = x + self.positions[: x.shape[1]]
        if self.grid is not None:
            classes = torch.zeros(x.shape[:2], dtype=torch.long, device=x.device)  # UNKNOWN
            if grid is not None:
                n = min(grid.shape[1], x.shape[1])
                classes[:, :n] = grid[:, :n]
            x = x + self.grid(classes)
        return x


class Decoder(nn.Module):
    def __init__(self, d: ModelDims) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(d.n_vocab, d.d_model)
        self.condition = nn.Linear(N_CONDITIONS, d.d_model)  # difficulty, added to every token
        self.register_buffer("positions", sinusoids(d.max_tokens, d.d_model), persistent=False)
        self.time_embedding = d.time_embedding
        # The same table as AudioEncoder.positions: token time t and audio position t match.
        self.register_buffer("times", sinusoids(d.max_frames, d.d_model), persistent=False)
        self.blocks = nn.ModuleList(DecoderBlock(d) for _ in range(d.n_layers))
        self.ln = nn.LayerNorm(d.d_model)
        self.head = nn.Linear(d.d_model, d.n_vocab, bias=False)
        self.drop = nn.Dropout(d.dropout)
        self.shift_first = d.shift_first
        if d.shift_ms:
            self.pointer_query = nn.Linear(d.d_model, d.pointer_dim)
            self.pointer_key = nn.Linear(d.d_model, d.pointer_dim)
            # encoder positions are 10 ms apart (AudioEncoder), like the time embedding's steps
            self.register_buffer("shift_steps", torch.tensor(d.shift_ms) / 10.0, persistent=False)
        else:
            self.pointer_query = self.pointer_key = None

    def forward(self, tokens: Tensor, audio: Tensor, difficulty: Tensor,
                cache: KVCache | None = None, times: Tensor | None = None) -> Tensor:
        """tokens (B, T) after `cache.length` cached ones; audio (B, S, D); difficulty (B, 5);
        times (B, T) ms from the window's start after each token -> logits (B, T, V). With a
        cache, the new tokens' keys/values are appended to it."""
        offset = cache.length if cache is not None else 0
        t = tokens.shape[1]
        if offset + t > self.positions.shape[0]:
            raise ValueError(f"sequence of {offset + t} tokens exceeds max_tokens")
        x = self.token_embedding(tokens) + self.positions[offset: offset + t]
        if self.time_embedding and times is not None:
            steps = torch.round(times / 10.0).long().clamp(0, self.times.shape[0] - 1)  # (B, T)
            x = x + self.times[steps]
        # AR/CS/OD/HP lie in [0, 10] and stars mostly below 10: scaled to about [0, 1].
        x = self.drop(x + self.condition(difficulty / 10.0)[:, None, :])
        for layer, block in enumerate(self.blocks):
            x = block(x, audio, layer, cache)
        if cache is not None:
            cache.length += t
        x = self.ln(x)
        logits = self.head(x)
        if self.pointer_query is not None and times is not None:
            span = slice(self.shift_first, self.shift_first + self.shift_steps.shape[0])
            logits[..., span] = logits[..., span] + self.pointer_logits(x, audio, times, cache)
        return logits

    def pointer_logits(self, x: Tensor, audio: Tensor, times: Tensor,
                       cache: KVCache | None) -> Tensor:
        """(B, T, n_shifts): how well the audio where each TIME_SHIFT would land fits the
        decoder state. Finding the next onset becomes looking at the audio there, a local
        feature the encoder computes, instead of addressing it through attention; shifts that
        land past the window score 0 (the decoding constraints forbid them anyway)."""
        if cache is not None and cache.pointer_k is not None:
            keys = cache.pointer_k
        else:
            keys = self.pointer_key(audio)  # (B, S, P)
            if cache is not None:
                cache.pointer_k = keys
        query = self.pointer_query(x) * keys.shape[-1] ** -0.5  # (B, T, P)
        scores = query @ keys.transpose(1, 2)  # (B, T, S)
        target = torch.round(times[..., None] / 10.0 + self.shift_steps).long()  # (B, T, n)
        inside = target < keys.shape[1]
        picked = scores.gather(-1, target.clamp(0, keys.shape[1] - 1))
        return picked * inside


class MapModel(nn.Module):
    """Audio + difficulty -> next-token logits over the token language."""

    def __init__(self, dims: ModelDims) -> None:
        super().__init__()
        self.dims = dims
        self.encoder = AudioEncoder(dims)
        self.decoder = Decoder(dims)

    def forward(self, mel: Tensor, tokens: Tensor, difficulty: Tensor,
                times: Tensor | None = None, grid: Tensor | None = None) -> Tensor:
        """Teacher-forced logits (B, T, V) for training; `times` as in `Decoder.forward`,
        `grid` as in `AudioEncoder.forward`."""
        return self.decoder(tokens, self.encoder(mel, grid), difficulty, times=times)

    def set_dropout(self, p: float) -> None:
        """Every residual dropout to `p`, recorded in dims (so checkpoints say what trained)."""
        self.dims = replace(self.dims, dropout=p)
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.p = p

    def new_cache(self) -> KVCache:
        return KVCache(self.dims.n_layers)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
