"""The daemon's answers to each JSON-RPC method, and the watcher's way into the job queue.

`answer` is the one place a request's outcome is sent: a result, or the ProtocolError any
handler raises (anything else is logged and answered INTERNAL_ERROR: the daemon keeps going).
Before a successful `initialize`, a connection gets UNAUTHORIZED when it has no token yet and
NOT_INITIALIZED otherwise. map.generate and map.continue answer JobAccepted before the job's
first job.progress (0%); timing.estimate answers when its estimate is done.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from companion.analysis import timing_work
from companion.jobs import JobContext, Outcome
from companion.mapping import ModelSummary, Target, decoding_options
from companion.session import MAX_AUTH_FAILURES, Session, tokens_equal
from companion.tasks import (
    ContinueRequest,
    Work,
    check_continue,
    check_generate,
    continue_work,
    generate_work,
)
from core.decoding import DecodingOptions
from protocol import (
    PROTOCOL_VERSION,
    AudioError,
    InitializeParams,
    InitializeResult,
    InternalError,
    InvalidParamsError,
    JobAccepted,
    JobCancelParams,
    JobCancelResult,
    JobListParams,
    JobListResult,
    MapContinueParams,
    MapGenerateParams,
    ModelInfo,
    NotInitializedError,
    ProtocolError,
    QueueFullError,
    QueueInfo,
    Request,
    Sampling,
    ServerStatusParams,
    ServerStatusResult,
    SongsDetected,
    TimingEstimateParams,
    UnauthorizedError,
    all_capabilities,
    check_compatible,
)

if TYPE_CHECKING:
    from companion.server import Daemon

log = logging.getLogger(__name__)


def server_version() -> str:
    try:
        return importlib.metadata.version("kiai")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


class Methods:
    def __init__(self, daemon: Daemon, model: ModelSummary | None) -> None:
        self.daemon = daemon
        self.model = (ModelInfo(model.name, model.vocab, model.preset) if model is not None
                      else ModelInfo("none", "none"))
        self.version = server_version()
        self._handlers: dict[type, Any] = {
            MapContinueParams: self._continue,
            MapGenerateParams: self._generate,
            JobCancelParams: self._cancel,
            JobListParams: self._list,
            ServerStatusParams: self._status,
            TimingEstimateParams: self._timing,
        }

    def answer(self, session: Session, request: Request) -> None:
        params = request.params
        try:
            if isinstance(params, InitializeParams):
                result = self._initialize(session, params)
            elif not session.authenticated:
                raise UnauthorizedError("send initialize with the token first")
            elif not session.initialized:
                raise NotInitializedError()
            else:
                result = self._handlers[type(params)](session, request)
            if result is not None:
                session.send(request.reply(result))
        except ProtocolError as e:
            session.send(request.reply_error(e))
        except Exception as e:
            log.exception("%s failed", request.method)
            session.send(request.reply_error(InternalError(f"{type(e).__name__}: {e}")))

    # initialize

    def _initialize(self, session: Session, params: InitializeParams) -> InitializeResult:
        if params.token is not None:
            if not tokens_equal(params.token, self.daemon.token):
                session.auth_failures += 1
                if session.auth_failures >= MAX_AUTH_FAILURES:
                    session.close(1008, "too many wrong tokens")
                raise UnauthorizedError()
            session.authenticate()
        if not session.authenticated:
            raise UnauthorizedError("send the token in initialize (or an Authorization header)")
        check_compatible(params.protocol_version)
        session.initialized = True
        return InitializeResult(self.version, PROTOCOL_VERSION, all_capabilities(), self.model)

    # map.continue, map.generate

    def _continue(self, session: Session, request: Request) -> None:
        p: MapContinueParams = request.params
        space = self.daemon.space
        in_place = p.write == "inPlace"
        path = check_continue(space, p.beatmap, p.expected_md5, in_place)
        work = continue_work(space, ContinueRequest(
            path, p.beatmap, p.from_ms, p.until_ms, p.expected_md5, in_place,
            _options(p.sampling, p.spacing, self.daemon.config.precision)))
        self._submit(session, request, "map.continue", work)

    def _generate(self, session: Session, request: Request) -> None:
        p: MapGenerateParams = request.params
        song = check_generate(self.daemon.space, p.song_folder, p.audio)
        target = Target(p.stars, p.ar, p.cs, p.od, p.hp)
        work = generate_work(self.daemon.space, song, target,
                             _options(p.sampling, p.spacing, self.daemon.config.precision), p.bpm,
                             p.meter)
        self._submit(session, request, "map.generate", work)

    def _submit(self, session: Session, request: Request, method: str, work: Any) -> None:
        jobs = self.daemon.jobs
        if jobs is None:
            raise InternalError("the daemon is starting")
        jobs.submit(method, work,
                    accepted=lambda job_id: session.send(request.reply(JobAccepted(job_id))))

    # timing.estimate: answered when done, from the analysis thread (companion.analysis)

    def _timing(self, session: Session, request: Request) -> None:
        p: TimingEstimateParams = request.params
        song = check_generate(self.daemon.space, p.song_folder, p.audio, writes=False)
        work = timing_work(self.daemon.space, song, p.bpm, p.meter)

        def done(result: Any) -> None:
            if isinstance(result, ProtocolError):
                session.send(request.reply_error(result))
                return
            try:
                session.send(request.reply(result))
            except Exception as e:  # a result the schema refuses: a bug, answered as one
                log.exception("%s: cannot send the result", request.method)
                session.send(request.reply_error(InternalError(f"{type(e).__name__}: {e}")))

        self.daemon.analyses.run(work, done)

    # job.cancel, job.list, server.status

    def _cancel(self, session: Session, request: Request) -> JobCancelResult:
        jobs = self.daemon.jobs
        if jobs is None:
            raise InternalError("the daemon is starting")
        return JobCancelResult(jobs.cancel(request.params.job_id))

    def _list(self, session: Session, request: Request) -> JobListResult:
        jobs = self.daemon.jobs
        return JobListResult(jobs.jobs() if jobs is not None else ())

    def _status(self, session: Session, request: Request) -> ServerStatusResult:
        d = self.daemon
        length = d.jobs.length if d.jobs is not None else 0
        return ServerStatusResult(
            self.version, round(time.monotonic() - d.started, 3),
            QueueInfo(length, d.config.queue_capacity), d.watcher is not None, self.model,
            songs_folder=str(d.songs.root))

    # The watcher's new songs

    def song_detected(self, folder: Path) -> None:
        self.daemon.broadcast(SongsDetected(self.daemon.songs.relative(folder)))

    def song_ready(self, folder: Path, audio_failed: Callable[[], None] | None = None,
                   ended: Callable[[bool], None] | None = None) -> bool:
        """Queue one generation for a new song folder; False when the queue is full (the
        watcher tries again later). `audio_failed()` runs, on the job's thread, when the job
        fails on the folder's audio (a copy that stalled looks finished, its audio truncated);
        `ended(record)` when it ends at all, queued or running (or at once, where no job is
        made): `record` False where the daemon's stopping cut it short.
        """
        jobs = self.daemon.jobs
        if jobs is None:
            return False
        try:
            self.daemon.songs.check_links(folder)
        except ProtocolError as e:
            log.warning("not generating for %s: %s", folder.name, e.message)
            if ended is not None:
                ended(True)
            return True
        target = Target(self.daemon.config.auto_stars)
        work = generate_work(self.daemon.space, folder, target,
                             DecodingOptions(precision=self.daemon.config.precision))
        if audio_failed is not None:
            work = _telling(work, AudioError, audio_failed)

        def on_end(state: str, closing: bool) -> None:
            if ended is not None:
                ended(handled_after(state, closing))

        try:
            jobs.submit("map.generate", work, on_end=on_end)
        except QueueFullError:
            return False
        return True


def handled_after(state: str, closing: bool) -> bool:
    """Whether a new song's generation that ended so leaves the folder handled: not where the
    daemon's stopping cancelled it (queued or running); yes where it finished, failed (audio
    that never decodes must not be tried at every start; a copy still going on is the
    watcher's to see, SongsWatcher.stop) or a client cancelled it."""
    return not (state == "cancelled" and closing)


def _telling(work: Work, error: type[Exception], callback: Callable[[], None]) -> Work:
    """`work` that calls `callback()` before it ends with `error`."""
    def run(context: JobContext) -> Outcome:
        try:
            return work(context)
        except error:
            callback()
            raise
    return run


def _options(sampling: Sampling | None, spacing: float | None = None,
             precision: str = "auto") -> DecodingOptions:
    s = sampling or Sampling()
    try:
        options = decoding_options(s.method, s.temperature, s.top_k, s.top_p, s.beam_size,
                                   s.seed, s.draw_gaps)
    except ValueError as e:
        raise InvalidParamsError(str(e), "params.sampling") from e
    # the schema keeps spacing > 0; the config checked precision
    return dataclasses.replace(options, spacing=spacing, precision=precision)
