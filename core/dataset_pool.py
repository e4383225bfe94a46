"""Running one function over many items in fresh worker processes, safe on Ctrl+C.

Data-set builds are CPU-bound per song set; the pool scales them by processes (torch at one
thread each). The first Ctrl+C drops the queued items and lets the running ones finish, so every
finished item is recorded and nothing is left half-written.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from typing import TypeVar

import torch

T = TypeVar("T")


def run_each(function: Callable[..., T], items: Sequence, args: tuple, processes: int,
             preload: str) -> Iterator[T]:
    """`function(item, *args)` for each item, yielded as each finishes: in this process for one
    worker, else in a pool of fresh processes (forking this one could copy torch's thread pools
    and deadlock in them). `function` must be a module-level function of module `preload`,
    which a fork server imports once for all workers."""
    if not items:
        return
    workers = min(processes, len(items))
    if workers == 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in a worker: throughput scales by processes, not threads
        try:
            for item in items:
                yield function(item, *args)
        finally:
            torch.set_num_threads(threads)
        return
    context = _context(preload)
    # The workers ignore SIGINT from birth (a disposition children inherit): Ctrl+C reaches this
    # process alone, which drops the queued sets and lets the running ones finish and record.
    # A fork server is started with SIGINT ignored (quickly: its imports run after) and hands
    # that on; while it forks the workers (the submits wait for it), a Ctrl+C is held back, as
    # interrupting the handshake leaves a worker that dies with a traceback. Spawned workers
    # inherit SIG_IGN from the submits that start them; a Ctrl+C meanwhile is lost.
    forkserver = context.get_start_method() == "forkserver"
    if forkserver:
        from multiprocessing import forkserver as fork_server  # POSIX only

        with _sigint(signal.SIG_IGN):
            fork_server.ensure_running()
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)
    try:
        with _sigint(_HOLD if forkserver else signal.SIG_IGN):
            futures = [pool.submit(function, item, *args) for item in items]
        for future in as_completed(futures):
            yield future.result()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _context(preload: str) -> multiprocessing.context.BaseContext:
    """Fresh processes: a fork server where there is one (it imports this module, torch
    included, once, ~2 s, and forks each worker from that clean state), else spawn (Windows:
    each worker imports everything itself)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([preload])
        return context
    return multiprocessing.get_context("spawn")


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides how to stop
    torch.set_num_threads(1)


_HOLD = "hold"  # _sigint: raise a Ctrl+C received meanwhile when the block ends


@contextmanager
def _sigint(handling: object) -> Iterator[None]:
    """SIGINT handled as `handling` meanwhile: SIG_IGN, or _HOLD. Only the main thread can set
    signal handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = []
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN if handling is not _HOLD else
                             lambda number, frame: held.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt
