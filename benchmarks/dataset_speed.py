"""Data set build throughput (maps per second) over a folder of synthetic songs, by worker count.

`kiai synth` writes SONGS songs of DURATION seconds (five difficulties each, 44.1 kHz OGG, as
osu! songs ship) into a temporary Songs folder; that takes a while and is not timed. Each round
then runs discovery and `core.dataset.build` into a fresh output folder with 1 and 2 worker
processes, and a rerun over the finished data set (every set already done). Two workers start
a pool: the first round also starts the fork server (it imports torch, ~2 s) that later rounds
reuse; each round forks fresh workers. `load` is the 1-minute load average after the row: on a
shared machine, above the core count the extra worker has no core of its own. A last line
splits one process's time into the stages of a set: audio (decode, resample, log-mel, float16
.npy write), parsing, tokenizing, star rating (rosu-pp-py).

    .venv/bin/python benchmarks/dataset_speed.py [--songs 12] [--duration 90] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import rosu_pp_py  # noqa: E402
import torch  # noqa: E402

from core.beatmap.parser import parse_bytes  # noqa: E402
from core.dataset import BuildConfig, build  # noqa: E402
from core.dataset_loader import WindowDataset, collate  # noqa: E402
from core.feature_cache import FeatureCache  # noqa: E402
from core.songs import discover  # noqa: E402
from core.synth import SynthConfig, write_song  # noqa: E402
from core.tokens.tokenizer import tokenize  # noqa: E402
from core.tokens.vocab import DEFAULT, Vocab  # noqa: E402


def timed_build(songs: Path, out: Path, workers: int) -> tuple[float, int]:
    """(seconds, maps) of discovery plus a build into `out`."""
    start = time.perf_counter()
    sets, _ = discover(songs)
    result = build(sets, BuildConfig(out=out, vocab=DEFAULT, workers=workers))
    return time.perf_counter() - start, result.maps


def stages(songs: Path, scratch: Path) -> dict[str, float]:
    """Seconds per stage of building every set in this process, one torch thread."""
    torch.set_num_threads(1)
    vocab = Vocab(DEFAULT)
    cache = FeatureCache(scratch)
    spent = dict.fromkeys(("discover", "audio", "parse", "tokenize", "stars"), 0.0)
    clock = time.perf_counter()
    sets, _ = discover(songs)
    spent["discover"] = time.perf_counter() - clock
    for song_set in sets:
        with song_set.open() as read:
            clock = time.perf_counter()
            for audio in {m.audio for m in song_set.maps}:
                cache.features(read(audio), audio)
            spent["audio"] += time.perf_counter() - clock
            for entry in song_set.maps:
                data = read(entry.member)
                clock = time.perf_counter()
                beatmap = parse_bytes(data).beatmap
                parsed = time.perf_counter()
                tokenize(beatmap, vocab)
                tokenized = time.perf_counter()
                rosu_pp_py.Difficulty().calculate(rosu_pp_py.Beatmap(content=data))
                spent["parse"] += parsed - clock
                spent["tokenize"] += tokenized - parsed
                spent["stars"] += time.perf_counter() - tokenized
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=12)
    parser.add_argument("--duration", type=float, default=90.0, help="seconds per song")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, rosu-pp-py; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        songs = Path(folder) / "Songs"
        config = SynthConfig(out=songs, count=args.songs, seed=7, duration_s=args.duration)
        clock = time.perf_counter()
        for index in range(args.songs):
            write_song(config, index)
        print(f"{args.songs} synthetic songs x {args.duration:.0f} s x 5 difficulties "
              f"(synthesis {time.perf_counter() - clock:.0f} s, untimed); "
              f"median of {args.rounds} rounds")
        print(f"{'build':<26}{'seconds':>9}{'maps':>6}{'maps/s':>9}{'x realtime':>12}"
              f"{'load':>6}")
        for workers in (1, 2):
            times, maps = [], 0
            for round_ in range(args.rounds):
                out = Path(folder) / f"out-{workers}-{round_}"
                seconds, maps = timed_build(songs, out, workers)
                times.append(seconds)
            seconds = statistics.median(times)
            print(f"{f'{workers} worker(s), from scratch':<26}{seconds:>9.2f}{maps:>6}"
                  f"{maps / seconds:>9.1f}{args.songs * args.duration / seconds:>11.0f}x"
                  f"{os.getloadavg()[0]:>6.1f}")
            resumed, _ = timed_build(songs, Path(folder) / f"out-{workers}-0", workers)
            print(f"{f'{workers} worker(s), rerun (done)':<26}{resumed:>9.2f}{maps:>6}"
                  f"{maps / resumed:>9.0f}{'':>12}{os.getloadavg()[0]:>6.1f}")
        windows = WindowDataset(Path(folder) / "out-1-0")
        order = np.random.default_rng(0).permutation(len(windows)).tolist()  # as an epoch is
        clock = time.perf_counter()
        batch = collate([windows[i] for i in order])
        seconds = time.perf_counter() - clock
        print(f"loader, one process: {len(windows)} windows of {windows.config.window_s:g} s, "
              f"shuffled, in {seconds:.2f} s ({len(windows) / seconds:.0f} windows/s, first touch"
              f" of every map and feature file included), mean "
              f"{batch['token_mask'].sum(1).float().mean():.0f} tokens per window")
        spent = stages(songs, Path(folder) / "stages")
        total = sum(spent.values())
        print(f"one process, by stage: {total:.2f} s = " + ", ".join(
            f"{name} {seconds:.2f} s ({seconds / total:.0%})" for name, seconds in spent.items()))


if __name__ == "__main__":
    sys.exit(main())
