"""The job queue: bounded, one job at a time on a worker thread, the model loaded once (DESIGN §10).

Jobs are scheduled on the event loop and run in a single-thread executor (torch releases the GIL,
so the loop keeps answering while a job decodes). Each job's life, as clients see it:

    job.progress queued 0  ->  loading 0  ->  decoding 0..100  ->  writing 100
    ->  job.finished {path, backupPath?, stats}   or   job.failed {code, message, data}

`job.cancel` removes a queued job, or sets a flag the running job checks between decoding steps
(core raises JobCancelled); either way the job ends `cancelled` with job.failed CANCELLED. Once
a job starts writing (JobContext.commit) it is too late: job.cancel answers `cancelled: false`
and the job finishes. Jobs belong to the daemon, not to a connection: a client that goes away
does not stop its job. Job ids carry a token new at each start (`j-4kq2-1`), so that a client
reconnecting after a restart cannot cancel a stranger's job by its old id.

A stage's percent never goes back; a new stage (`retry 2`, where a map missed its stars and is
generated again) starts its own from 0.

Every notification goes through `publish`, on the loop's thread; the worker thread reaches it
through `call_soon_threadsafe`, which keeps the order in which the worker produced them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from core.decoding import JobCancelled
from core.generate import Generator
from protocol import (
    InternalError,
    JobCancelledError,
    JobFailed,
    JobFinished,
    JobInfo,
    JobNotFoundError,
    JobProgress,
    JobStats,
    ModelError,
    ProtocolError,
    QueueFullError,
    encode_notification,
    iso_utc,
)

log = logging.getLogger(__name__)

HISTORY = 256  # ended jobs kept for job.list (job.list returns at most 1024)


@dataclass(frozen=True)
class Outcome:
    """What a finished job wrote; paths relative to Songs."""

    path: str
    objects: int
    stars: float
    backup_path: str | None = None
    timing: str | None = None  # map.generate: where its timing came from (mapping.Generated)
    attempts: int | None = None  # map.generate: generations run
    alternative_bpm: float | None = None  # map.generate, estimated timing: the runner-up tempo
    bpm_tag: float | None = None  # map.generate, estimated timing: the audio file's BPM tag
    tempo_from: str | None = None  # map.generate, estimated timing: given, tag or audio


@dataclass(eq=False)
class Job:
    id: str
    method: str  # map.generate or map.continue
    work: Callable[[JobContext], Outcome]  # runs on the worker thread
    created_at: float = field(default_factory=time.time)
    state: str = "queued"  # queued, running, finished, failed, cancelled
    stage: str = "queued"
    percent: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    committed: bool = False  # writing: too late to cancel (JobContext.commit)
    # told how the job ended, on the loop's thread: (state, whether the daemon was stopping)
    on_end: Callable[[str, bool], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def info(self) -> JobInfo:
        return JobInfo(self.id, self.method, self.state, self.percent, iso_utc(self.created_at))


class JobContext:
    """What a job's work function gets: the model, progress reports, the cancel flag."""

    def __init__(self, job: Job, queue: JobQueue) -> None:
        self.job, self._queue = job, queue
        self._stage, self._percent = "", 0.0  # the worker's own: job.percent lags behind it

    def generator(self) -> Generator:
        return self._queue.generator()

    def progress(self, stage: str, percent: float) -> None:
        """Report a stage and its percent (0..100; never going back within a stage)."""
        if stage != self._stage:
            self._stage, self._percent = stage, 0.0
        self._percent = round(min(100.0, max(self._percent, percent)), 1)
        self._queue.from_worker(self._queue.update, self.job, stage, self._percent)

    def should_stop(self) -> bool:
        return self.job.cancel.is_set()

    def check_cancelled(self) -> None:
        if self.job.cancel.is_set():
            raise JobCancelled()

    def commit(self) -> None:
        """The last point a job can be cancelled at, before it writes: JobCancelled if it was,
        else job.cancel answers False from now on (and the stage is `writing`)."""
        with self.job.lock:
            self.check_cancelled()
            self.job.committed = True
        self.progress("writing", 100.0)


class JobQueue:
    def __init__(self, capacity: int, load_model: Callable[[], Generator],
                 publish: Callable[[Any], None]) -> None:
        self.capacity = capacity
        self._load_model = load_model
        self._publish = publish  # a notification object -> every initialized connection
        self._pending: deque[Job] = deque()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._running: Job | None = None
        self._ids = itertools.count(1)
        self._token = "".join(secrets.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(4))
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kiai-job")
        self._loop = asyncio.get_running_loop()
        self._generator: Generator | None = None
        self._model_error: ProtocolError | None = None
        self._closing = False
        self.stuck = False  # close() found the running job blocked past its timeout
        self._task = asyncio.create_task(self._worker(), name="kiai-jobs")

    # The loop's side

    @property
    def closing(self) -> bool:
        """Whether the daemon is stopping (close() has begun)."""
        return self._closing

    @property
    def length(self) -> int:
        """Jobs waiting or running."""
        return len(self._pending) + (self._running is not None)

    def submit(self, method: str, work: Callable[[JobContext], Outcome],
               accepted: Callable[[str], None] | None = None,
               on_end: Callable[[str, bool], None] | None = None) -> Job:
        """Queue a job; `accepted(job_id)` runs first (the reply precedes job.progress 0%),
        `on_end` however it ends (Job.on_end), queued or running.
        QueueFullError when `capacity` jobs are waiting or running."""
        if self._closing or self.length >= self.capacity:
            raise QueueFullError(self.capacity)
        job = Job(f"j-{self._token}-{next(self._ids)}", method, work, on_end=on_end)
        self._jobs[job.id] = job
        self._forget_old()
        if accepted is not None:
            accepted(job.id)
        self._pending.append(job)
        self._publish(JobProgress(job.id, job.stage, job.percent))
        self._wakeup.set()
        return job

    def cancel(self, job_id: str, reason: str = "cancelled by a client") -> bool:
        """Stop a job; False when it had already ended or is writing. JobNotFoundError if
        unknown."""
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        if job.state == "queued":
            self._pending.remove(job)
            job.cancel.set()
            self._end(job, "cancelled", JobFailed.from_error(job.id, JobCancelledError(reason)))
            return True
        if job.state == "running":
            with job.lock:
                if job.committed:
                    return False
                job.cancel.set()
            return True
        return False

    def jobs(self) -> tuple[JobInfo, ...]:
        return tuple(job.info() for job in self._jobs.values())

    def update(self, job: Job, stage: str, percent: float) -> None:
        if job.state not in ("queued", "running"):
            return
        job.stage, job.percent = stage, percent
        self._publish(JobProgress(job.id, stage, percent))

    def from_worker(self, callback: Callable[..., None], *args: Any) -> None:
        """Run `callback(*args)` on the loop's thread (from the worker thread)."""
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening any more
            self._loop.call_soon_threadsafe(callback, *args)

    async def close(self, timeout_s: float = 30.0) -> None:
        """Cancel queued jobs, stop the running one at its next decoding step, end the worker."""
        self._closing = True
        for job in list(self._pending):
            self.cancel(job.id, "the daemon is shutting down")
        if self._running is not None:
            self._running.cancel.set()
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except asyncio.TimeoutError:
            log.warning("the running job did not stop within %.0f s", timeout_s)
            self.stuck = True
            self._task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _worker(self) -> None:
        await self._loop.run_in_executor(self._executor, self._load)
        while True:
            while not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            job = self._pending.popleft()
            self._running = job
            job.state = "running"
            log.info("job %s (%s) started", job.id, job.method)
            started = time.monotonic()
            try:
                outcome = await self._loop.run_in_executor(self._executor, self._execute, job)
            finally:
                self._running = None
            duration = time.monotonic() - started
            if isinstance(outcome, Outcome):
                outcome = self._finish(job, outcome, duration)
            if outcome is not None:
                state = "cancelled" if isinstance(outcome, JobCancelledError) else "failed"
                self._end(job, state, JobFailed.from_error(job.id, outcome))

    def _finish(self, job: Job, outcome: Outcome, duration: float) -> ProtocolError | None:
        """End the job with job.finished; the error to end it with instead where the result
        cannot be sent (a path that is no UTF-8, from a folder name: no client could be told,
        and job.list would disagree with what they heard)."""
        finished = JobFinished(
            job.id, outcome.path, JobStats(outcome.objects, outcome.stars, duration,
                                           outcome.timing, outcome.attempts,
                                           outcome.alternative_bpm, outcome.bpm_tag,
                                           outcome.tempo_from),
            backup_path=outcome.backup_path)
        try:
            encode_notification(finished)
        except (TypeError, ValueError) as e:
            log.error("job %s wrote %s but cannot say so: %s", job.id, ascii(outcome.path), e)
            return InternalError(f"the map was written to {outcome.path!a}, a path the "
                                 "protocol cannot carry")
        self._end(job, "finished", finished)
        return None

    def _end(self, job: Job, state: str, notification: Any) -> None:
        job.state = state
        said = (f"wrote {notification.path!a}" if isinstance(notification, JobFinished)
                else getattr(notification, "message", ""))
        log.info("job %s %s: %s", job.id, state, said)
        self._publish(notification)
        if job.on_end is not None:
            try:
                job.on_end(state, self._closing)
            except Exception:  # the watcher's bookkeeping must not stop the queue
                log.exception("job %s: its end could not be recorded", job.id)

    def _forget_old(self) -> None:
        ended = [j for j in self._jobs.values() if j.state not in ("queued", "running")]
        for job in ended[: max(0, len(ended) - HISTORY)]:
            del self._jobs[job.id]

    # The worker thread's side

    def generator(self) -> Generator:
        if self._generator is None:
            raise self._model_error or ModelError("the model is not loaded")
        return self._generator

    def _load(self) -> None:
        try:
            self._generator = self._load_model()
        except Exception as e:  # CheckpointError, NoModelError, whatever a bad file raises
            self._model_error = ModelError(str(e) or type(e).__name__)
            log.error("no model: %s (jobs will fail with MODEL_ERROR)", self._model_error)

    def _execute(self, job: Job) -> Outcome | ProtocolError:
        if job.cancel.is_set():
            return JobCancelledError("cancelled before it started")
        context = JobContext(job, self)
        context.progress("loading", 0.0)
        try:
            return job.work(context)
        except JobCancelled:
            reason = "the daemon is shutting down" if self._closing else "cancelled by a client"
            return JobCancelledError(reason)
        except ProtocolError as e:
            return e
        except Exception as e:
            log.exception("job %s failed", job.id)
            return InternalError(f"{type(e).__name__}: {e}")
