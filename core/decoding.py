"""Decoding one window: constrained token choice with the KV cache (DESIGN §8, the seed's Phase 5).

After whisper's decoding.py: options are a frozen dataclass checked in one place; the rules
that edit logits are one filter with one `apply` (core.constraints), which greedy, sampling and
beam search share, so every sequence they produce is a valid map.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from core.constraints import NEG_INF, ConstraintFilter, SequenceState
from core.incremental import check_precision, step_decoder
from core.model import MapModel
from core.music_pull import PULL_NATS, QUIET_NATS
from core.rhythm import GAP_LEVELS_MS
from core.tokens.grammar import Grammar, GrammarWalker, State
from core.tokens.timeline import cursor_times
from core.tokens.vocab import Category, Vocab

C = Category

class JobCancelled(Exception):
    """Raised between decoding steps when the caller asked to stop."""


@dataclass(frozen=True)
class DecodingOptions:
    # How each token is chosen.
    method: str = "sample"  # "greedy", "sample" or "beam"
    temperature: float = 1.0  # sampling only; 0 means greedy
    top_k: int | None = None  # sampling: keep the k most likely tokens
    top_p: float | None = 0.95  # sampling: keep the smallest set with this much probability
    beam_size: int = 4  # beam search: hypotheses kept
    length_penalty: float = 1.0  # beam search: scores divided by length ** this
    seed: int = 0  # the same seed gives the same map
    # When sampling, timing is decided unless this is set (ConstraintFilter.decide_timing):
    # when objects come is the model's likeliest choice, what comes there is drawn. Drawn
    # timing puts objects off the music's onsets (held-out onset F1, session 3's starter:
    # 0.764 drawn, 0.795 decided, 0.829 greedy).
    draw_gaps: bool = False
    # Tilts the gap before each object: a gap's logit gets -density_bias * log2(gap in ms), so
    # at 1.0 a gap half as long is twice as likely as the model says (a denser, harder map);
    # < 0 sparser. The star-rating retries steer with it.
    density_bias: float = 0.0
    # ... more of it (< 0: sparser) in the song's soft passages (core.music_presence.SOFT_DB:
    # an intro, a breakdown), and the spacing ceiling times soft_spacing there: mappers map
    # them calmer (core.map_rules sets both for a new map). None: as elsewhere.
    soft_bias: float | None = None
    soft_spacing: float | None = None
    # A slider ends at least this many beats before the song's next accent, and none starts
    # where it would not fit (core.accents; core.map_rules sets it for a new map). None: none.
    accent_margin_beats: float | None = None
    # Distance snap as a floor too: a move over a gap of up to core.spacing_limit.SNAP_BEATS
    # keeps at least this share of the spacing ceiling's reach, so one distance per ms holds
    # across rhythms (an Easy's or a Normal's distance snap, as the ranking criteria ask).
    # None: none.
    snap_floor: float | None = None
    # osu!'s distance snap as a ceiling: a new object starts at most this many osu!pixels per ms
    # of gap from where the previous one ended (the jumps a map has decide most of its star
    # rating; core.spacing has typical values per star rating). None: no limit.
    spacing: float | None = None
    # A floor under it: an object that starts core.spacing_limit.OVERLAP_GAP_MS or more after the
    # last one ends (or a half beat, where that is shorter and no stream's step) keeps at least
    # this many osu!pixels from where it ended (a circle's diameter: no overlap;
    # core.spacing_limit.circle_diameter). None or 0: no floor.
    min_distance: float | None = None
    # The rhythm's density as caps: at most gap_shares[i] of the objects may start sooner than
    # core.rhythm.GAP_LEVELS_MS[i] after the previous one's start (streams, then 1/2 rhythms:
    # the speed half of the star rating; core.rhythm has typical values per star rating),
    # counted over the map so far. None: no limit.
    gap_shares: tuple[float, ...] | None = None
    # Distance snap: a move whose gap matches the last one's (within a decoding time step) keeps
    # its distance within this fraction of the last one's, or of `snap_distances` (in a
    # stream, within core.spacing_limit.STREAM_SPREAD at most). None: free.
    spacing_spread: float | None = None
    # A continued map's own distance per gap ((gap ms, px), core.spacing.observed_snap_distances):
    # a move of one of those gaps keeps within `spacing_spread` of its distance, not of the
    # last move's. None: the last move's.
    snap_distances: tuple[tuple[float, float], ...] | None = None
    # Streams (a head under core.spacing_limit.STREAM_GAP_MS after the last end): at most this
    # many osu!pixels a step (ranked maps step 19-32 px; the starter 40-88 px). None: free.
    stream_step: float | None = None
    # ... and at most this share of the steps that follow a step turn back from it (over 90
    # degrees), over the map so far (ranked maps' streams up to 5.5 stars 0-8%, the starter's
    # half; core.streams). 0: none. None: free.
    stream_turns: float | None = None
    # The least share of sliders among circles and sliders, over the map so far: where it
    # falls short, sliders are made likelier against circles
    # (core.object_mix). None or 0: the model's own mix.
    slider_share: float | None = None
    # The least share of sliders that go back (reverse arrows), over the map so far: where it
    # falls short, ends that go back are made likelier (core.object_mix).
    # None or 0: the model's own.
    reverse_share: float | None = None
    # The least share of long sliders (each span core.object_mix.LONG_SPAN_BEATS of a beat or
    # more), over the map so far: where it falls short, a short slider's body
    # goes on where it may (core.object_mix). None or 0: the model's own.
    long_share: float | None = None
    # The least share of runs of 1/4 notes (a double, a triple) drawn stacked on their first
    # circle, over the map so far (core.stacks). None or 0: the model's own.
    stack_share: float | None = None
    # osu!pixels: the shortest span a slider may have (a circle's radius: shorter ones read as
    # circles; core.object_mix). None or 0: any.
    min_slider_length: float | None = None
    # nats: the music's pull on when objects come, toward the beats and the onsets heard
    # (core.music_pull.PULL_NATS by default, where the map has timing). 0: none.
    music_pull: float = PULL_NATS
    # Beats after a spinner's end before the next object (where more than
    # core.object_fit.SPINNER_RECOVERY_MS; core.map_rules: an Easy 4, a Normal 2, a Hard 1, as
    # the ranking criteria ask). 0: the ms alone.
    spinner_recovery_beats: float = 0.0
    # nats more off a quarter or third tick where nothing is heard (core.music_pull.QUIET_NATS
    # by default; a retry short of its stars lowers it: core.map_rules). 0: none.
    quiet_nats: float = QUIET_NATS
    # How the decoder's steps compute (core.incremental.PRECISIONS): "int8" weights and
    # bfloat16 activations step the seed preset 1.7-1.9x faster on an AVX-512 CPU at ~1% of the
    # logits, and slower with AVX2 only; "float32" matches training exactly; "auto" takes int8
    # where it pays (core.cpu.fast_bfloat16).
    precision: str = "auto"
    # Limits.
    max_tokens: int = 1536  # generated tokens per window
    max_object_ms: float = 20_000.0  # the longest slider or spinner

    def __post_init__(self) -> None:
        self._verify()

    def _verify(self) -> None:
        if self.method not in ("greedy", "sample", "beam"):
            raise ValueError(f"unknown decoding method {self.method!r}")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("top_k must be >= 1")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError("top_p must lie in (0, 1]")
        check_precision(self.precision)
        if self.beam_size < 1 or self.max_tokens < 1:
            raise ValueError("beam_size and max_tokens must be >= 1")
        if self.spacing is not None and not self.spacing > 0:
            raise ValueError("spacing must be > 0 px/ms (or None for no limit)")
        if self.slider_share is not None and not 0 <= self.slider_share <= 1:
            raise ValueError("slider_share must lie in [0, 1] (or None for the model's own)")
        if self.reverse_share is not None and not 0 <= self.reverse_share <= 1:
            raise ValueError("reverse_share must lie in [0, 1] (or None for the model's own)")
        if self.long_share is not None and not 0 <= self.long_share <= 1:
            raise ValueError("long_share must lie in [0, 1] (or None for the model's own)")
        if self.stack_share is not None and not 0 <= self.stack_share <= 1:
            raise ValueError("stack_share must lie in [0, 1] (or None for the model's own)")
        if self.spacing_spread is not None and not self.spacing_spread >= 0:
            raise ValueError("spacing_spread must be >= 0 (or None for free spacing)")
        if self.min_slider_length is not None and not self.min_slider_length >= 0:
            raise ValueError("min_slider_length must be >= 0 osu!pixels (or None for any)")
        if self.min_distance is not None and not self.min_distance >= 0:
            raise ValueError("min_distance must be >= 0 osu!pixels (or None for no floor)")
        if self.gap_shares is not None and (len(self.gap_shares) != len(GAP_LEVELS_MS) or
                                            not all(0 <= s <= 1 for s in self.gap_shares)):
            raise ValueError(f"gap_shares must be {len(GAP_LEVELS_MS)} shares in [0, 1] "
                             "(or None for no limit)")


def choose(logits: Tensor, options: DecodingOptions,
           generator: torch.Generator) -> tuple[int, float]:
    """One token from filtered logits (V,), greedy or sampled with temperature/top-k/top-p,
    and its log-probability under `logits`. Only the tokens the filter left open are looked at
    (often a few dozen of the vocabulary's ~700, one where the timing was decided), in numpy:
    at these sizes each torch call's overhead is worth more than its arithmetic."""
    values = logits.detach().cpu().numpy().astype(np.float64)
    open_ids = np.flatnonzero(np.isfinite(values))
    if open_ids.size <= 1:  # nothing to choose (or the filter left nothing: keep argmax)
        return (int(open_ids[0]), 0.0) if open_ids.size else (int(np.argmax(values)), NEG_INF)
    candidates = values[open_ids]
    top = candidates.max()
    log_probs = candidates - top - math.log(float(np.exp(candidates - top).sum()))
    pick = _pick(candidates, options, generator)
    return int(open_ids[pick]), float(log_probs[pick])


def _pick(logits: np.ndarray, options: DecodingOptions, generator: torch.Generator) -> int:
    """The index chosen among finite `logits`: the likeliest, or drawn (by inverse CDF on one
    uniform from `generator`) from the tokens that top-k and then top-p keep."""
    if options.method == "greedy" or options.temperature == 0:
        return int(np.argmax(logits))
    scaled = logits / options.temperature
    order = np.argsort(-scaled, kind="stable")
    ordered = scaled[order]
    probs = np.exp(ordered - ordered[0])
    probs /= probs.sum()
    cumulative = np.cumsum(probs)
    keep = len(ordered)
    if options.top_k is not None:
        keep = min(keep, options.top_k)
    if options.top_p is not None and options.top_p < 1:  # the first token over top_p stays
        total = cumulative[keep - 1]
        keep = int(np.count_nonzero(cumulative[:keep] - probs[:keep]
                                    <= options.top_p * total))
    u = float(torch.rand((), generator=generator, dtype=torch.float64)) * cumulative[keep - 1]
    index = min(int(np.searchsorted(cumulative[:keep], u, side="right")), keep - 1)
    return int(order[index])


@dataclass
class WindowResult:
    tokens: list[int]  # generated, without EOS
    finished: bool  # ended with EOS (not the token limit)
    log_prob: float = 0.0
    steps: int = field(default=0)


@torch.inference_mode()
def decode_window(model: MapModel, vocab: Vocab, audio: Tensor, difficulty: Tensor,
                  prefix: Sequence[int], state: SequenceState, options: DecodingOptions,
                  generator: torch.Generator,
                  should_stop: Callable[[], bool] | None = None) -> WindowResult:
    """Generate after `prefix` (SOS and the prefix objects' tokens, already fed to `state`).

    audio: (1, S, D) encoder output; difficulty: (1, 5). Raises `JobCancelled` between steps
    when `should_stop()` turns true.
    """
    if options.method == "beam" and options.beam_size > 1:
        return _beam_search(model, vocab, audio, difficulty, prefix, state, options, should_stop)
    filt = ConstraintFilter(vocab, options)
    eos = vocab.id(C.EOS)
    next_logits = step_decoder(model, options.precision)
    cache = model.new_cache()
    tokens = torch.tensor([list(prefix)], dtype=torch.long)
    times = torch.tensor([cursor_times(prefix, vocab)])  # (1, T)
    logits = model.decoder(tokens, audio, difficulty, cache, times)[0, -1]
    out: list[int] = []
    total = 0.0
    for _ in range(options.max_tokens):
        if should_stop is not None and should_stop():
            raise JobCancelled("cancelled between decoding steps")
        filt.apply(logits, state)
        if not options.draw_gaps and options.method == "sample":
            filt.decide_timing(logits, state)
        token, log_prob = choose(logits, options, generator)
        total += log_prob
        state.step(token)
        if token == eos:
            return WindowResult(out, True, total, len(out) + 1)
        out.append(token)
        step = torch.tensor([[token]], dtype=torch.long)
        now = torch.tensor([[state.cursor]])
        logits = next_logits(step, audio, difficulty, cache, now)[0]
    return WindowResult(whole_objects(out, vocab), False, total, len(out))


def _beam_search(model: MapModel, vocab: Vocab, audio: Tensor, difficulty: Tensor,
                 prefix: Sequence[int], state: SequenceState, options: DecodingOptions,
                 should_stop: Callable[[], bool] | None) -> WindowResult:
    """Beam search over constrained tokens; finished hypotheses ranked by length-normalised
    log-probability. The cache is reordered to the surviving beams after every step."""
    filt = ConstraintFilter(vocab, options)
    eos, width = vocab.id(C.EOS), options.beam_size
    next_logits = step_decoder(model, options.precision)
    cache = model.new_cache()
    tokens = torch.tensor([list(prefix)], dtype=torch.long)
    times = torch.tensor([cursor_times(prefix, vocab)])  # (1, T)
    logits = model.decoder(tokens, audio, difficulty, cache, times)[:, -1]  # (1, V)
    beams: list[tuple[float, list[int], SequenceState]] = [(0.0, [], state)]
    finished: list[tuple[float, list[int], SequenceState]] = []
    ran_out = False  # the token limit, not the search, ended it: live beams compete too
    for _ in range(options.max_tokens):
        if should_stop is not None and should_stop():
            raise JobCancelled("cancelled between decoding steps")
        candidates = []
        for row, (score, _seq, st) in enumerate(beams):
            row_logits = logits[row].clone()
            filt.apply(row_logits, st)
            logp = torch.log_softmax(row_logits, -1)
            top = torch.topk(logp, min(width, int(torch.isfinite(logp).sum())))
            for lp, token in zip(top.values.tolist(), top.indices.tolist()):
                candidates.append((score + lp, row, token))
        candidates.sort(key=lambda c: -c[0])
        survivors = []
        for score, row, token in candidates:
            st = beams[row][2].clone()
            st.step(token)
            seq = [*beams[row][1], token]
            if token == eos:
                finished.append((_normalised(score, seq, options.length_penalty), seq[:-1], st))
            else:
                survivors.append((score, seq, st, row))
            if len(survivors) == width:
                break
        if not survivors or _settled(finished, survivors, width, options.length_penalty):
            break
        cache.reorder(torch.tensor([s[3] for s in survivors]))
        beams = [(s[0], s[1], s[2]) for s in survivors]
        step = torch.tensor([[s[1][-1]] for s in survivors], dtype=torch.long)
        now = torch.tensor([[s[2].cursor] for s in survivors])
        logits = next_logits(step, audio.expand(len(beams), -1, -1),
                             difficulty.expand(len(beams), -1), cache, now)
    else:
        ran_out = True
    # A live beam that ran out of tokens competes at its length-normalised score: the window's
    # end cut it, not the model (else an early EOS, an empty window, won by default).
    def normalised(beam: tuple) -> float:
        return _normalised(beam[0], beam[1], options.length_penalty)

    if finished:
        score, seq, st = max(finished, key=lambda f: f[0])
        if not ran_out or score >= max(map(normalised, beams)):
            _copy_state(state, st)
            return WindowResult(seq, True, score, len(seq) + 1)
    score, seq, st = max(beams, key=normalised)
    _copy_state(state, st)
    return WindowResult(whole_objects(seq, vocab), False, score, len(seq))


def _settled(finished: list, survivors: list, width: int, length_penalty: float) -> bool:
    """Whether beam search can stop: `width` hypotheses have finished and the best live one,
    normalised at its length now, is no better than the worst of them (transformers' rule).
    Stopping as soon as `width` had finished let two early EOS (an empty window, one object)
    end the search before any longer hypothesis could compete."""
    if len(finished) < width:
        return False
    worst = sorted((f[0] for f in finished), reverse=True)[width - 1]
    return max(_normalised(s[0], s[1], length_penalty) for s in survivors) <= worst


def _normalised(score: float, tokens: list[int], length_penalty: float) -> float:
    """A hypothesis' log-probability per token ** length_penalty, as beam search ranks them."""
    return score / max(len(tokens), 1) ** length_penalty


def whole_objects(tokens: list[int], vocab: Vocab) -> list[int]:
    """`tokens` (generated after a prefix of whole objects) cut after their last whole object:
    a window that ran out of tokens may stop inside one."""
    walker = GrammarWalker(Grammar(vocab.config), State.OBJECT)
    whole = 0
    for i, token in enumerate(tokens):
        walker.step(vocab.category(token))
        if walker.at_object_boundary:
            whole = i + 1
    return tokens[:whole]


def _copy_state(target: SequenceState, source: SequenceState) -> None:
    for key, value in vars(source).items():
        setattr(target, key, value)
