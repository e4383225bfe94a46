"""`kiai synth`: write synthetic song folders (audio and rule-based maps), as in a Songs folder."""

from __future__ import annotations

from pathlib import Path

import click

from core.synth import DIFFICULTIES, SynthConfig, SynthError, planned_folders, write_song
from core.synth.config import SAMPLE_RATES
from core.synth.encode import FORMATS


def _difficulties(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    by_lower = {d.lower(): d for d in DIFFICULTIES}
    unknown = [n for n in names if n.lower() not in by_lower]
    if unknown:
        raise click.BadParameter(f"unknown {unknown}; choose from {','.join(DIFFICULTIES)}")
    return tuple(by_lower[n.lower()] for n in names)


@click.command("synth")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write song folders into (a Songs folder, or any).")
@click.option("--count", type=int, default=1, show_default=True, help="Number of songs.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="The same seed writes byte-identical files.")
@click.option("--duration", "duration_s", type=float, default=90.0, show_default=True,
              help="Seconds of music per song (about: songs end on a whole measure).")
@click.option("--difficulties", type=str, default=",".join(DIFFICULTIES), show_default=True,
              callback=_difficulties, help="Comma-separated difficulty names.")
@click.option("--sample-rate", type=click.Choice([str(r) for r in SAMPLE_RATES]),
              default=str(SAMPLE_RATES[0]), show_default=True, help="Audio sample rate, Hz.")
@click.option("--audio-format", type=click.Choice(FORMATS), default="ogg", show_default=True,
              help="ogg (Vorbis, as osu! songs ship; WAV if libsndfile cannot) or wav.")
def synth_command(out: Path, count: int, seed: int, duration_s: float,
                  difficulties: tuple[str, ...], sample_rate: str, audio_format: str) -> None:
    """Write COUNT synthetic songs into OUT: `<id> <Artist> - <Title>/` with audio and maps."""
    try:
        config = SynthConfig(out=out, count=count, seed=seed, duration_s=duration_s,
                             difficulties=difficulties, sample_rate=int(sample_rate),
                             audio_format=audio_format)
        # Refuse before writing anything: a half-done batch is worse than none.
        existing = [str(p) for p in planned_folders(config) if p.exists()]
        if existing:
            raise SynthError(f"{existing[0]}: already exists; refusing to overwrite"
                             + (f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""))
        for index in range(count):
            folder = write_song(config, index)
            click.echo(f"wrote {folder}", err=True)
    except (SynthError, OSError) as e:
        raise click.ClickException(str(e)) from e
