"""`kiai preview MAP.osu -o preview.png`: the map's objects over its audio's spectrogram."""

from __future__ import annotations

import io
from pathlib import Path

import click

from companion.cli.generate import parse_time_ms
from companion.cli.params import FiniteRange
from companion.cli.tokens import load_beatmap
from companion.continuation import audio_of
from core.audio import AudioError, audio_features
from core.beatmap.writer import write_file_atomic
from core.preview import PreviewOptions, render_preview


@click.command("preview")
@click.argument("beatmap_path", metavar="MAP.osu", type=click.Path(path_type=Path))
@click.option("--audio", "audio_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="The audio (default: the map's AudioFilename beside it).")
@click.option("--no-audio", is_flag=True, help="Draw the map alone, without a spectrogram.")
@click.option("--from", "from_text", default=None, metavar="TIME",
              help="Start here (ms, m:ss.mmm or mm:ss:mmm; default: the song's start).")
@click.option("--until", "until_text", default=None, metavar="TIME",
              help="End here (default: the song's end).")
@click.option("--row-seconds", type=FiniteRange(min=0.5, max=120), default=8.0,
              show_default=True, help="Timeline per row.")
@click.option("--ms-per-pixel", type=FiniteRange(min=0.5, max=100), default=5.0,
              show_default=True, help="Horizontal scale (5: one pixel per feature frame).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The PNG to write (default: the map's name, .png, here).")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
def preview_command(beatmap_path: Path, audio_path: Path | None, no_audio: bool,
                    from_text: str | None, until_text: str | None, row_seconds: float,
                    ms_per_pixel: float, output: Path | None, force: bool) -> None:
    """Draw MAP.osu's objects on a timeline over its audio's spectrogram, with timing ticks."""
    output = output or Path(beatmap_path.with_suffix(".png").name)
    if output.suffix.lower() != ".png":  # `-o MAP.osu --force` had replaced the map with a PNG
        raise click.BadParameter(f"{output} is not a .png: the preview is a PNG image",
                                 param_hint="-o")
    if not output.parent.is_dir():  # said before the drawing, naming the folder
        raise click.BadParameter(f"no folder {output.parent} to write {output.name} into",
                                 param_hint="-o")
    beatmap = load_beatmap(beatmap_path)
    mel = None
    if not no_audio:
        try:
            audio = audio_path or audio_of(beatmap, beatmap_path.parent)
            mel = audio_features(audio).numpy()
        except AudioError as e:
            raise click.ClickException(f"{e} (--no-audio draws the map alone)") from e
    options = PreviewOptions(
        start_ms=parse_time_ms(from_text, "--from") if from_text else None,
        end_ms=parse_time_ms(until_text, "--until") if until_text else None,
        row_ms=row_seconds * 1000, px_per_ms=1 / ms_per_pixel)
    try:
        image = render_preview(beatmap, mel, options)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    try:
        write_file_atomic(output, buffer.getvalue(), overwrite=force)
    except OSError as e:
        raise click.ClickException(f"{e} (--force replaces it)" if isinstance(
            e, FileExistsError) else str(e)) from e
    click.echo(f"wrote {output} ({image.width}x{image.height})")
