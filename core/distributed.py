"""Multi-process training under `torchrun` (DESIGN §7): which process this is, on which device.

torchrun starts one process per device and tells each its place through environment variables;
the processes meet in a process group (gloo on CPU, nccl on CUDA) through which
DistributedDataParallel averages gradients. A plain `python` run is rank 0 of 1 with no group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Processes:
    """This process's place in a `torchrun` launch (rank 0 of 1 otherwise)."""

    rank: int
    world: int
    device: torch.device
    owns_group: bool  # the process group was started here and is ended here

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_processes(device: str) -> Processes:
    """Join the `torchrun` process group from its environment variables (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR, MASTER_PORT) when there is more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise ValueError("device cuda asked for, but torch sees no CUDA device")
    target = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(target)
        torch.backends.cuda.matmul.allow_tf32 = True  # nanoGPT's choice: tf32 matmuls
        torch.backends.cudnn.allow_tf32 = True
    owns = world > 1 and not dist.is_initialized()
    if owns:
        backend = "nccl" if cuda else "gloo"
        available = dist.is_nccl_available() if cuda else dist.is_gloo_available()
        if not (dist.is_available() and available):
            raise ValueError(f"this torch build has no {backend} backend for multi-process runs")
        dist.init_process_group(backend)
    return Processes(rank, world, target, owns)


def end_processes(procs: Processes, finished: bool = True) -> None:
    """Leave the process group; when every process `finished` its run, first wait for the
    others at a barrier: a gloo process tearing its connections down while its peer still
    holds them can abort the peer (rank 1 of a CI run died with SIGABRT so, once)."""
    if procs.owns_group:
        if finished:
            dist.barrier()
        dist.destroy_process_group()
