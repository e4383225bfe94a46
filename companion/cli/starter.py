"""`kiai build-starter`: the one command that makes the shipped starter model.

Synthetic songs (core.synth) -> a data set -> the `small` model trained for a wall-clock budget
(the cosine schedule runs on the wall clock, so it ends on time at its floor) -> float16 weights in
core/starter_model/. No download: everything it learns from is generated here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from core.checkpoint import load_model, save_model_only
from core.dataset import BuildConfig, build
from core.songs import SongSet, discover
from core.starter import STARTER_MODEL
from core.synth.config import SynthConfig
from core.synth.songs import write_song
from core.tokens.vocab import preset
from core.training import TrainConfig, steady_step_seconds, train


@click.command("build-starter")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build/starter"), show_default=True,
              help="Songs, data set and run folders.")
@click.option("--songs", "count", type=click.IntRange(1, 500), default=24, show_default=True)
@click.option("--duration", type=float, default=60.0, show_default=True,
              help="Seconds per synthetic song.")
@click.option("--minutes", type=click.FloatRange(min=0.5), default=30.0, show_default=True,
              help="Training budget (wall clock).")
@click.option("--window", "window_s", type=float, default=10.0, show_default=True)
@click.option("--coord-weight", type=click.FloatRange(0, 10, min_open=True), default=1.0,
              show_default=True, help="Loss weight of coordinate tokens (kiai train's).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Residual dropout [default: the model's, 0.1 when new].")
@click.option("--maps", "maps_dirs", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Songs folders of real maps to train on too, with or without their audio "
                   "(a map without it trains on silence: placement, not rhythm; DESIGN §7).")
@click.option("--init", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Continue from this model's weights (e.g. the shipped core/starter_model, "
                   "with a new --seed for new songs) instead of from scratch.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3,
              show_default=True, help="Peak learning rate (lower when continuing with --init).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--workers", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Data loader processes (0 on a small CPU; a GPU wants a few).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=STARTER_MODEL,
              show_default=True, help="Where the exported model goes (replaced).")
def build_starter_command(work: Path, count: int, duration: float, minutes: float,
                          window_s: float, coord_weight: float, dropout: float | None,
                          maps_dirs: tuple[Path, ...],
                          init: Path | None, lr: float, seed: int, workers: int,
                          out: Path) -> None:
    """Train the starter model on synthetic songs and export it for shipping."""
    songs = work / "songs"
    if not songs.exists():
        config = SynthConfig(out=songs, count=count, seed=seed, duration_s=duration)
        for index in range(count):
            write_song(config, index)
    data = work / "data"
    build(starter_sets(songs, maps_dirs), BuildConfig(out=data, vocab=preset("default"),
                                                      workers=max(1, workers)))
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    # A few timed steps size the warmup and the evaluation and checkpoint intervals; the
    # schedule itself runs on the wall clock (TrainConfig.budget_s), so it ends on time.
    recipe = {"data": data, "model": "small", "window_s": window_s, "workers": workers,
              "seed": seed, "coord_weight": coord_weight, "dropout": dropout, "init": init}
    shutil.rmtree(work / "probe", ignore_errors=True)  # a throwaway: runs refuse to replace runs
    probe = TrainConfig(out=work / "probe", max_steps=8, warmup_steps=1, eval_interval=10_000,
                        **recipe)
    steps = max(50, int(minutes * 60 / steady_step_seconds(probe)))
    config = TrainConfig(out=run, max_steps=10 * steps, budget_s=minutes * 60,
                         warmup_steps=max(20, steps // 25), lr=lr,
                         eval_interval=max(50, steps // 6),
                         checkpoint_interval=max(100, steps // 4), **recipe)
    result = train(config)
    source = run / "best" if (run / "best").exists() else run / "last"
    model, vocab, meta = load_model(source)
    meta = {k: meta[k] for k in ("window", "train", "step", "best_val_loss") if k in meta}
    save_model_only(model, vocab.config, out, meta=meta)
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    click.echo(f"starter model: {result.step} steps, best val loss {result.best_val_loss}, "
               f"{size:.1f} MB in {out}")


def starter_sets(songs: Path, maps_dirs: tuple[Path, ...] = ()) -> list[SongSet]:
    """The synthetic songs' sets, then those of `maps_dirs`, whose maps are kept without their
    audio where it is missing (they teach placement from human maps, DESIGN §7)."""
    sets, _ = discover(songs)
    for maps_dir in maps_dirs:
        sets += discover(maps_dir, audioless=True)[0]
    return sets
