"""Timing from audio on real music whose tempo drifts: does kiai follow it? Prints a table.

A live band's tempo wanders; the real songs here were recorded or rendered to a click, so each is
made to drift: its first `--seconds` resampled so that the tempo goes linearly in time by each of
`--ramps` (+4%: an accelerando ending 4% faster), which moves every true beat where the ramp puts
it (linearly in time: the model core.tempo_drift fits, so this is its best case; a band's drift
is not exactly linear). Per song and ramp, the share of true beats (after the first 2 s) within
10 ms of an estimated beat (a tempo read at twice the true one still counts: this measures
following the drift, not the octave), with core.tempo_drift on and off side by side in one
run, and the red lines it writes. The medians are over the songs whose
unramped estimate (the first ramp, when it is 0) has 80% of its beats right: a song whose octave
or offset is missed without any drift says nothing about following one.

Songs: the corpus's three hand-timed tracks, and the Frets on Fire songs, Planet Blupi's tunes and
the General MIDI songs where they are (`--fof`, `--blupi`, `--gm`, see benchmarks/midi_songs.py).

    .venv/bin/python benchmarks/drift_accuracy.py [--seconds 100]
        [--ramps 0 0.02 -0.02 0.04 -0.04] [--fof DIR] [--blupi DIR] [--gm DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.midi_songs import blupi_dir, blupi_songs, fof_dir, fof_songs, gm_dir, gm_songs
from benchmarks.timing_accuracy import real_tracks
from core.audio import LATENCY_MS, SAMPLE_RATE
from core.beatmap.model import TimingPoint
from core.tempo import estimate_timing


def beats_ms(points: list[TimingPoint], until_ms: float) -> np.ndarray:
    """Every beat of the red lines `points` (each up to the next, the last up to `until_ms`),
    in ms of the audio (not beatmap time)."""
    ends = [p.time for p in points[1:]] + [until_ms]
    beats = [np.arange(p.time, end, p.beat_length) for p, end in zip(points, ends)]
    return np.concatenate(beats) + LATENCY_MS


def drifted(audio: np.ndarray, seconds: float, ramp: float) -> tuple[np.ndarray, np.ndarray]:
    """(the first `seconds` of `audio` played at a rate going linearly from 1 to 1 + ramp,
    the input time in ms of each output ms)."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    source = np.cumsum(1.0 + ramp * t / seconds) / SAMPLE_RATE  # input s at each output sample
    out = np.interp(source, np.arange(len(audio)) / SAMPLE_RATE, audio).astype(np.float32)
    ms = np.arange(int(seconds * 1000))
    return out, np.interp(ms / 1000, t, source) * 1000


def share_on(beats: np.ndarray, ticks: np.ndarray) -> float:
    """The share of `beats` within 10 ms of one of `ticks`."""
    ticks = np.sort(ticks)
    i = np.clip(np.searchsorted(ticks, beats), 1, len(ticks) - 1)
    near = np.minimum(np.abs(ticks[i] - beats), np.abs(ticks[i - 1] - beats))
    return float(np.mean(near <= 10.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=100.0)
    parser.add_argument("--ramps", type=float, nargs="+", default=[0, 0.02, -0.02, 0.04, -0.04])
    parser.add_argument("--fof", type=Path, default=fof_dir())
    parser.add_argument("--blupi", type=Path, default=blupi_dir())
    parser.add_argument("--gm", type=Path, default=gm_dir())
    args = parser.parse_args()
    songs = [*real_tracks(), *fof_songs(args.fof), *blupi_songs(args.blupi, args.seconds),
             *gm_songs(args.gm, args.seconds)]
    print(f"{len(songs)} songs, first {args.seconds:g} s; share of true beats within 10 ms of an "
          "estimated beat, drift off -> on (red lines with it on)")
    print(f"{'song':<12}" + "".join(f"{f'ramp {r * 100:+.0f}%':>22}" for r in args.ramps))
    shares: dict[float, list[tuple[float, float]]] = {r: [] for r in args.ramps}
    for name, audio, points in songs:
        row = f"{name[:12]:<12}"
        for ramp in args.ramps:
            out, source_ms = drifted(audio, args.seconds, ramp)
            # true beats: where the input's beats land in output time
            beats = np.interp(beats_ms(points, args.seconds * 1000), source_ms,
                              np.arange(len(source_ms), dtype=np.float64))
            beats = beats[(beats > 2000) & (beats < source_ms.shape[0] - 100)]
            with mock.patch("core.tempo.drift_lines",
                            lambda env, period, beat, *rest: [(beat, period)]):
                steady = estimate_timing(out, name=name)
            following = estimate_timing(out, name=name)
            until = args.seconds * 1000
            pair = (share_on(beats, beats_ms(steady, until)),
                    share_on(beats, beats_ms(following, until)))
            shares[ramp].append(pair)
            row += f"{pair[0] * 100:>9.0f}% ->{pair[1] * 100:>4.0f}% ({len(following):>2})"
        print(row, flush=True)
    # songs timed right when steady: the others (an octave or offset missed without any drift)
    # say nothing about following one
    right = [i for i, (a, _) in enumerate(shares[args.ramps[0]]) if a >= 0.8] \
        if args.ramps[0] == 0 else list(range(len(songs)))
    if not right:
        print("no song timed right without a ramp: no medians")
        return
    print(f"{'median':<12}" + "".join(
        f"{statistics.median(shares[r][i][0] for i in right) * 100:>9.0f}% ->"
        f"{statistics.median(shares[r][i][1] for i in right) * 100:>4.0f}%     "
        for r in args.ramps) + f"  ({len(right)} songs"
        + (" timed right without a ramp)" if args.ramps[0] == 0 else ")"))


if __name__ == "__main__":
    main()
