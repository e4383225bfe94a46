"""`kiai train`: train a model on a data set, or on Songs folders built into one first
(see core.training; under `torchrun` each process runs this command)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import fields
from pathlib import Path

import click

from companion.cli.dataset import build_reported
from core.checkpoint import CheckpointError, read_meta
from core.dataset import DatasetError
from core.songs import SongsError
from core.tokens.vocab import PRESETS, preset
from core.train_config import DEVICES, PRECISIONS
from core.training import LAST, TrainConfig, check_run_folder, train

_DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}
BUDGET_STEP_CAP = 10_000_000  # --minutes without --steps: the time decides


class _StopAfterStep:
    """The first Ctrl+C ends the run after the current step, with last/ written; a second one
    interrupts at once. DataLoader workers forked after this inherit the handler, so they keep
    loading instead of dying on the first press."""

    def __init__(self) -> None:
        self.asked = False
        self.pid = os.getpid()  # the terminal's Ctrl+C reaches the workers too: one says so
        self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.asked = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if os.getpid() == self.pid:
            click.echo("\nstopping after this step (Ctrl+C again to interrupt now)", err=True)

    def __call__(self, step: int) -> bool:
        return self.asked

    def restore(self) -> None:
        signal.signal(signal.SIGINT, self.previous)


class _ProgressLine:
    """One stderr line, redrawn each step: step, loss, latest validation loss, time, ETA."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.last: float | None = None
        self.per_step: float | None = None  # seconds, a running mean that loading included
        self.val = ""

    def __call__(self, metrics: dict) -> None:
        now = time.monotonic()
        if self.last is not None:
            took = now - self.last
            self.per_step = took if self.per_step is None else 0.9 * self.per_step + 0.1 * took
        self.last = now
        if "val_loss" in metrics:
            self.val = f"  val {metrics['val_loss']:.3f}"
        left = metrics["total_steps"] - metrics["step"]
        budget = metrics.get("budget_left_s")  # a --minutes run ends when its time is spent
        eta = ""
        if self.per_step is not None:
            seconds = left * self.per_step if budget is None else min(left * self.per_step, budget)
            eta = f"  {self.per_step:.2f} s/step  eta {_duration(seconds)}"
        total = "" if budget is not None else f"/{metrics['total_steps']}"
        self.stream.write(f"\rstep {metrics['step']}{total}  "
                          f"loss {metrics['loss']:.3f}{self.val}{eta}\033[K")
        self.stream.flush()

    def close(self) -> None:
        if self.last is not None:
            self.stream.write("\n")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


@click.command("train")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Data set folder (kiai dataset build).")
@click.option("--songs", "songs_dirs", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Instead of --data: a Songs folder to build the data set from, into "
                   "OUT/dataset (repeat for several).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder: last/ and best/ checkpoints, metrics.jsonl.")
@click.option("--model", type=click.Choice(["small", "seed"]), default=_DEFAULTS["model"],
              show_default=True, help="Model size preset.")
@click.option("--vocab", type=click.Choice(sorted(PRESETS)), default=None,
              help="Token language preset [default: the data set's].")
@click.option("--steps", "max_steps", type=click.IntRange(min=1), default=None,
              help=f"Optimizer steps [default: {_DEFAULTS['max_steps']} unless --epochs].")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Whole passes over the training windows, instead of --steps.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Wall-clock budget: the schedule ends on time and the run stops there "
                   "(--steps or --epochs, if given, cap it).")
@click.option("--batch-size", type=click.IntRange(min=1), default=_DEFAULTS["batch_size"],
              show_default=True, help="Windows per step (per process under torchrun).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=_DEFAULTS["lr"],
              show_default=True, help="Peak learning rate.")
@click.option("--warmup", "warmup_steps", type=click.IntRange(min=0),
              default=_DEFAULTS["warmup_steps"], show_default=True, help="Warmup steps.")
@click.option("--window", "window_s", type=click.FloatRange(min=1.0),
              default=_DEFAULTS["window_s"], show_default=True, help="Window length, seconds.")
@click.option("--audio-dropout", type=click.FloatRange(0, 1), default=_DEFAULTS["audio_dropout"],
              show_default=True, help="Share of windows trained with silent audio.")
@click.option("--coord-weight", type=click.FloatRange(0, 10, min_open=True),
              default=_DEFAULTS["coord_weight"], show_default=True,
              help="Loss weight of coordinate tokens (rhythm tokens weigh 1).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Residual dropout for this run [default: the model's, 0.1 when new].")
@click.option("--precision", type=click.Choice(PRECISIONS), default=_DEFAULTS["precision"],
              show_default=True, help="Forward-pass arithmetic: auto is bfloat16 on CUDA and on "
                                      "CPUs with AVX-512 bfloat16, float32 elsewhere.")
@click.option("--eval-interval", type=click.IntRange(min=1), default=_DEFAULTS["eval_interval"],
              show_default=True, help="Steps between validation losses.")
@click.option("--checkpoint-interval", type=click.IntRange(min=1),
              default=_DEFAULTS["checkpoint_interval"], show_default=True,
              help="Steps between writes of last/.")
@click.option("--seed", type=click.IntRange(min=0), default=_DEFAULTS["seed"], show_default=True,
              help="The same seed and data give the same run.")
@click.option("--workers", type=click.IntRange(min=0), default=_DEFAULTS["workers"],
              show_default=True, help="Data loading processes (0: in this process).")
@click.option("--device", type=click.Choice(DEVICES),
              default=_DEFAULTS["device"], show_default=True, help="auto: CUDA if present.")
@click.option("--init", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Start from this model's weights (a checkpoint, e.g. core/starter_model): "
                   "fine-tuning with a fresh optimizer and schedule; its sizes and vocabulary.")
@click.option("--resume", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Continue from a checkpoint (RUN_DIR/last); --data defaults to its data set, "
                   "and the run's length (--steps, --epochs, --minutes) to its own.")
def train_command(data: Path | None, songs_dirs: tuple[Path, ...], resume: Path | None,
                  max_steps: int | None, minutes: float | None, **options) -> None:
    """Train a model on the data set DATA (or SONGS folders) and write checkpoints into OUT."""
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.WARNING if sys.stderr.isatty() else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    try:
        check_run_folder(options["out"], resume)  # before a data set is built for nothing
        data = _data_set(data, songs_dirs, resume, options["out"], options["vocab"])
        budget_s = minutes * 60 if minutes else None
        if max_steps is None and options["epochs"] is None and budget_s is None:
            if resume is not None:  # the run's own length: its steps, epochs or budget
                stored = read_meta(resume)["train"]
                max_steps, options["epochs"] = stored["max_steps"], stored["epochs"]
                budget_s = stored.get("budget_s")
            else:
                max_steps = _DEFAULTS["max_steps"]
        elif max_steps is None and options["epochs"] is None:
            max_steps = BUDGET_STEP_CAP  # --minutes alone: the time decides
        config = TrainConfig(data=data, max_steps=max_steps, budget_s=budget_s, **options)
    except (ValueError, DatasetError, SongsError, CheckpointError) as e:
        raise click.ClickException(str(e)) from e
    progress = _ProgressLine(sys.stderr) if rank == 0 and sys.stderr.isatty() else None
    stop = _StopAfterStep()
    try:
        result = train(config, resume=resume, should_stop=stop, on_step=progress)
    except (ValueError, DatasetError, CheckpointError) as e:
        raise click.ClickException(str(e)) from e
    except KeyboardInterrupt:
        raise click.ClickException(f"interrupted: {config.out / LAST} holds the last periodic "
                                   "checkpoint") from None
    finally:
        stop.restore()
        if progress is not None:
            progress.close()
    if rank != 0:
        return
    val = "" if result.best_val_loss is None else f", best val loss {result.best_val_loss:.4f}"
    click.echo(f"{config.out}: step {result.step}, loss {result.metrics.get('loss', 0):.4f}{val}")
    if result.stopped:
        click.echo(f"stopped early; continue with --resume {config.out / LAST}")


def _data_set(data: Path | None, songs_dirs: tuple[Path, ...], resume: Path | None, out: Path,
              vocab: str | None) -> Path:
    """The data set to train on: --data, or one built from --songs, or the checkpoint's."""
    if data is not None and songs_dirs:
        raise ValueError("give --data or --songs, not both")
    if data is not None:
        return data
    if songs_dirs:
        return _build(songs_dirs, out / "dataset", vocab)
    if resume is not None:
        return Path(read_meta(resume)["train"]["data"])
    raise ValueError("give a data set with --data DIR, or Songs folders with --songs DIR")


def _build(songs_dirs: tuple[Path, ...], out: Path, vocab: str | None) -> Path:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("under torchrun, build the data set first (kiai dataset build) and "
                         "pass it with --data")
    result = build_reported(songs_dirs, out, preset(vocab or "default"))
    if not result.maps:
        raise ValueError(f"no usable osu!standard maps in {', '.join(map(str, songs_dirs))}")
    return out
