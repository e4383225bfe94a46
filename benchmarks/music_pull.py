"""Whether generated maps sit on the music: the music's pull (core.music_pull) off and on.

Real songs with known timing (the corpus's three osu! tracks, and Frets on Fire and Blupi
songs where fetched: benchmarks/fetch_music.sh) and synthetic ones, their first `--seconds`,
mapped at each of `--stars` with each pull weight. Per map, over the 1/4 ticks of the true
timing from its first to its last object:
- onset AUC: how often a tick with an object's head has a stronger onset than one without
  (0.5: no relation). The onset is measured apart from the pull's own envelope: broadband
  spectral flux of a plain 1024-point STFT, 10 ms hops, its peak within 15 ms of the tick
  moved by the lag (up to 60 ms) that puts the beats on their onsets.
- beats with a head, and heads on 1/4 off-ticks (ranked maps at 4+ stars, QA session 24:
  median 79% and 12%; kiai without the pull 45-61% and 35-49%), and of those heads the share
  on a quiet tick (an onset under QUIET x the beats' median: a 1/4 note nothing plays);
- stars (one attempt).
Each pull weight runs with each `--quiet-nats` (DecodingOptions.quiet_nats).

    .venv/bin/python benchmarks/music_pull.py [--stars 3 5] [--weights 0 6] [--seconds 60]
        [--quiet-nats 0 6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.generated_maps import (
    blupi_dir,
    blupi_songs,
    cropped_song,
    fof_dir,
    fof_songs,
    midi_songs_in,
    real_songs,
    synth_songs,
    template_of,
)
from companion.mapping import Target, decoding_options, generate_beatmap, load_generator
from core.audio import SAMPLE_RATE, load_audio
from core.beatmap.model import Beatmap, Spinner
from core.music_pull import PULL_NATS, QUIET_NATS
from core.song_input import SongInput

HOP_MS = 10.0
REACH_MS = 15.0
ALIGN_FRAMES = 6  # onsets looked for up to 60 ms from the true timing's beats
QUIET = 0.3  # a tick whose onset is under this x the beats' median is quiet


def flux(audio: np.ndarray) -> np.ndarray:
    """Broadband spectral flux per HOP_MS frame (frame i centred at i * HOP_MS ms)."""
    hop = int(SAMPLE_RATE * HOP_MS / 1000)
    spec = torch.stft(torch.from_numpy(audio.astype(np.float32)), 1024, hop_length=hop,
                      window=torch.hann_window(1024), return_complex=True).abs()
    log = torch.log1p(100.0 * spec)
    rise = torch.clamp(log[:, 1:] - log[:, :-1], min=0.0).sum(0)
    return np.concatenate([[0.0], rise.numpy()])


def measures(beatmap: Beatmap, truth: Beatmap, onsets: np.ndarray
             ) -> tuple[float, float, float, float]:
    """(onset AUC, share of beats with a head, share of heads on 1/4 off-ticks, share of those
    on a quiet tick: an onset under QUIET x the beats' median)."""
    red = [p for p in truth.timing_points if p.uninherited]
    heads = np.array([o.time for o in beatmap.hit_objects if not isinstance(o, Spinner)])
    if len(heads) < 2:
        return float("nan"), float("nan"), float("nan"), float("nan")
    times, quarter = [], []
    for i, point in enumerate(red):
        end = red[i + 1].time if i + 1 < len(red) else heads[-1] + 1
        step = point.beat_length / 4
        k = np.arange(max(0, int(np.ceil((max(heads[0], point.time) - point.time) / step))),
                      int((min(end, heads[-1] + 1) - point.time) / step) + 1)
        times.append(point.time + k * step)
        quarter.append(k % 4)
    ticks, place = np.concatenate(times), np.concatenate(quarter)
    hit = np.abs(heads[None, :] - ticks[:, None]).min(axis=1) <= 2.0
    reach = int(REACH_MS / HOP_MS)

    def strength_at(shift: int) -> np.ndarray:
        frame = np.round(ticks / HOP_MS).astype(int) + shift
        return np.array([onsets[max(f - reach, 0): f + reach + 1].max()
                         if 0 <= f < len(onsets) else 0.0 for f in frame])

    # where the ticks' onsets are: hand-made timing sits up to 50 ms before them
    shift = max(range(-ALIGN_FRAMES, ALIGN_FRAMES + 1),
                key=lambda s: float(strength_at(s)[place == 0].mean()))
    strength = strength_at(shift)
    a, b = strength[hit], strength[~hit]
    auc = float((a[:, None] > b[None, :]).mean() + 0.5 * (a[:, None] == b[None, :]).mean()) \
        if len(a) and len(b) else float("nan")
    beats = place == 0
    off = np.isin(place, (1, 3))
    quiet = strength < QUIET * float(np.median(strength[beats]))
    return (auc, float(hit[beats].mean()), float(hit[off].sum() / max(hit.sum(), 1)),
            float((hit & off & quiet).sum() / max((hit & off).sum(), 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stars", type=float, nargs="+", default=[3.0, 5.0])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, PULL_NATS])
    parser.add_argument("--quiet-nats", type=float, nargs="+", default=[QUIET_NATS],
                        help="DecodingOptions.quiet_nats values to compare")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--midi", type=int, default=4, help="Frets on Fire / Blupi songs to add")
    parser.add_argument("--synth", type=int, default=2, help="synthetic songs to add")
    args = parser.parse_args()
    generator = load_generator(None)
    variants = [(w, q) for w in args.weights for q in args.quiet_nats]
    rows: dict[tuple[float, float], list[tuple]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        songs = real_songs(Path(tmp))
        midi = [*fof_songs(fof_dir()), *blupi_songs(blupi_dir())][: args.midi]
        songs += midi_songs_in(Path(tmp), midi)
        songs += synth_songs(Path(tmp), args.synth, args.seconds)
        print(f"{'song':<22} {'stars':>5} {'pull':>5} {'quiet':>5} {'AUC':>5} {'beats':>6} "
              f"{'1/4 off':>8} {'of them quiet':>13} {'got':>5}")
        for name, audio, truth in songs:
            name, audio, truth = cropped_song(name, audio, truth, args.seconds)
            onsets = flux(load_audio(audio))
            for stars in args.stars:
                for weight, quiet in variants:
                    options = decoding_options(seed=0)
                    options = type(options)(**{**vars(options), "music_pull": weight,
                                               "quiet_nats": quiet})
                    made = generate_beatmap(generator, SongInput(audio.parent, audio,
                                                                 template_of(truth, audio)),
                                            Target(stars=stars), options, max_attempts=1)
                    found = measures(made.beatmap, truth, onsets)
                    rows[(weight, quiet)].append((*found, made.stars - stars))
                    auc, beats, off, silent = found
                    print(f"{name[:22]:<22} {stars:>5.1f} {weight:>5.1f} {quiet:>5.1f} "
                          f"{auc:>5.2f} {beats:>6.1%} {off:>8.1%} {silent:>13.1%} "
                          f"{made.stars:>5.2f}", flush=True)
    print(f"\n{'pull':>5} {'quiet':>5} {'AUC':>5} {'beats':>6} {'1/4 off':>8} "
          f"{'of them quiet':>13} {'stars - asked':>14} (medians)")
    for (weight, quiet), values in rows.items():
        auc, beats, off, silent, miss = (float(np.nanmedian([v[i] for v in values]))
                                         for i in range(5))
        print(f"{weight:>5.1f} {quiet:>5.1f} {auc:>5.2f} {beats:>6.1%} {off:>8.1%} "
              f"{silent:>13.1%} {miss:>+14.2f}")


if __name__ == "__main__":
    main()
