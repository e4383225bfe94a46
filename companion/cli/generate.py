"""`kiai generate` (a whole map for a song) and `kiai continue` (the rest of a map from a time).

Both write a new difficulty beside the song, named as osu! names it, and never overwrite a file.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import click

from companion.cli.tokens import load_beatmap
from core.audio import FRAME_MS, AudioError, audio_features
from core.beatmap.model import Beatmap, Difficulty
from core.beatmap.naming import difficulty_filename, unique_version
from core.beatmap.writer import save
from core.checkpoint import CheckpointError
from core.decoding import DecodingOptions
from core.difficulty import condition_vector, settings_for_stars, star_rating
from core.generate import Generator, continue_map
from core.song_input import SongInputError, find_file, resolve
from core.starter import default_model_path

_TIME = re.compile(r"^(?:(\d+):)?(\d+)(?:[.:](\d{1,3}))?$")


def parse_time_ms(text: str) -> float:
    """Milliseconds from `62500`, `1:02.500` or the editor's `01:02:500`."""
    text = text.strip()
    if text.isdigit():
        return float(text)
    match = _TIME.match(text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a time (ms, m:ss.mmm or mm:ss:mmm)")
    minutes, seconds, millis = match.groups()
    return (int(minutes or 0) * 60 + int(seconds)) * 1000.0 + int((millis or "0").ljust(3, "0"))


def decoding_options(f):
    """The sampling options shared by generate and continue (one click option per field)."""
    options = [
        click.option("--sampling", type=click.Choice(["greedy", "sample", "beam"]),
                     default="sample", show_default=True, help="How each token is chosen."),
        click.option("--temperature", type=float, default=1.0, show_default=True),
        click.option("--top-k", type=int, default=None),
        click.option("--top-p", type=float, default=0.95, show_default=True),
        click.option("--beam-size", type=int, default=4, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="The same seed gives the same map."),
        click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
                     help="A checkpoint directory (default: the shipped starter model)."),
        click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                     default=None, help="Where to write (default: a new difficulty beside it)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _options(sampling, temperature, top_k, top_p, beam_size, seed) -> DecodingOptions:
    try:
        return DecodingOptions(method=sampling, temperature=temperature, top_k=top_k,
                               top_p=top_p, beam_size=beam_size, seed=seed)
    except ValueError as e:
        raise click.ClickException(str(e)) from e


def _generator(model_path: Path | None) -> Generator:
    path = model_path or default_model_path()
    if path is None:
        raise click.ClickException("no model: pass --model CHECKPOINT_DIR or build the starter "
                                   "model (see README)")
    try:
        return Generator.from_checkpoint(path)
    except CheckpointError as e:
        raise click.ClickException(str(e)) from e


def _features(audio: Path):
    try:
        return audio_features(audio)
    except AudioError as e:
        raise click.ClickException(str(e)) from e


def _progress(fraction: float) -> None:
    click.echo(f"\rgenerating {fraction:4.0%}", err=True, nl=fraction >= 1.0)
    sys.stderr.flush()


def _write(beatmap: Beatmap, folder: Path, output: Path | None, version: str) -> Path:
    if output is None:
        unique_version(folder, beatmap, version)
        output = folder / difficulty_filename(beatmap)
    try:
        return save(beatmap, output)
    except OSError as e:  # FileExistsError included: never overwrite
        raise click.ClickException(str(e)) from e


@click.command("generate")
@click.argument("song", metavar="AUDIO_OR_SONG_DIR", type=click.Path(path_type=Path))
@click.option("--stars", type=float, default=None, help="Target star rating.")
@click.option("--ar", type=float, default=None)
@click.option("--cs", type=float, default=None)
@click.option("--od", type=float, default=None)
@click.option("--hp", type=float, default=None)
@decoding_options
def generate_command(song: Path, stars, ar, cs, od, hp, sampling, temperature, top_k, top_p,
                     beam_size, seed, model_path, output) -> None:
    """Write a new difficulty for a song (an audio file, or a song folder)."""
    try:
        source = resolve(song)
    except SongInputError as e:
        raise click.ClickException(str(e)) from e
    options = _options(sampling, temperature, top_k, top_p, beam_size, seed)
    generator = _generator(model_path)
    target = 4.0 if stars is None else stars
    typical = settings_for_stars(target)
    chosen = [typical[i] if v is None else v for i, v in enumerate((ar, cs, od, hp))]
    template = copy.deepcopy(source.template)
    template.difficulty = Difficulty(hp=chosen[3], cs=chosen[1], od=chosen[2], ar=chosen[0],
                                     slider_multiplier=template.difficulty.slider_multiplier,
                                     slider_tick_rate=template.difficulty.slider_tick_rate)
    mel = _features(source.audio)
    song_ms = mel.shape[-1] * FRAME_MS
    objects = generator.generate(mel, template, condition_vector(template.difficulty, target),
                                 0.0, song_ms, options=options, progress=_progress)
    beatmap = copy.deepcopy(template)
    beatmap.hit_objects = objects
    beatmap.format_version = 14
    written = _write(beatmap, source.folder, output, f"kiai {target:.1f}")
    click.echo(f"wrote {written} ({len(objects)} objects, {star_rating(beatmap):.2f} stars)")


@click.command("continue")
@click.argument("beatmap_path", metavar="MAP.osu", type=click.Path(path_type=Path))
@click.option("--from", "from_text", required=True, metavar="TIME",
              help="Generate from here (ms, m:ss.mmm or the editor's mm:ss:mmm).")
@click.option("--until", "until_text", default=None, metavar="TIME",
              help="Stop here; objects after it are kept.")
@decoding_options
def continue_command(beatmap_path: Path, from_text: str, until_text: str | None, sampling,
                     temperature, top_k, top_p, beam_size, seed, model_path, output) -> None:
    """Continue MAP.osu from a time: its objects before it stay exactly as they are."""
    from_ms = parse_time_ms(from_text)
    until_ms = parse_time_ms(until_text) if until_text else None
    if until_ms is not None and until_ms <= from_ms:
        raise click.ClickException("--until must come after --from")
    beatmap = load_beatmap(beatmap_path)
    audio = find_file(beatmap_path.parent, beatmap.audio_filename or "")
    if audio is None:
        raise click.ClickException(f"{beatmap_path}: its audio file "
                                   f"{beatmap.audio_filename!r} is not in the folder")
    options = _options(sampling, temperature, top_k, top_p, beam_size, seed)
    generator = _generator(model_path)
    mel = _features(audio)
    cond = condition_vector(beatmap.difficulty, star_rating(beatmap))
    result = continue_map(generator, beatmap, mel, from_ms, until_ms, cond, options,
                          progress=_progress)
    result.format_version = 14
    written = _write(result, beatmap_path.parent, output,
                     f"{beatmap.version or 'kiai'} (kiai)")
    kept = sum(o.time < from_ms for o in result.hit_objects)
    click.echo(f"wrote {written} ({kept} objects kept, "
               f"{len(result.hit_objects) - kept} after {from_ms:.0f} ms, "
               f"{star_rating(result):.2f} stars)")
