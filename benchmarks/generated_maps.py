"""Maps as kiai generates them (issue 6): on the beat, and at the stars asked for.

Three tables, with the shipped starter model (or `--model`), sampling with seed 0:

1. Known timing. Each song's own timing points (the corpus's real tracks, triangles, circles
   and welcome, whose maps are hand-timed; synthetic songs) as the template: the share of
   generated objects on a tick of that timing (within 1 ms), goal 100%.
2. Estimated timing. The bare audio (kiai estimates the timing): the share of objects within
   10 ms of a 1/4-beat tick of the TRUE timing (goal >= 85%), beside what random placement
   and generation with the true timing give on the same songs. The last column counts the
   true 1/3 ticks too: a swing or shuffle song's notes are on them, and so are kiai's objects
   where it hears the thirds (core.beat_feel). Tables 1 and 2 also map the Frets on Fire
   songs, Planet Blupi's tunes and the General MIDI songs (their first `--gm-seconds`) where
   they are (`--fof`, `--blupi`, `--gm`, see benchmarks/midi_songs.py: real music at its
   composers' tempo). Muldjord's MIDI beats sit 4-6 ms before their songs' onsets, Sectoid's
   27-43 ms before: those four songs' "true" offsets are the charter's, not the music's.
   Blupi's tunes are rendered from their MIDI: exact. The General MIDI renderings sound ~4.5
   ms after their MIDI beats (FluidSynth with FluidR3's attacks), which the 10 ms allows.
3. Star rating. A sweep of requested stars over synthetic songs and the first `--real-seconds`
   of each real track (real music has onsets a synthetic song has not: 1/4 hi-hats almost
   everywhere): |generated - requested|, with one attempt and with kiai's retries (best of 4),
   median and share within 0.5, and the generations it took (mean attempts), per kind of song
   and over all. `--sweep-midi N` adds the first N songs of tables 1 and 2's real music.

With `--tag FACTOR`, table 2 maps a copy of each song's audio whose tags say its first true
tempo x FACTOR (core.audio_tags; 1: a right BPM tag, which settles the estimate's octave).

    PYTHONPATH=. .venv/bin/python benchmarks/generated_maps.py [--synth 4] [--seconds 60]
        [--real-seconds 60] [--tables 123] [--fof DIR] [--blupi DIR] [--gm DIR]
        [--gm-seconds 60] [--tag FACTOR] [--sweep-midi N]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.midi_songs import (
    Song,
    blupi_dir,
    blupi_songs,
    fof_dir,
    fof_songs,
    gm_dir,
    gm_songs,
)
from benchmarks.timing_accuracy import read_real_tracks
from companion.mapping import Target, decoding_options, generate_beatmap, load_generator
from core.audio import SAMPLE_RATE, load_audio
from core.beatmap.model import Beatmap, TimingPoint
from core.beatmap.parser import parse_file
from core.beatmap.ticks import DIVISORS, TickGrid
from core.rhythm import GAP_LEVELS_MS
from core.song_input import SongInput, fresh_template
from core.synth.config import SynthConfig
from core.synth.songs import write_song

STARS = (2.0, 3.0, 4.0, 5.0, 6.0)


def red(points: list[TimingPoint]) -> list[TimingPoint]:
    return [p for p in points if p.uninherited]


def real_songs(root: Path) -> list[tuple[str, Path, Beatmap]]:
    """(name, audio file, hand-made map) of the corpus's real tracks, unpacked into `root`."""
    out = []
    for name, beatmap, audio_name, data in read_real_tracks():
        folder = root / name
        folder.mkdir()
        (folder / audio_name).write_bytes(data)
        beatmap.general["AudioFilename"] = audio_name
        out.append((name, folder / audio_name, beatmap))
    return out


def midi_songs_in(root: Path, songs: list[Song]) -> list[tuple[str, Path, Beatmap]]:
    """(name, audio file, its true timing as a map) of benchmarks.midi_songs' songs, their audio
    written as WAV files under `root`."""
    out = []
    for n, (name, mix, points) in enumerate(songs):
        folder = root / f"midi{n}"
        folder.mkdir()
        path = folder / "audio.wav"
        sf.write(path, mix / max(1.0, float(np.abs(mix).max())), SAMPLE_RATE)
        truth = fresh_template(path)
        truth.timing_points = points
        out.append((name, path, truth))
    return out


def synth_songs(root: Path, count: int, seconds: float, first_seed: int = 100
                ) -> list[tuple[str, Path, Beatmap]]:
    out = []
    for seed in range(count):
        folder = write_song(SynthConfig(out=root / f"s{seed}", seed=first_seed + seed,
                                        duration_s=seconds, difficulties=("Hard",)), 0)
        out.append((f"synth{seed}", folder / "audio.ogg",
                    parse_file(next(folder.glob("*.osu"))).beatmap))
    return out


def cropped_song(name: str, audio: Path, truth: Beatmap, seconds: float
                 ) -> tuple[str, Path, Beatmap]:
    """The song's first `seconds`, as a WAV file beside its audio (its timing still holds)."""
    samples = load_audio(audio)[: int(seconds * SAMPLE_RATE)]
    path = audio.parent / f"first{seconds:g}s.wav"
    sf.write(path, samples, SAMPLE_RATE)
    return name, path, truth


def template_of(beatmap: Beatmap, audio: Path) -> Beatmap:
    template = copy.deepcopy(beatmap)
    template.hit_objects = []
    template.general["AudioFilename"] = audio.name
    return template


def share_on(times: list[float], points: list[TimingPoint], divisors: tuple[int, ...],
             tolerance: float) -> float:
    ticks = TickGrid(points, divisors)
    return float(np.mean([ticks.snap(t, tolerance) is not None for t in times])) if times \
        else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synth", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--synth-seed", type=int, default=100,
                        help="the first synthetic song's seed (the star table was set on 100-102)")
    parser.add_argument("--real-seconds", type=float, default=60.0,
                        help="how much of each real track the star sweep maps (0: none)")
    parser.add_argument("--caps", nargs="+", default=["on"], choices=["on", "off"],
                        help="star sweep with kiai's caps on short gaps (core.rhythm), without "
                             "them (`off`: no limit), or both side by side (`on off`)")
    parser.add_argument("--tables", default="123", help="which tables to print, e.g. 3")
    parser.add_argument("--stars", type=float, nargs="+", default=list(STARS),
                        help="the star sweep's requests")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--fof", type=Path, default=fof_dir())
    parser.add_argument("--blupi", type=Path, default=blupi_dir())
    parser.add_argument("--gm", type=Path, default=gm_dir())
    parser.add_argument("--gm-seconds", type=float, default=60.0)
    parser.add_argument("--sweep-midi", type=int, default=0, metavar="N",
                        help="table 3 also maps the first N songs of the real music with MIDI")
    parser.add_argument("--tag", type=float, default=None, metavar="FACTOR",
                        help="table 2: the audio tagged with its first true tempo x FACTOR")
    args = parser.parse_args()
    generator = load_generator(args.model)
    options = decoding_options(seed=0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        songs = [*real_songs(Path(tmp)),
                 *synth_songs(Path(tmp), args.synth, args.seconds, args.synth_seed)]
        midi = midi_songs_in(Path(tmp), [*fof_songs(args.fof), *blupi_songs(args.blupi),
                                         *gm_songs(args.gm, args.gm_seconds)]
                             ) if set(args.tables) & {"1", "2"} or args.sweep_midi else []
        if "1" in args.tables:
            known_timing(generator, [*songs, *midi], options)
        if "2" in args.tables:
            estimated_timing(generator, [*songs, *midi], options, rng, args.tag, Path(tmp))
        if "3" in args.tables:
            real = songs[: len(songs) - args.synth]
            cropped = [cropped_song(name, audio, truth, args.real_seconds)
                       for name, audio, truth in real] if args.real_seconds > 0 else []
            for caps in args.caps:
                uncapped = dataclasses.replace(options, gap_shares=(1.0,) * len(GAP_LEVELS_MS))
                star_sweep(generator, [*cropped, *songs[len(real):], *midi[:args.sweep_midi]],
                           options if caps == "on" else uncapped, caps, args.stars)


def known_timing(generator, songs, options) -> None:
    print("1. known timing: objects on a tick of the map's timing (within 1 ms)")
    print(f"{'song':<10} {'objects':>7} {'on tick':>8} {'stars':>6} {'time s':>7}")
    for name, audio, truth in songs:
        start = time.perf_counter()
        made = generate_beatmap(generator, SongInput(audio.parent, audio,
                                                     template_of(truth, audio)),
                                Target(stars=4.0), options, max_attempts=1)
        times = [o.time for o in made.beatmap.hit_objects]
        on_tick = share_on(times, made.beatmap.timing_points, DIVISORS, 1.0)
        print(f"{name[:10]:<10} {len(times):>7} {on_tick:>8.1%} {made.stars:>6.2f} "
              f"{time.perf_counter() - start:>7.1f}")



def tagged_copy(audio: Path, bpm: float, folder: Path) -> Path:
    """A copy of `audio` in `folder` whose tags say `bpm`: ID3 TBPM (mp3, wav) or a Vorbis
    comment (ogg)."""
    from mutagen.id3 import ID3, TBPM, ID3NoHeaderError
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    folder.mkdir(parents=True, exist_ok=True)
    copied = Path(shutil.copy(audio, folder / audio.name))
    if copied.suffix.lower() == ".ogg":
        tags = OggVorbis(copied)
        tags["BPM"] = f"{bpm:g}"
        tags.save()
        return copied
    if copied.suffix.lower() == ".wav":
        wave = WAVE(copied)
        if wave.tags is None:
            wave.add_tags()
        wave.tags.add(TBPM(encoding=3, text=[f"{bpm:g}"]))
        wave.save()
        return copied
    try:
        tags = ID3(copied)
    except ID3NoHeaderError:
        tags = ID3()
    tags.delall("TBPM")
    tags.add(TBPM(encoding=3, text=[f"{bpm:g}"]))
    tags.save(copied)
    return copied


def estimated_timing(generator, songs, options, rng, tag: float | None = None,
                     work: Path | None = None) -> None:
    told = f", the audio tagged {tag:g}x its true tempo" if tag is not None else ""
    print(f"\n2. estimated timing{told}: objects within 10 ms of a 1/4 tick of the TRUE timing")
    print(f"{'song':<10} {'est BPM':>8} {'true BPM':>8} {'kiai':>6} {'random':>7} "
          f"{'true timing':>11} {'kiai 1/3|1/4':>12}")
    shares = []
    for i, (name, audio, truth) in enumerate(songs):
        if tag is not None:
            audio = tagged_copy(audio, red(truth.timing_points)[0].bpm * tag,
                                work / "tagged" / str(i))
        made = generate_beatmap(generator, SongInput(audio.parent, audio,
                                                     fresh_template(audio)),
                                Target(stars=4.0), options, max_attempts=1)
        with_truth = generate_beatmap(generator, SongInput(audio.parent, audio,
                                                           template_of(truth, audio)),
                                      Target(stars=4.0), options, max_attempts=1)
        times = [o.time for o in made.beatmap.hit_objects]
        end = max(times) if times else 60_000.0
        random_times = list(rng.uniform(red(truth.timing_points)[0].time, end, 2000))
        quarter = (1, 2, 4)
        ours = share_on(times, truth.timing_points, quarter, 10.0)
        shares.append(ours)
        est = red(made.beatmap.timing_points)
        true_times = [o.time for o in with_truth.beatmap.hit_objects]
        print(f"{name[:10]:<10} {est[0].bpm if est else float('nan'):>8.2f} "
              f"{red(truth.timing_points)[0].bpm:>8.2f} {ours:>6.1%} "
              f"{share_on(random_times, truth.timing_points, quarter, 10.0):>7.1%} "
              f"{share_on(true_times, truth.timing_points, quarter, 10.0):>11.1%} "
              f"{share_on(times, truth.timing_points, (1, 2, 3, 4), 10.0):>12.1%}")
    print(f"median over songs: {statistics.median(shares):.1%}")



def star_sweep(generator, songs, options, caps: str = "on", requests=STARS) -> None:
    print(f"\n3. star rating: |generated - requested| over a sweep (short-gap caps {caps})")
    one, best, kinds, attempts = [], [], [], []
    for name, audio, truth in songs:
        for stars in requests:
            source = SongInput(audio.parent, audio, template_of(truth, audio))
            retries: list[float] = []
            made = generate_beatmap(generator, source, Target(stars=stars), options,
                                    on_retry=lambda n, b, r=retries: r.append(b))
            first = retries[0] if retries else made.stars
            one.append(abs(first - stars))
            best.append(abs(made.stars - stars))
            attempts.append(made.attempts)
            kinds.append("synthetic" if name.startswith("synth") else "real")
            limits = ("/".join(f"{c:.2f}" for c in made.gap_shares) if made.gap_shares
                      else "none")
            print(f"{name[:10]:<10} asked {stars:.1f}: first {first:.2f}, kept {made.stars:.2f} "
                  f"({made.attempts} attempt{'s' if made.attempts > 1 else ''}; spacing "
                  f"{made.spacing:.2f} px/ms, density bias {made.density_bias:+.2f}, "
                  f"short-gap caps {limits})", flush=True)
    print(f"{'songs':<10} {'attempts':<13} {'median error':>12} {'within 0.5':>11} {'maps':>5} "
          f"{'generations':>11}")
    for kind in ("real", "synthetic", "all"):
        chosen = [i for i, k in enumerate(kinds) if kind in (k, "all")]
        for label, errors in (("one", one), ("with retries", best)):
            values = np.array([errors[i] for i in chosen])
            if len(values):
                runs = len(values) if label == "one" else sum(attempts[i] for i in chosen)
                print(f"{kind:<10} {label:<13} {np.median(values):>12.2f} "
                      f"{np.mean(values <= 0.5):>11.0%} {len(values):>5} {runs:>11}")


if __name__ == "__main__":
    main()
