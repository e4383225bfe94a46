"""Training (DESIGN §7): the seed's Phase 4, in the manner of nanoGPT's train.py.

Next-token cross-entropy over each window's target tokens (never SOS, the prefix or PAD), AdamW
with decoupled weight decay, warmup then cosine decay over the steps or a wall-clock budget
(core.optimizer), gradient clipping, a validation loss on held-out song sets, and checkpoints
(core.checkpoint) a run can resume from exactly.

Runs are seeded: the model's initialisation from the seed, each step's randomness (dropout,
audio dropout) from (seed, step, rank), its batch from (seed, epoch) (core.training_data), so a
resumed run takes the steps an uninterrupted one would.

Under `torchrun` every process trains on its share of each batch with DistributedDataParallel
(gloo on CPU, nccl on CUDA); rank 0 alone logs and writes. A run folder holds `last/` (the
latest state, to resume from), `best/` (the lowest validation loss, for generation) and
`metrics.jsonl` (one JSON object per step and per evaluation).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from core.checkpoint import (
    META_FILE,
    CheckpointError,
    load_model,
    load_optimizer,
    read_meta,
    save_checkpoint,
)
from core.dataset import MANIFEST
from core.dataset_loader import WindowConfig, WindowDataset
from core.distributed import Processes, end_processes, start_processes
from core.model import MapModel, ModelDims, pointer_fields, preset_dims
from core.objective import autocast_dtype, batch_loss, token_weights
from core.optimizer import BudgetClock, learning_rate, make_optimizer
from core.tokens.vocab import Vocab, VocabConfig, preset
from core.train_config import TrainConfig
from core.training_data import Batches, Split, split_by_set

LAST, BEST, METRICS = "last", "best", "metrics.jsonl"

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: MapModel  # this process's copy (identical on every rank)
    step: int
    best_val_loss: float | None
    metrics: dict = field(default_factory=dict)  # the last step's, plus the last val_loss
    stopped: bool = False  # should_stop ended it early (last/ holds the state to resume from)


def train(config: TrainConfig, *, dims: ModelDims | None = None, resume: Path | None = None,
          on_step: Callable[[dict], None] | None = None,
          should_stop: Callable[[int], bool] | None = None) -> TrainResult:
    """Train per `config`, from scratch or from the checkpoint `resume`.

    `dims` replaces the model preset (tests, experiments); `on_step` sees each step's metrics
    on rank 0 (a progress bar); `should_stop(step)`, asked after each step, ends the run early
    with `last/` written (Ctrl+C). Raises ValueError, DatasetError or CheckpointError on bad
    input.
    """
    procs = start_processes(config.device)
    finished = False
    try:
        result = _train(config, procs, dims, resume, on_step, should_stop or (lambda step: False))
        finished = True
        return result
    finally:
        end_processes(procs, finished)


def steady_step_seconds(probe: TrainConfig) -> float:
    """Seconds per step of a short `probe` run (max_steps >= 4), its first steps excluded: they
    carry start-up (data set, model, first batches), which would size a budgeted schedule ~40%
    too short."""
    stamps: list[float] = []
    train(probe, on_step=lambda metrics: stamps.append(time.perf_counter()))
    return (stamps[-1] - stamps[2]) / (len(stamps) - 3)


def check_run_folder(out: Path, resume: Path | None) -> None:
    """A run into a folder that holds another run's checkpoints would replace its last/ and
    best/ and cut its metrics (QA: "add songs and train again" lost a trained model). Only
    resuming one of its own checkpoints may write there."""
    held = [name for name in (LAST, BEST) if (Path(out) / name / META_FILE).is_file()]
    if not held or (resume is not None and Path(resume).resolve().parent == Path(out).resolve()):
        return
    try:
        step = f" at step {read_meta(Path(out) / held[0])['step']}"
    except (CheckpointError, KeyError):
        step = ""
    built = Path(out) / "dataset"  # what `kiai train --songs` built: reused, not rebuilt
    data = f" --data {built}" if (built / MANIFEST).is_file() else ""
    raise ValueError(f"{out} already holds a trained model ({held[0]}/{step}): resume it "
                     f"(--resume {Path(out) / held[0]}), start from its weights in another run "
                     f"folder (--init {Path(out) / held[-1]}{data}), or train into another "
                     "folder")


def _train(config: TrainConfig, procs: Processes, dims: ModelDims | None, resume: Path | None,
           on_step: Callable[[dict], None] | None, should_stop: Callable[[int], bool]
           ) -> TrainResult:
    check_run_folder(config.out, resume)
    # 1) data: windows in the run's token language, split by song set, each process's share
    stored = read_meta(resume) if resume is not None else None
    window = WindowConfig(**stored["window"]) if stored else \
        WindowConfig(window_s=config.window_s, seed=config.seed)
    if stored and window.window_s != config.window_s:
        log.warning("resuming with the checkpoint's %s s windows, not %s s", window.window_s,
                    config.window_s)
    init_meta = read_meta(config.init) if config.init is not None and not stored else None
    data = WindowDataset(config.data, window, _vocab(config, stored or init_meta))
    vocab = data.vocab
    val_data = WindowDataset(config.data, window, vocab.config)  # stays at epoch 0: the same
    split = split_by_set(data, config.val_fraction)               # windows at every evaluation
    if not split.train:
        raise ValueError(f"{config.data}: no training windows")
    if not split.val and procs.main and config.val_fraction > 0:
        log.warning("%s: one song set, none to hold out: no validation loss and no best/",
                    config.data)
    cuda = procs.device.type == "cuda"
    shard = {"rank": procs.rank, "world": procs.world, "workers": config.workers,
             "pin_memory": cuda}
    batches = Batches(data, split.train, config.batch_size, seed=config.seed, shuffle=True,
                      **shard)
    val_batches = Batches(val_data, split.val, config.batch_size, seed=config.seed,
                          shuffle=False, **shard) if split.val else None
    total = config.max_steps or config.epochs * batches.steps_per_epoch
    # 2) the model: from the checkpoint, or new from the seed (the same on every process)
    torch.manual_seed(config.seed)
    if stored:
        model = load_model(resume, procs.device)[0].train()
    elif init_meta:
        model = load_model(config.init, procs.device)[0].train()
    else:
        pointer = pointer_fields(vocab) if config.audio_pointer else {}
        model = MapModel(dims or preset_dims(config.model, len(vocab), **pointer,
                                             beat_grid=config.beat_grid)).to(procs.device)
    if config.dropout is not None:
        model.set_dropout(config.dropout)
    _check_fits(model.dims, window, len(vocab))
    # 3) the optimizer, and the state to continue from
    optimizer = make_optimizer(model, config, procs.device)
    step, best, elapsed = 0, None, 0.0
    if stored:
        load_optimizer(resume, model, optimizer)
        step, best = stored["step"], stored.get("best_val_loss")
        elapsed = float(stored.get("elapsed_s", 0.0))
    # The only buffers are constant sinusoids: no need to broadcast them (20 MB for `seed`) on
    # every forward.
    ddp = DistributedDataParallel(model, device_ids=[procs.device] if cuda else None,
                                  broadcast_buffers=False) if procs.world > 1 else model
    run = _Run(config, procs, model, optimizer, vocab.config, window, split, on_step, step)
    run.best, run.elapsed = best, elapsed
    if procs.main:
        d = model.dims
        log.info("training a %d-wide %d-layer model (%.2fM parameters) on %d+%d windows (%d "
                 "held-out sets), %d steps of %d x %d, from step %d on %s", d.d_model,
                 d.n_layers, model.parameter_count() / 1e6, len(split.train), len(split.val),
                 len(split.val_sets), total, procs.world, config.batch_size, step, procs.device)
    # 4) the loop
    return run.loop(ddp, batches, val_batches, step, total, should_stop)


class _Run:
    """The loop and what it writes: metrics, evaluations, checkpoints (rank 0 writes)."""

    def __init__(self, config: TrainConfig, procs: Processes, model: MapModel,
                 optimizer: torch.optim.Optimizer, vocab: VocabConfig, window: WindowConfig,
                 split: Split, on_step: Callable[[dict], None] | None, step: int):
        self.config, self.procs, self.model, self.optimizer = config, procs, model, optimizer
        self.vocab, self.window, self.split, self.on_step = vocab, window, split, on_step
        self.weights = token_weights(Vocab(vocab), config.coord_weight)
        self.autocast = autocast_dtype(config.precision, procs.device)
        self.best: float | None = None
        self.elapsed = 0.0  # loop seconds before this process's start (a resumed run's)
        self.epoch = 0
        self.metrics: dict = {}
        self.metrics_file = None
        if procs.main:
            config.out.mkdir(parents=True, exist_ok=True)
            _truncate_metrics(config.out / METRICS, step)
            self.metrics_file = (config.out / METRICS).open("a", encoding="utf-8")

    def loop(self, ddp: nn.Module, batches: Batches, val_batches: Batches | None, step: int,
             total: int, should_stop: Callable[[int], bool]) -> TrainResult:
        config, procs = self.config, self.procs
        stopped = False
        clock = BudgetClock(config.budget_s, self.elapsed, procs)
        share = clock.share()  # read once a step (a collective under DDP), after its update
        spent = share >= 1.0  # a resumed run whose budget is gone takes no step
        try:
            while step < total and not stopped and not spent:
                epoch, skip = divmod(step, batches.steps_per_epoch)
                self.epoch = epoch
                for batch in islice(batches.epoch(epoch, skip), total - step):
                    started = time.perf_counter()
                    # a) this step's randomness (dropout, audio dropout) from (seed, step, rank)
                    torch.manual_seed(_step_seed(config.seed, step, procs.rank))
                    lr = learning_rate(step, config, total, share)
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr
                    # b) forward, backward (DDP averages the gradients), clip, update
                    loss_sum, count = batch_loss(ddp, batch, self.model.dims, procs.device,
                                                 config.audio_dropout, self.weights,
                                                 grid_dropout=config.audio_dropout,
                                                 autocast=self.autocast)
                    loss = loss_sum / count
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), config.clip)
                    self.optimizer.step()
                    step += 1
                    # c) bookkeeping; .item() is a CPU-GPU sync point, once per step
                    share = clock.share()
                    spent = share >= 1.0
                    record = {"step": step, "total_steps": total, "epoch": epoch,
                              "loss": loss.item(), "lr": lr, "grad_norm": grad_norm.item(),
                              "tokens": int(count.item()),
                              "ms": round(1000 * (time.perf_counter() - started), 1)}
                    if config.budget_s is not None:
                        record["budget_left_s"] = round(max(0.0, 1 - share) * config.budget_s, 1)
                    self.record(record)
                    final = step == total or spent
                    self.elapsed = clock.seconds()
                    if val_batches is not None and (step % config.eval_interval == 0 or final):
                        self.evaluate(val_batches, step)
                    stopped = not final and self.stop_requested(should_stop, step)
                    if step % config.checkpoint_interval == 0 or final or stopped:
                        self.save(LAST, step, with_optimizer=True)
                    if stopped or spent:
                        break
        finally:
            if self.metrics_file is not None:
                self.metrics_file.close()
        return TrainResult(self.model, step, self.best, self.metrics, stopped)

    @torch.no_grad()
    def evaluate(self, val_batches: Batches, step: int) -> float:
        """Token-weighted validation loss over the first eval_batches batches of every process,
        without dropout of any kind."""
        self.model.eval()
        totals = torch.zeros(2, device=self.procs.device)  # (loss sum, tokens)
        for batch in islice(val_batches.epoch(0), self.config.eval_batches):
            loss_sum, count = batch_loss(self.model, batch, self.model.dims,
                                         self.procs.device, weights=self.weights,
                                         autocast=self.autocast)
            totals += torch.stack([loss_sum.float(), count.float()])
        if self.procs.world > 1:
            dist.all_reduce(totals)
        self.model.train()
        val_loss = (totals[0] / totals[1].clamp(min=1)).item()
        self.metrics["val_loss"] = val_loss
        self.record({"step": step, "val_loss": val_loss})
        if self.best is None or val_loss < self.best:
            self.best = val_loss
            self.save(BEST, step, with_optimizer=False)
        return val_loss

    def record(self, metrics: dict) -> None:
        if not self.procs.main:
            return
        self.metrics.update(metrics)
        self.metrics_file.write(json.dumps(metrics) + "\n")
        self.metrics_file.flush()
        if "val_loss" in metrics:
            log.info("step %d: val loss %.4f", metrics["step"], metrics["val_loss"])
            return
        if metrics["step"] % self.config.log_interval == 0:
            log.info("step %d: loss %.4f, lr %.2e, grad norm %.2f, %.0f ms", metrics["step"],
                     metrics["loss"], metrics["lr"], metrics["grad_norm"], metrics["ms"])
        if self.on_step is not None:
            self.on_step(dict(self.metrics))  # this step's, and the latest val_loss

    def stop_requested(self, should_stop: Callable[[int], bool], step: int) -> bool:
        """should_stop(step) on any process stops all of them at the same step."""
        flag = bool(should_stop(step))
        if self.procs.world == 1:
            return flag
        stop = torch.tensor([flag], dtype=torch.int32, device=self.procs.device)
        dist.all_reduce(stop, op=dist.ReduceOp.MAX)
        return bool(stop.item())

    def save(self, name: str, step: int, with_optimizer: bool) -> None:
        if not self.procs.main:
            return
        meta = {"window": asdict(self.window), "train": self.config.to_dict(), "step": step,
                "epoch": self.epoch, "best_val_loss": self.best, "metrics": self.metrics,
                "val_sets": self.split.val_sets, "elapsed_s": round(self.elapsed, 3)}
        save_checkpoint(self.config.out / name, self.model, self.vocab, meta,
                        self.optimizer if with_optimizer else None)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop the records after `step`: a run killed after its last checkpoint logged steps that
    its resumption takes again."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if _record_step(line) <= step]
    if len(kept) != len(lines):
        path.write_text("".join(kept), encoding="utf-8")


def _record_step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf  # a line cut short by the kill


def _step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0])


def _vocab(config: TrainConfig, stored: dict | None) -> VocabConfig | None:
    """The run's token language: the checkpoint's (resumed or started from), else the preset
    asked for, else None (the data set's)."""
    asked = preset(config.vocab) if config.vocab else None
    if stored is None:
        return asked
    vocab = VocabConfig.from_dict(stored["vocab"])
    if asked is not None and asked != vocab:
        raise ValueError(f"the checkpoint was trained with the {vocab.name!r} vocabulary, not "
                         f"{asked.name!r}")
    return vocab


def _check_fits(dims: ModelDims, window: WindowConfig, n_vocab: int) -> None:
    if dims.n_vocab != n_vocab:
        raise ValueError(f"the model has {dims.n_vocab} token ids, the vocabulary {n_vocab}")
    if math.ceil(window.frames / 2) > dims.max_frames:
        raise ValueError(f"{window.window_s} s windows exceed the model's {dims.max_frames} "
                         f"encoder positions")
