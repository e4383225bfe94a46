"""`kiai dataset build`: training data from osu! Songs folders (see core.dataset)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from core.dataset import BuildConfig, BuildResult, DatasetError, atomic_path, build, song_key
from core.dataset_prune import drop_gone
from core.songs import MAX_EXAMPLES, DiscoveryReport, SongsError, discover
from core.tokens.vocab import PRESETS, VocabConfig, preset

SKIPS_FILE = "skipped.tsv"


@click.group("dataset")
def dataset_group() -> None:
    """Build training data sets from Songs folders."""


@dataset_group.command("build")
@click.argument("songs_dirs", metavar="SONGS_DIR...", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Data set folder: created, or an earlier build's to finish or extend.")
@click.option("--vocab", "vocab_name", type=click.Choice(sorted(PRESETS)), default="default",
              show_default=True, help="Token language preset of the stored tokens.")
@click.option("--workers", type=click.IntRange(min=0), default=0,
              help=f"Processes; 0 (the default) is one per core ({os.cpu_count()} here).")
@click.option("--audioless", is_flag=True,
              help="Also keep maps whose audio file is missing: trained on silent windows, "
                   "they teach placement (spacing, sliders, patterns) without the rhythm.")
def build_command(songs_dirs: tuple[Path, ...], out: Path, vocab_name: str, workers: int,
                  audioless: bool) -> None:
    """Write the data set of every osu!standard map in SONGS_DIR... into OUT.

    Reruns skip the song sets already done and finish the rest; Ctrl+C stops after the sets
    in progress, losing nothing.
    """
    build_reported(songs_dirs, out, preset(vocab_name), workers, audioless)


def build_reported(songs_dirs: tuple[Path, ...], out: Path, vocab: VocabConfig,
                   workers: int = 0, audioless: bool = False) -> BuildResult:
    """Discover SONGS_DIR..., build the data set in OUT with a progress bar, and say what it
    holds and what was skipped: the most frequent reasons with examples, every skip
    in OUT/skipped.tsv. `kiai dataset build` and `kiai train --songs` both build through it."""
    unique: dict[Path, Path] = {}
    for songs_dir in songs_dirs:  # a folder given twice is searched once
        unique.setdefault(songs_dir.resolve(), songs_dir)
    for root, songs_dir in unique.items():
        if out.resolve().is_relative_to(root):
            raise click.ClickException(f"{out} is inside the Songs folder {songs_dir}: kiai "
                                       "writes nothing there; choose a folder outside it")
    report = DiscoveryReport()
    sets = []
    try:
        for songs_dir in unique.values():
            found, skipped = discover(songs_dir, audioless=audioless)
            sets += found
            report.merge(skipped)
    except SongsError as e:
        raise click.ClickException(str(e)) from e
    sets = list({song_key(s): s for s in sets}.values())  # Songs and Songs/Pack: a set once
    click.echo(f"found {len(sets)} song sets with {sum(len(s.maps) for s in sets)} "
               f"osu!standard difficulties in {len(unique)} folder(s)", err=True)
    config = BuildConfig(out=out, vocab=vocab, workers=workers)
    try:
        with click.progressbar(length=len(sets), label="building", file=sys.stderr,
                               show_pos=True, show_eta=True) as bar:
            result = build(sets, config, on_song=lambda outcome: bar.update(1))
    except DatasetError as e:
        raise click.ClickException(str(e)) from e
    except KeyboardInterrupt:
        raise click.ClickException("interrupted: the sets finished so far are recorded; run the "
                                   "same command again to finish") from None
    try:  # the data set mirrors the folders searched: sets no longer there leave it
        gone = drop_gone(out, unique, sets, report.entries)
    except DatasetError as e:
        raise click.ClickException(str(e)) from e
    report.sets, report.maps = 0, 0  # what the build kept, not what discovery offered
    report.merge(result.report)
    click.echo(f"{out}: {report.maps} maps from {report.sets} song sets "
               f"({result.built} built now, {result.done} done before)")
    if gone:
        click.echo(f"dropped {len(gone)} song set(s) no longer in the folder(s) searched, e.g. "
                   + ", ".join(gone[:MAX_EXAMPLES]))
    for line in report.lines():
        click.echo(line)
    listed = _write_skips(out, report.entries)  # rewritten, so never a stale list
    if report.entries:
        click.echo(f"every skip, with its reason: {listed}")
    return result


def _write_skips(out: Path, entries: list[tuple[str, str, str]]) -> Path:
    """OUT/skipped.tsv: reason, path and detail of every skip of this build, one a line (tabs
    and line breaks inside a field are spaces); only its header when nothing was skipped."""
    path = out / SKIPS_FILE
    lines = ["reason\tpath\tdetail"] + [
        "\t".join(" ".join(field.split()) for field in entry) for entry in entries]
    try:
        with atomic_path(path) as temporary:
            temporary.write_text("\n".join(lines) + "\n", encoding="utf-8",
                                 errors="backslashreplace")
    except OSError as e:
        raise click.ClickException(f"{path}: cannot be written ({e.strerror or e})") from e
    return path
