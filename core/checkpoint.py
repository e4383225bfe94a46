"""Checkpoints: a directory of safetensors and JSON, never pickle (users share checkpoints).

    <checkpoint>/model.safetensors      the weights, by parameter name (float32, or float16 for a
                                        small shippable file; loaded back as float32)
    <checkpoint>/checkpoint.json        format and version, the model's constructor arguments
                                        (`ModelDims`), the vocabulary config, the weights' dtype,
                                        and what the caller adds: window and training configs,
                                        step, epoch, best validation loss, metrics
    <checkpoint>/optimizer.safetensors  for resuming: AdamW's state tensors named
                                        `<parameter>.<exp_avg|exp_avg_sq>`; its hyperparameters
                                        and per-parameter `step` counts go in the JSON

Loading rebuilds the model from the stored dims, as nanoGPT's checkpoints store the constructor
arguments. A save is atomic: the directory is written under a temporary name beside its final
one, then swapped in with renames; a failed or interrupted save leaves the previous checkpoint
as it was. The swap moves the old directory aside to `.old-<name>` for an instant, and a loader
that finds only that (a crash in that instant) reads it instead.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from core.model import MapModel, ModelDims
from core.tokens.vocab import Vocab, VocabConfig

FORMAT = "kiai-checkpoint"
FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
META_FILE = "checkpoint.json"
OPTIMIZER_FILE = "optimizer.safetensors"
TMP_PREFIX, ASIDE_PREFIX = ".tmp-", ".old-"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

log = logging.getLogger(__name__)


class CheckpointError(Exception):
    """A checkpoint that cannot be read (missing, another format, weights that do not fit)."""


def save_checkpoint(path: str | os.PathLike, model: MapModel, vocab: VocabConfig,
                    meta: dict | None = None, optimizer: torch.optim.Optimizer | None = None,
                    dtype: torch.dtype = torch.float32) -> Path:
    """Write `model` (unwrapped: not DDP, not compiled) and, for resuming, `optimizer` into the
    directory `path`, replacing any checkpoint there atomically. `meta` must be JSON-able."""
    path = Path(path)
    names = {p: n for n, p in model.named_parameters()}
    header = {"format": FORMAT, "version": FORMAT_VERSION, "model": model.dims.to_dict(),
              "vocab": vocab.to_dict(), "dtype": _dtype_name(dtype), **(meta or {})}
    with _staging(path) as staging:
        weights = {n: t.detach().to("cpu", dtype).contiguous()
                   for n, t in model.state_dict().items()}
        save_file(weights, str(staging / MODEL_FILE), metadata={"format": FORMAT})
        if optimizer is not None:
            tensors, header["optimizer"] = _flatten_optimizer(optimizer, names)
            save_file(tensors, str(staging / OPTIMIZER_FILE), metadata={"format": FORMAT})
        (staging / META_FILE).write_text(json.dumps(header, indent=1), encoding="utf-8")
    return path


def save_model_only(model: MapModel, vocab: VocabConfig, path: str | os.PathLike,
                    dtype: torch.dtype = torch.float16, meta: dict | None = None) -> Path:
    """A checkpoint to ship: weights in `dtype` (half the size in float16), no optimizer."""
    return save_checkpoint(path, model, vocab, meta, optimizer=None, dtype=dtype)


def read_meta(path: str | os.PathLike) -> dict:
    """checkpoint.json of the checkpoint directory `path`, checked for format and version."""
    meta_path = _resolve(Path(path)) / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{meta_path}: unreadable ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not a {FORMAT}")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{meta_path}: {FORMAT} version {meta.get('version')}, this kiai "
                              f"reads version {FORMAT_VERSION}")
    return meta


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu"
               ) -> tuple[MapModel, Vocab, dict]:
    """(model in eval mode, float32 on `device`; its vocabulary; checkpoint.json) of `path`."""
    root = _resolve(Path(path))
    meta = read_meta(root)
    try:
        dims = ModelDims(**meta["model"])
        vocab = Vocab(VocabConfig.from_dict(meta["vocab"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{root / META_FILE}: bad model or vocabulary config ({e})") from e
    model = MapModel(dims)
    weights = _load_tensors(root / MODEL_FILE)
    try:
        model.load_state_dict({n: t.float() for n, t in weights.items()}, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{root / MODEL_FILE}: weights do not fit the model ({first})") from e
    return model.to(device).eval(), vocab, meta


def load_optimizer(path: str | os.PathLike, model: nn.Module,
                   optimizer: torch.optim.Optimizer) -> None:
    """Restore the optimizer state saved with the checkpoint `path` into `optimizer`, built over
    `model`'s parameters with the same groups."""
    root = _resolve(Path(path))
    stored = read_meta(root).get("optimizer")
    if stored is None:
        raise CheckpointError(f"{root}: holds no optimizer state (a model-only checkpoint)")
    index = {n: i for i, n in enumerate(_optimizer_names(optimizer, model))}
    tensors = _load_tensors(root / OPTIMIZER_FILE)
    try:
        state: dict[int, dict] = {}
        for name, scalars in stored["scalars"].items():
            state[index[name]] = {key: torch.tensor(value, dtype=torch.float32)
                                  for key, value in scalars.items()}
        for key, tensor in tensors.items():
            name, field = key.rsplit(".", 1)
            state.setdefault(index[name], {})[field] = tensor
        groups = [{**g, "params": [index[n] for n in g["params"]]}
                  for g in stored["param_groups"]]
        for group in groups:
            group["betas"] = tuple(group["betas"])
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{root}: optimizer state does not fit this model ({e})") from e


def _flatten_optimizer(optimizer: torch.optim.Optimizer, names: dict[nn.Parameter, str]
                       ) -> tuple[dict[str, torch.Tensor], dict]:
    """Named state tensors, and the JSON part: param groups (parameters by name) and scalars."""
    order = [names[p] for group in optimizer.param_groups for p in group["params"]]
    state_dict = optimizer.state_dict()  # state keyed by position in `order`
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, float]] = {}
    for i, entry in state_dict["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                tensors[f"{order[i]}.{key}"] = value.detach().cpu().contiguous()
            else:  # AdamW's `step`: a 0-dim tensor, restored as one
                scalars.setdefault(order[i], {})[key] = float(value)
    groups = [{**g, "params": [order[i] for i in g["params"]]}
              for g in state_dict["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _optimizer_names(optimizer: torch.optim.Optimizer, model: nn.Module) -> list[str]:
    names = {p: n for n, p in model.named_parameters()}
    return [names[p] for group in optimizer.param_groups for p in group["params"]]


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (OSError, SafetensorError) as e:
        raise CheckpointError(f"{path}: unreadable ({e})") from e


def _dtype_name(dtype: torch.dtype) -> str:
    for name, known in DTYPES.items():
        if known == dtype:
            return name
    raise ValueError(f"cannot store weights as {dtype}; choose from {sorted(DTYPES)}")


def _resolve(path: Path) -> Path:
    """`path`, or the copy a save moved aside just before crashing."""
    if (path / META_FILE).is_file():
        return path
    aside = path.parent / f"{ASIDE_PREFIX}{path.name}"
    if (aside / META_FILE).is_file():
        log.warning("%s: missing; reading %s, left by an interrupted save", path, aside)
        return aside
    raise CheckpointError(f"{path}: not a checkpoint (no {META_FILE})")


@contextmanager
def _staging(final: Path) -> Iterator[Path]:
    """A fresh directory beside `final` to write into, swapped in when the block ends normally
    and deleted otherwise (KeyboardInterrupt included)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f"{TMP_PREFIX}{final.name}-*"):  # from a killed save
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f"{TMP_PREFIX}{final.name}-"))
    try:
        yield staging
        aside = final.parent / f"{ASIDE_PREFIX}{final.name}"
        if final.exists():  # else `aside` may be the only copy: keep it until the swap
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(final, aside)
        os.replace(staging, final)
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
