"""`kiai generate` (a whole map for a song) and `kiai continue` (the rest of a map from a time).

Both write a new difficulty beside the song, named as osu! names it, and never overwrite a file.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import click

from companion.cli.params import FiniteRange
from companion.cli.timing import estimate_note, tempo_list
from companion.cli.tokens import load_beatmap
from companion.continuation import (
    UnusableTimingError,
    audio_of,
    check_continuable,
    continue_beatmap,
    continued_version,
)
from companion.mapping import (
    STAR_TOLERANCE,
    Generated,
    NoModelError,
    Target,
    as_new_difficulty,
    generate_beatmap,
    load_generator,
)
from core.audio import AudioError
from core.beatmap.model import Beatmap
from core.beatmap.naming import difficulty_filename, unique_version
from core.beatmap.writer import save
from core.checkpoint import CheckpointError
from core.decoding import DecodingOptions
from core.difficulty import star_rating
from core.generate import Generator
from core.incremental import PRECISIONS
from core.song_input import SongInputError, check_audio_name, resolve
from core.tempo import MAX_GIVEN_BPM, MIN_GIVEN_BPM
from core.tokens.tokenizer import UnsupportedModeError

_TIME = re.compile(r"^(?:(\d+):)?(\d+)(?:[.:](\d{1,3}))?$", re.ASCII)


def parse_time_ms(text: str, option: str | None = None) -> float:
    """Milliseconds from `62500`, `1:02.500` or the editor's `01:02:500`; a refusal names
    `option` (`--from`)."""
    text = text.strip()
    if text.isascii() and text.isdigit():  # "²" is a digit to str.isdigit, not to float()
        return float(text)
    match = _TIME.match(text)

    def refuse(why: str) -> click.BadParameter:
        return click.BadParameter(f"{text!r} {why}", param_hint=option)
    if not match:
        raise refuse("is not a time (ms, m:ss.mmm or mm:ss:mmm)")
    minutes, seconds, millis = match.groups()
    if minutes is None:  # `45.5`: seconds or milliseconds? 45 alone is 45 ms
        ms = round(float(text.replace(":", ".")) * 1000)
        raise refuse(f"is not a time: give whole milliseconds ({ms}) or m:ss.mmm "
                     f"({ms // 60000}:{ms % 60000 // 1000:02d}.{ms % 1000:03d})")
    if int(seconds) >= 60:
        raise refuse(f"has {seconds} seconds: a minute's are 00-59")
    return (int(minutes) * 60 + int(seconds)) * 1000.0 + int((millis or "0").ljust(3, "0"))


SETTING = FiniteRange(0, 10)  # AR, CS, OD, HP: the editor's 0..10


def decoding_options(f):
    """The sampling options shared by generate and continue (one click option per field)."""
    options = [
        click.option("--sampling", type=click.Choice(["greedy", "sample", "beam"]),
                     default="sample", show_default=True, help="How each token is chosen."),
        click.option("--temperature", type=FiniteRange(), default=1.0, show_default=True),
        click.option("--top-k", type=int, default=None),
        click.option("--top-p", type=FiniteRange(), default=0.95, show_default=True),
        click.option("--beam-size", type=click.IntRange(1, 64), default=4, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="The same seed gives the same map."),
        click.option("--draw-gaps", is_flag=True, default=False,
                     help="Sampling: draw when objects come too (by default the timing is the "
                          "model's likeliest, and what comes there is drawn)."),
        click.option("--spacing", type=FiniteRange(), default=None, metavar="PX_PER_MS",
                     help="The widest jump: a new object starts at most this many osu!pixels "
                          "per ms of gap from where the previous one ends (default: typical "
                          "of the stars asked for; continue: the map's own)."),
        click.option("--precision", type=click.Choice(PRECISIONS),
                     default="auto", show_default=True,
                     help="The model's arithmetic: int8 weights and bfloat16 activations are "
                          "up to 2x faster on CPUs with AVX-512 bfloat16, slower without; auto "
                          "takes them where they are faster."),
        click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
                     help="A checkpoint directory (default: the shipped starter model)."),
        click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                     default=None, help="Where to write (default: a new difficulty beside it)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _options(sampling, temperature, top_k, top_p, beam_size, seed, draw_gaps,
             spacing, precision) -> DecodingOptions:
    try:
        return DecodingOptions(method=sampling, temperature=temperature, top_k=top_k,
                               top_p=top_p, beam_size=beam_size, seed=seed, draw_gaps=draw_gaps,
                               spacing=spacing, precision=precision)
    except ValueError as e:
        raise click.ClickException(str(e)) from e


def _generator(model_path: Path | None) -> Generator:
    try:
        return load_generator(model_path)
    except (NoModelError, CheckpointError) as e:
        raise click.ClickException(str(e)) from e


def _progress(fraction: float) -> None:
    click.echo(f"\rgenerating {fraction:4.0%}", err=True, nl=fraction >= 1.0)
    sys.stderr.flush()


def _write(beatmap: Beatmap, folder: Path, output: Path | None, version: str) -> Path:
    """Save as a new difficulty: `version` made unique among the difficulties beside it (also
    where -o names the file: two difficulties of one Version in a set confuse osu!)."""
    unique_version(output.parent if output is not None else folder, beatmap, version)
    if output is None:
        output = folder / difficulty_filename(beatmap)
    try:
        return save(beatmap, output)
    except OSError as e:  # FileExistsError included: never overwrite
        raise click.ClickException(f"cannot write {output}: {e.strerror or e}") from e


def _check_writable(folder: Path, output: Path | None) -> None:
    """Refuse before generating (minutes, for a long song) what the write would refuse after:
    an -o that exists or whose folder does not, a song folder that cannot be written to."""
    if output is not None:
        if output.is_symlink() or output.exists():  # a dangling link too: the write refuses it
            raise click.ClickException(f"{output} exists: kiai never overwrites a file; give "
                                       "another -o")
        folder = output.parent
    if not folder.is_dir():
        raise click.ClickException(f"cannot write into {folder}: no such folder")
    if not _may_write(folder):
        raise click.ClickException(f"cannot write into {folder}: permission denied")


def _may_write(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


@click.command("generate")
@click.argument("song", metavar="AUDIO_OR_SONG_DIR", type=click.Path(path_type=Path))
@click.option("--stars", type=FiniteRange(0, 20), default=None, help="Target star rating.")
@click.option("--ar", type=SETTING, default=None, help="Approach rate (0-10).")
@click.option("--cs", type=SETTING, default=None, help="Circle size (0-10).")
@click.option("--od", type=SETTING, default=None, help="Overall difficulty (0-10).")
@click.option("--hp", type=SETTING, default=None, help="HP drain (0-10).")
@click.option("--bpm", type=FiniteRange(MIN_GIVEN_BPM, MAX_GIVEN_BPM), default=None,
              help="The song's tempo, where you know it: the audio is timed at it (its offset "
                   "found from the audio) instead of by the song's maps or an estimate, which "
                   "can come out at twice or half the tempo.")
@click.option("--meter", type=click.IntRange(1, 16), default=None,
              help="Beats per bar, where you know it (5 for 5/4, 3 for 3/4 or 6/8): the audio "
                   "is timed with it, as with --bpm. The estimate reads only 4 or 3.")
@decoding_options
def generate_command(song: Path, stars, ar, cs, od, hp, bpm, meter, sampling, temperature, top_k,
                     top_p, beam_size, seed, draw_gaps, spacing, precision, model_path,
                     output) -> None:
    """Write a new difficulty for a song (an audio file, or a song folder)."""
    try:
        source = resolve(song)
        check_audio_name(source.audio)
    except SongInputError as e:
        raise click.ClickException(str(e)) from e
    _check_writable(source.folder, output)
    options = _options(sampling, temperature, top_k, top_p, beam_size, seed, draw_gaps, spacing,
                       precision)
    generator = _generator(model_path)
    target = Target(stars, ar, cs, od, hp)
    try:
        generated = generate_beatmap(generator, source, target, options, progress=_progress,
                                     on_retry=_retrying(target.star_rating), bpm=bpm,
                                     meter=meter)
    except AudioError as e:
        raise click.ClickException(str(e)) from e
    beatmap = generated.beatmap
    written = _write(beatmap, source.folder, output, beatmap.version)
    click.echo(f"wrote {written} ({len(beatmap.hit_objects)} objects, "
               f"{generated.stars:.2f} stars for {target.star_rating:.2f} asked"
               f"{_attempts(generated.attempts)}; {_timing(generated, bpm)})")


def _retrying(wanted: float):
    def report(attempt: int, stars: float) -> None:
        click.echo(f"attempt {attempt - 1}: {stars:.2f} stars, more than {STAR_TOLERANCE} from "
                   f"{wanted:.2f}: attempt {attempt}", err=True)
    return report


def _attempts(count: int) -> str:
    return f", best of {count} attempts" if count > 1 else ""


def _timing(generated: Generated, bpm: float | None = None) -> str:
    """How the map was timed: its sections' BPM, and whether they were estimated (an estimate
    says how to give the tempo instead: the octave rule can be a factor 2 off)."""
    red = [p for p in generated.beatmap.timing_points if p.uninherited]
    if generated.timing == "none":
        return ("no timing: the audio has no beat to time; objects are unsnapped, under a "
                "placeholder red line (60 BPM) to retime in the editor")
    tempo = tempo_list(red)
    if generated.timing == "map":
        return f"timing the song's: {tempo} BPM from {red[0].time:.0f} ms"
    # the snap kiai chose for it (core.beat_feel): 1/3 or 1/6 where the notes fall on thirds
    snap = f", snap 1/{generated.beatmap.editor.get('BeatDivisor', '4')}"
    if red[0].meter != 4:
        snap = f", {red[0].meter} beat{'' if red[0].meter == 1 else 's'} a bar{snap}"
    if bpm is not None:
        return f"timed from the audio at the given {tempo} BPM, from {red[0].time:.0f} ms{snap}"
    source, fix = estimate_note(red, generated.bpm_tag, generated.alternative_bpm)
    return (f"timing estimated from {source}: {tempo} BPM from {red[0].time:.0f} ms"
            f"{snap}; {fix}")


@click.command("continue")
@click.argument("beatmap_path", metavar="MAP.osu", type=click.Path(path_type=Path))
@click.option("--from", "from_text", required=True, metavar="TIME",
              help="Generate from here (ms, m:ss.mmm or the editor's mm:ss:mmm).")
@click.option("--until", "until_text", default=None, metavar="TIME",
              help="Stop here; objects after it are kept.")
@decoding_options
def continue_command(beatmap_path: Path, from_text: str, until_text: str | None, sampling,
                     temperature, top_k, top_p, beam_size, seed, draw_gaps, spacing,
                     precision, model_path, output) -> None:
    """Continue MAP.osu from a time: its objects before it stay exactly as they are."""
    from_ms = parse_time_ms(from_text, "--from")
    until_ms = parse_time_ms(until_text, "--until") if until_text else None
    if until_ms is not None and until_ms <= from_ms:
        raise click.ClickException(f"--until {until_text} ({until_ms:g} ms) must come after "
                                   f"--from {from_text} ({from_ms:g} ms)")
    beatmap = load_beatmap(beatmap_path)
    try:
        check_continuable(beatmap)
    except (UnsupportedModeError, UnusableTimingError) as e:
        raise click.ClickException(f"{beatmap_path}: {e}") from e
    _check_writable(beatmap_path.parent, output)
    options = _options(sampling, temperature, top_k, top_p, beam_size, seed, draw_gaps, spacing,
                       precision)
    try:
        audio = audio_of(beatmap, beatmap_path.parent)
        generator = _generator(model_path)
        result = continue_beatmap(generator, beatmap, audio, from_ms, until_ms, options,
                                  progress=_progress)
    except AudioError as e:
        raise click.ClickException(str(e)) from e
    written = _write(as_new_difficulty(result), beatmap_path.parent, output,
                     continued_version(beatmap))
    new = sum(from_ms <= o.time and (until_ms is None or o.time < until_ms)
              for o in result.hit_objects)
    span = f"from {from_ms:.0f} ms" + ("" if until_ms is None else f" to {until_ms:.0f} ms")
    click.echo(f"wrote {written} ({len(result.hit_objects) - new} objects kept, {new} new "
               f"{span}, {star_rating(result):.2f} stars)")
