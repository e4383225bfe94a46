"""Training and validation batches from a data set (DESIGN §7), for core.training.

Validation holds out whole song sets, not windows: windows of one song overlap in audio and
patterns, and difficulties of one set share their song, so a window split would leak. The split
depends only on the sets' keys, so a run and its resumption, on any number of processes, agree.

Batches are reproducible from (seed, epoch, step): DistributedSampler orders an epoch from
(seed, epoch) and deals it out to the processes, the windows of an epoch come from
(seed, epoch, item) (core.dataset_loader), and a resumed run skips the batches it has done.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, DistributedSampler, Subset

from core.dataset import DatasetError
from core.dataset_loader import SILENCE, WindowDataset, collate


@dataclass(frozen=True)
class Split:
    """Window indices of the training and validation song sets."""

    train: list[int]
    val: list[int]
    val_sets: list[str]  # shard names of the held-out sets


def split_by_set(data: WindowDataset, val_fraction: float) -> Split:
    """Hold out about `val_fraction` of the song sets (at least one when there are two or more,
    none when there is one), chosen by a hash of their folder names: the same sets wherever the
    Songs folder is (shard names are digests of absolute paths)."""
    sets = sorted({(ref.set_name, ref.shard.name) for ref in data.maps})
    if not sets:
        raise DatasetError(f"{data.root}: the data set holds no maps")
    held = 0 if len(sets) < 2 or val_fraction <= 0 else max(1, round(val_fraction * len(sets)))
    by_hash = sorted(sets, key=lambda s: (hashlib.sha256(s[0].encode()).hexdigest(), s[1]))
    val_sets = {shard for _, shard in by_hash[:min(held, len(sets) - 1)]}
    train, val = [], []
    start = 0
    for ref in data.maps:  # items of a map are contiguous (WindowDataset.window)
        (val if ref.shard.name in val_sets else train).extend(range(start, start + ref.windows))
        start += ref.windows
    return Split(train, val, sorted(val_sets))


class Batches:
    """The batches of one process, epoch by epoch.

    `world` processes each take every `world`-th window of the epoch's order (DistributedSampler
    pads the order so all get as many), in batches of `batch_size`; the last batch of an epoch
    may be smaller.
    """

    def __init__(self, data: WindowDataset, indices: list[int], batch_size: int, *, seed: int,
                 shuffle: bool, rank: int = 0, world: int = 1, workers: int = 0,
                 pin_memory: bool = False):
        self.data, self.batch_size = data, batch_size
        self.workers, self.pin_memory = workers, pin_memory
        self.subset = Subset(data, indices)
        self.sampler = DistributedSampler(self.subset, num_replicas=world, rank=rank,
                                          shuffle=shuffle, seed=seed, drop_last=False)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of `epoch` after the first `skip`, which are never loaded."""
        self.data.set_epoch(epoch)  # before the loader starts: its workers copy the data set
        self.sampler.set_epoch(epoch)
        order = list(self.sampler)[skip * self.batch_size:]
        loader = DataLoader(self.subset, batch_size=self.batch_size, sampler=order,
                            num_workers=self.workers, collate_fn=collate,
                            pin_memory=self.pin_memory)
        yield from loader


def drop_audio(audio: torch.Tensor, p: float) -> torch.Tensor:
    """Silence each window's audio (B, N_MELS, F) with probability `p`, as a map without its
    audio would give (DESIGN §7), so the decoder learns placement from maps alone and does not
    lean on audio it may not have. Draws from the global torch RNG."""
    if p <= 0:
        return audio
    silent = torch.rand(audio.shape[0], device=audio.device) < p  # (B,)
    return torch.where(silent[:, None, None], torch.full_like(audio, SILENCE), audio)
