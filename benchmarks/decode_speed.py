"""Decoding speed: the KV cache against full recompute (the seed's loop), side by side.

For each model preset and length N, both methods greedily generate the same STEPS tokens after
the same prefix of N - STEPS tokens, with a 16 s audio window, batch 1, on this machine's CPU
threads. "tok/s at N" is that marginal rate: the cost of a token once the sequence is N long.
The greedy outputs of both methods must be identical. The cached method's one-off prefill (the
prefix fed at once, as a window's start does) is timed apart and printed in its own column; it
is not in the marginal rate (before, it was, which put a 2,016-token prefill into the cost of 32
tokens and understated the cache at 2048 tokens ~3x). "cached" steps through
core.incremental.StepDecoder, as decoding does; "module tok/s" is the same cache stepped through
Decoder.forward, for the dispatch it saves; "int8 tok/s" is StepDecoder at precision int8 (int8
weights, bfloat16 blocks and cache, which is cast once after the prefill and timed with it, as
a window's other one-off work; its greedy tokens are not compared: random weights give
near-flat logits, where ~1% moves the argmax; benchmarks/learning.py --precision int8 measures
its maps). Weights are random (speed does not depend on training); `--song` adds an end-to-end
run of `Generator.generate` over a long song at both precisions.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.incremental import StepDecoder
from core.model import MapModel, pointer_fields, preset_dims
from core.tokens.vocab import DEFAULT, Vocab

STEPS = 32
LENGTHS = (256, 1024, 2048)
FRAMES = 3200  # 16 s of 5 ms frames


@torch.inference_mode()
def cached(model: MapModel, audio, cond, prefix, times, fast: bool = True,
           precision: str = "float32") -> tuple[list[int], float, float]:
    """(tokens, prefill seconds, seconds for the STEPS tokens after it). `fast`: one token a
    step through core.incremental's StepDecoder, as decoding runs; else Decoder.forward."""
    cache = model.new_cache()
    n = prefix.shape[1]
    step = StepDecoder(model.decoder, precision) if fast else None  # once per model: untimed
    start = time.perf_counter()
    logits = model.decoder(prefix, audio, cond, cache, times[:, :n])[0, -1]
    if step is not None:  # int8 steps read a bfloat16 cache: cast once per window, as prefill
        cache.cast(step.block_dtype)
    filled = time.perf_counter()
    out = []
    for i in range(STEPS):
        token = int(torch.argmax(logits))
        out.append(token)
        now = times[:, n + i: n + i + 1]
        if step is not None:
            logits = step(torch.tensor([[token]]), audio, cond, cache, now)[0]
        else:
            logits = model.decoder(torch.tensor([[token]]), audio, cond, cache, now)[0, -1]
    return out, filled - start, time.perf_counter() - filled


@torch.inference_mode()
def recompute(model: MapModel, audio, cond, prefix, times) -> tuple[list[int], float]:
    seq = prefix
    out = []
    start = time.perf_counter()
    for _ in range(STEPS):
        token = int(torch.argmax(model.decoder(seq, audio, cond, times=times[:, :seq.shape[1]])
                                 [0, -1]))
        out.append(token)
        seq = torch.cat([seq, torch.tensor([[token]])], dim=1)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "seed"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--song", action="store_true",
                        help="Also time `Generator.generate` over a 3-minute synthetic song with "
                             "the shipped starter model.")
    args = parser.parse_args()
    vocab = Vocab(DEFAULT)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {STEPS} greedy steps "
          f"per measurement, median of {args.repeats}")
    print(f"{'preset':<7}{'tokens':>7}{'cached tok/s':>14}{'recompute tok/s':>17}{'speedup':>9}"
          f"{'same output':>13}{'prefill s':>11}{'module tok/s':>14}{'int8 tok/s':>12}"
          f"{'int8 x':>8}")
    for name in args.presets:
        torch.manual_seed(0)
        model = MapModel(preset_dims(name, len(vocab), **pointer_fields(vocab))).eval()
        mel = torch.randn(1, 80, FRAMES)
        cond = torch.tensor([[9.0, 4.0, 8.0, 6.0, 5.0]])
        with torch.inference_mode():
            audio = model.encoder(mel)
        for n in LENGTHS:
            prefix = torch.randint(3, len(vocab), (1, n - STEPS), generator=torch.Generator()
                                   .manual_seed(n))
            # cursor times as a window's tokens have them: rising through the 16 s window
            times = torch.linspace(0.0, 15_000.0, n)[None].round()
            a_times, b_times, m_times, q_times, fills, same = [], [], [], [], [], True
            for _ in range(args.repeats):
                a, fill, ta = cached(model, audio, cond, prefix, times)
                b, tb = recompute(model, audio, cond, prefix, times)
                m, _, tm = cached(model, audio, cond, prefix, times, fast=False)
                q_times.append(cached(model, audio, cond, prefix, times, precision="int8")[2])
                a_times.append(ta)
                b_times.append(tb)
                m_times.append(tm)
                fills.append(fill)
                same &= a == b == m
            ta, tb = statistics.median(a_times), statistics.median(b_times)
            print(f"{name:<7}{n:>7}{STEPS / ta:>14.1f}{STEPS / tb:>17.1f}{tb / ta:>9.1f}"
                  f"{'yes' if same else 'NO':>13}{statistics.median(fills):>11.2f}"
                  f"{STEPS / statistics.median(m_times):>14.1f}"
                  f"{STEPS / statistics.median(q_times):>12.1f}"
                  f"{ta / statistics.median(q_times):>8.2f}")
    if args.song:
        song_end_to_end()


def song_end_to_end() -> None:
    """A 180 s synthetic song, start to end, as `kiai generate` runs it (features included),
    with the shipped starter at both precisions; then the `seed` preset (random weights, the
    starter's window length) made to choose the very tokens the starter chose: the same
    windows, prefixes, constraint filtering and token count, with the seed preset's compute.
    There is no trained seed-preset model to ship; this is its cost for a real map's tokens."""
    import tempfile

    import core.decoding
    from core.audio import FRAME_MS, audio_features
    from core.beatmap.parser import parse_file
    from core.decoding import DecodingOptions
    from core.generate import Generator
    from core.starter import default_model_path
    from core.synth.config import SynthConfig
    from core.synth.songs import write_song

    path = default_model_path()
    if path is None:
        print("no starter model in this checkout: end-to-end run skipped")
        return
    choose = core.decoding.choose
    chosen: list[tuple[int, float]] = []

    def recording(*args):
        chosen.append(choose(*args))
        return chosen[-1]

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_song(SynthConfig(out=Path(tmp), seed=3, duration_s=180.0), 0)
        template = parse_file(next(folder.glob("*[[]Hard[]].osu"))).beatmap
        template.hit_objects = []
        starter = Generator.from_checkpoint(path)
        torch.manual_seed(0)
        seed_model = MapModel(dataclasses.replace(
            preset_dims("seed", len(starter.vocab), **pointer_fields(starter.vocab)),
            beat_grid=starter.model.dims.beat_grid)).eval()
        seed = Generator(seed_model, starter.vocab, starter.windows)

        def run(generator: Generator, precision: str) -> tuple[float, int]:
            start = time.perf_counter()
            mel = audio_features(folder / "audio.ogg")
            objects = generator.generate(mel, template, [8.0, 4.0, 7.5, 5.5, 4.0], 0.0,
                                         mel.shape[-1] * FRAME_MS,
                                         options=DecodingOptions(seed=0, precision=precision))
            return time.perf_counter() - start, len(objects)

        print()
        core.decoding.choose = recording
        try:
            took, objects = run(starter, "float32")
        finally:
            core.decoding.choose = choose
        print(f"3-minute song, small starter model, sampling, float32: {took:.1f} s end to end "
              f"({objects} objects, {len(chosen)} tokens)")
        took, objects = run(starter, "int8")
        print(f"3-minute song, small starter model, sampling, int8: {took:.1f} s end to end "
              f"({objects} objects)")
        for precision in ("float32", "int8"):
            core.decoding.choose = _replaying(chosen)
            try:
                took, objects = run(seed, precision)
            finally:
                core.decoding.choose = choose
            print(f"3-minute song, seed preset choosing the starter's tokens, {precision}: "
                  f"{took:.1f} s end to end ({objects} objects)")


def _replaying(chosen: list[tuple[int, float]]):
    """A stand-in for core.decoding.choose that returns `chosen`, in order, whatever the
    logits."""
    replay = iter(chosen)

    def choose(*_args):
        try:
            return next(replay)
        except StopIteration:
            raise RuntimeError("the replay asked for more tokens than were recorded") from None
    return choose


if __name__ == "__main__":
    main()
