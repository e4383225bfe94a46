"""Whole real songs as kiai maps them from bare audio: where the map leaves the music unmapped.

The tenth starter learned from synthetic songs whose only spinner was the outro and whose maps
never pause. On real music it ended windows early, most often right after a spinner it put in
loud music, leaving seconds of music with nothing to play (the eleventh also saw mid-song
spinners, and no longer does). core.generate asks such a window again
(`WindowOptions.hole_ms`) and takes such a spinner back (`take_back_spinners`); this measures
both, side by side in one run, on the corpus's three real tracks and the Frets on Fire songs
and Planet Blupi's tunes (their first 3 minutes) where they are (`--fof`, `--blupi`, see
benchmarks/midi_songs.py), whole, at `--stars`, one attempt each, seeds 0..`--seeds`-1.

Per variant: spinners before the last object (mid-song) and as the last; gaps over 2 s and over
5 s where the music goes on, between objects and after the last (core.music_presence.music_goes_on:
most of its frames within BREAK_DB of the song's level or busy with onsets, the criterion the
take-back and the fill use; since session 29 a quiet passage whose notes go on counts, so
counts are not comparable with earlier runs); the longest such gap; objects per map and seconds
per map. Breaks, quiet with few onsets, are not counted: maps have them.

    PYTHONPATH=. .venv/bin/python benchmarks/real_song_maps.py [--seeds 2] [--stars 4] [--fof DIR]
        [--blupi DIR] [--model CKPT] [--variants 0 1 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.generated_maps import midi_songs_in, real_songs
from benchmarks.midi_songs import blupi_dir, blupi_songs, fof_dir, fof_songs
from companion.mapping import Target, decoding_options, generate_beatmap, load_generator
from core.audio import FRAME_MS, audio_features
from core.beatmap.model import Circle, Spinner
from core.generate import HOLE_MS
from core.music_presence import music_goes_on, song_music
from core.song_input import SongInput, fresh_template

INF = float("inf")
VARIANTS = {  # name: (hole_ms, take_back_spinners, fill_ms)
    "no asking again": (INF, False, INF),
    "ask again": (HOLE_MS, False, INF),
    "ask again + take back": (HOLE_MS, True, INF),
    "... + fill the music": (HOLE_MS, True, HOLE_MS),
}


def holes(objects, mel) -> list[float]:
    """Gaps (ms) over HOLE_MS where the music goes on: between consecutive objects, and from
    the last one to the end of the audio (where a model that took a spinner for the song's end
    leaves its hole)."""
    music = song_music(mel)
    song_end = Circle(0, 0, mel.shape[-1] * FRAME_MS)
    return [b.time - a.end_time for a, b in itertools.pairwise([*objects, song_end])
            if b.time - a.end_time > HOLE_MS
            and music_goes_on(music, a.end_time, b.time)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--stars", type=float, default=4.0)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--fof", type=Path, default=fof_dir())
    parser.add_argument("--blupi", type=Path, default=blupi_dir())
    parser.add_argument("--variants", nargs="+", type=int, default=list(range(len(VARIANTS))),
                        help="which variants, by number: " + ", ".join(
                            f"{n} {name}" for n, name in enumerate(VARIANTS)))
    args = parser.parse_args()
    variants = {name: VARIANTS[name] for n, name in enumerate(VARIANTS) if n in args.variants}
    base = load_generator(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        songs = [(name, audio) for name, audio, _ in
                 [*real_songs(Path(tmp)), *midi_songs_in(
                     Path(tmp), [*fof_songs(args.fof), *blupi_songs(args.blupi)])]]
        mels = {name: audio_features(audio) for name, audio in songs}
        minutes = sum(m.shape[-1] for m in mels.values()) * FRAME_MS / 60_000
        print(f"{len(songs)} songs ({minutes:.1f} min), "
              f"seeds 0..{args.seeds - 1}, {args.stars:g} stars, one attempt each")
        longest: dict[str, list[str]] = {name: [] for name, _ in songs}
        rows = []
        for variant, (hole_ms, take_back, fill_ms) in variants.items():
            windows = dataclasses.replace(base.windows, hole_ms=hole_ms,
                                          take_back_spinners=take_back, fill_ms=fill_ms)
            generator = dataclasses.replace(base, windows=windows)
            spinners, last_spinners, gaps, objects, seconds = 0, 0, [], [], []
            for name, audio in songs:
                song_gaps = []
                for seed in range(args.seeds):
                    start = time.perf_counter()
                    made = generate_beatmap(generator, SongInput(audio.parent, audio,
                                                                 fresh_template(audio)),
                                            Target(stars=args.stars), decoding_options(seed=seed),
                                            features=lambda _path, n=name: mels[n],
                                            max_attempts=1)
                    seconds.append(time.perf_counter() - start)
                    placed = made.beatmap.hit_objects
                    objects.append(len(placed))
                    spinners += sum(isinstance(o, Spinner) for o in placed[:-1])
                    last_spinners += bool(placed) and isinstance(placed[-1], Spinner)
                    song_gaps += holes(placed, mels[name])
                gaps += song_gaps
                longest[name].append(f"{max(song_gaps, default=0) / 1000:.1f}")
            maps = len(songs) * args.seeds
            rows.append((variant, maps, spinners, last_spinners, sum(g > 2000 for g in gaps),
                         sum(g > 5000 for g in gaps), max(gaps, default=0) / 1000,
                         statistics.mean(objects), statistics.mean(seconds)))
    print(f"\n{'variant':<24} {'maps':>4} {'mid spinners':>12} {'last':>4} {'gaps>2s':>8} "
          f"{'gaps>5s':>8} {'longest s':>9} {'objects':>8} {'s/map':>6}")
    for variant, maps, spin, last, over2, over5, worst, count, secs in rows:
        print(f"{variant:<24} {maps:>4} {spin:>12} {last:>4} {over2:>8} {over5:>8} "
              f"{worst:>9.1f} {count:>8.0f} {secs:>6.1f}")
    print("\nlongest gap in music per song (s), by variant: " + " | ".join(variants))
    for name, values in longest.items():
        print(f"  {name:<24} " + "  ".join(f"{v:>5}" for v in values))


if __name__ == "__main__":
    main()
