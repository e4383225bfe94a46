"""Requests answered from a song's audio, outside the job queue: timing.estimate.

An editor plugin asks for a new song's red lines while a map may be generating, and waits for
them; the estimate takes a few seconds, so it runs on a worker thread of its own instead of
queueing behind a job of minutes. At most CAPACITY wait or run at once (QUEUE_FULL beyond), so
that no client can pile up work. The result is the request's response: nothing is written, so
there is no job to follow or cancel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from companion.tasks import Workspace, as_protocol_errors
from core.beatmap.writer import timing_point_line
from core.song_input import resolve
from core.song_timing import estimate_song_timing
from protocol import (
    InternalError,
    JobCancelledError,
    ProtocolError,
    QueueFullError,
    RedLine,
    TimingEstimateResult,
)

log = logging.getLogger(__name__)

CAPACITY = 4  # estimates waiting or running, across all clients


class Analyses:
    """The worker thread for requests answered from the audio."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kiai-analysis")
        self._pending = 0
        self._closing = False

    def run(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        """Run `work` on the worker thread, then `done(result)` on the loop, where result is
        work's return value or the ProtocolError it ended with. QueueFullError at once when
        `capacity` are waiting or running (JobCancelledError once closing)."""
        if self._closing:
            raise JobCancelledError("the daemon is shutting down")
        if self._pending >= self.capacity:
            raise QueueFullError(self.capacity, "timing estimate queue", "estimates")
        self._pending += 1
        future = asyncio.get_running_loop().run_in_executor(self._executor, _guarded, work)

        def finished(f: asyncio.Future[Any]) -> None:
            self._pending -= 1
            done(JobCancelledError("the daemon is shutting down") if f.cancelled()
                 else f.result())

        future.add_done_callback(finished)

    def close(self) -> None:
        """Drop what waits (answered CANCELLED); what runs ends with no one to tell."""
        self._closing = True
        self._executor.shutdown(wait=False, cancel_futures=True)


def _guarded(work: Callable[[], Any]) -> Any:
    try:
        return work()
    except ProtocolError as e:
        return e
    except Exception as e:
        log.exception("an analysis failed")
        return InternalError(f"{type(e).__name__}: {e}")


def timing_work(space: Workspace, song: Path, bpm: float | None, meter: int | None
                ) -> Callable[[], TimingEstimateResult]:
    """timing.estimate for the song folder or audio file `song` (a real path inside Songs)."""
    def work() -> TimingEstimateResult:
        with as_protocol_errors(space.songs):
            audio = space.songs.contain(resolve(song).audio)
            timing = estimate_song_timing(audio, space.features(audio), bpm=bpm, meter=meter)
        points = timing.points
        return TimingEstimateResult(
            space.songs.relative(audio),
            tuple(RedLine(p.time, round(p.bpm, 6), p.beat_length, p.meter) for p in points),
            tuple(timing_point_line(p) for p in points),
            timing.tempo_from, timing.alternative_bpm, timing.bpm_tag)

    return work
