"""The daemon: one websockets server on 127.0.0.1, the job queue and the watcher (DESIGN §10).

    daemon = Daemon(config, token)
    await daemon.start()        # binds (config.port 0: a free port, see daemon.port)
    ...
    await daemon.stop()         # refuse new connections, cancel jobs, close connections

One handler per connection, registered in try/finally (the websockets examples). Each frame is
decoded by protocol.decode_message; whatever is wrong with it is answered with a JSON-RPC error
on the same connection, which keeps serving (methods.py answers the requests).
`run_daemon` is `kiai serve`: the single-instance lock, the token file, signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response as HttpResponse

from companion.analysis import Analyses
from companion.config import Config
from companion.instance import InstanceLock, write_token
from companion.jobs import JobQueue
from companion.mapping import describe_model, load_generator
from companion.methods import Methods
from companion.safety import OwnWrites, SongsFolder
from companion.session import RateLimiter, Session, check_handshake, header_token_ok
from companion.tasks import Workspace
from companion.watcher import SongsWatcher
from core.generate import Generator
from protocol import (
    InvalidRequestError,
    Message,
    Notification,
    ProtocolError,
    RateLimitedError,
    Request,
    decode_message,
    encode_error,
    encode_notification,
)

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # loopback only (DESIGN §10): never another interface
# Frames above this close the connection (1009); those above protocol.MAX_REQUEST_BYTES (64 KiB)
# are answered with FRAME_TOO_LARGE and the connection goes on.
MAX_FRAME_BYTES = 1 << 20
MAX_CONNECTIONS = 128  # clients are a few scripts and overlays; this bounds what they can hold
# Connections without the token in a header (browser pages, which send it in initialize within
# session.AUTH_DEADLINE_S): any local process can open these by claiming an allowed Origin, so
# they get their own small share, and cannot keep the token's holders out.
MAX_UNAUTHENTICATED = 16


class Daemon:
    def __init__(self, config: Config, token: str, config_dir: Path | None = None,
                 load_model: Callable[[], Generator] | None = None) -> None:
        self.config = config
        self.token = token
        self.config_dir = config_dir
        self.songs = SongsFolder(config.songs)
        self.space = Workspace(self.songs, OwnWrites())
        self._load_model = load_model or (lambda: load_generator(config.model))
        self.sessions: set[Session] = set()
        self.started = time.monotonic()
        self.server: Server | None = None
        self.jobs: JobQueue | None = None
        self.watcher: SongsWatcher | None = None
        self.analyses = Analyses()
        self.methods = Methods(self, describe_model(config.model))

    @property
    def port(self) -> int:
        if self.server is None:
            raise RuntimeError("the daemon is not started")
        return self.server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self.jobs = JobQueue(self.config.queue_capacity, self._load_model, self.broadcast)
        self.server = await serve(
            self._handler, HOST, self.config.port,
            process_request=self._process_request,
            origins=[None, *self.config.allowed_origins],  # also checked in process_request
            max_size=MAX_FRAME_BYTES, server_header=None)
        if self.config.watch and self.config_dir is not None:
            self.watcher = SongsWatcher(self.songs.root, self.config_dir / "state.json",
                                        self.config.settle_s, self.space.own,
                                        on_detected=self.methods.song_detected,
                                        on_ready=self.methods.song_ready)
            await self.watcher.start()
        log.info("listening on ws://%s:%d/ (Songs: %s)", HOST, self.port, self.songs.root)

    async def stop(self) -> None:
        """Stop accepting, stop the watcher, cancel queued jobs and let the running one stop at
        its next decoding step, tell the clients, close every connection."""
        if self.server is None:
            return
        self.server.server.close()  # the listening socket: no new connections
        if self.watcher is not None:
            await self.watcher.stop()
        self.analyses.close()
        if self.jobs is not None:
            await self.jobs.close()
        await asyncio.gather(*(s.flush(2.0) for s in list(self.sessions)))
        self.server.close()  # close every connection (1001 going away), wait for handlers
        await self.server.wait_closed()
        self.server = None

    def broadcast(self, notification: Any) -> None:
        """A notification to every initialized connection."""
        try:
            frame = encode_notification(notification)
        except (TypeError, ValueError):  # a bug; the job worker calling this must go on
            log.exception("cannot encode %r", notification)
            return
        for session in list(self.sessions):
            if session.initialized:
                session.send(frame)

    def _process_request(self, connection: ServerConnection, request: HttpRequest
                         ) -> HttpResponse | None:
        if len(self.sessions) >= MAX_CONNECTIONS:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "too many connections\n")
        refusal = check_handshake(connection, request.headers, self.token,
                                  self.config.allowed_origins)
        if refusal is None and not header_token_ok(request.headers, self.token) and sum(
                not s.authenticated for s in self.sessions) >= MAX_UNAUTHENTICATED:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                                      "too many connections waiting to authenticate\n")
        return refusal

    async def _handler(self, ws: ServerConnection) -> None:
        authenticated = header_token_ok(ws.request.headers, self.token)
        session = Session(ws, authenticated,
                          RateLimiter(self.config.rate_per_s, self.config.rate_burst))
        self.sessions.add(session)
        try:
            async for frame in ws:
                self._on_frame(session, frame)
        except ConnectionClosed:
            pass
        finally:
            self.sessions.discard(session)
            await session.finish()

    def _on_frame(self, session: Session, frame: str | bytes) -> None:
        message: Message | None = None
        error: ProtocolError | None = None
        try:
            message = decode_message(frame)
        except ProtocolError as e:
            error = e
        retry_after = session.rate.take()  # malformed frames count too
        if retry_after is not None:
            request_id = message.id if isinstance(message, Request) else \
                (error.request_id if error is not None else None)
            session.send(encode_error(request_id, RateLimitedError(retry_after)))
        elif error is not None:
            session.send(encode_error(error.request_id, error))
        elif isinstance(message, Request):
            self.methods.answer(session, message)
        elif isinstance(message, Notification):
            session.send(encode_error(None, InvalidRequestError(
                f"{message.method} is a notification the daemon sends, not one it receives")))
        else:
            session.send(encode_error(None, InvalidRequestError(
                "the daemon sends no requests: there is nothing to respond to")))


def run_daemon(config: Config, config_dir: Path) -> None:
    """`kiai serve`: hold the config folder's lock, write a fresh token, serve until Ctrl+C or
    SIGTERM. AlreadyRunning if another daemon holds the lock."""
    stuck: list[bool] = []  # set by _serve as it stops, however asyncio.run ends
    try:
        with InstanceLock(config_dir) as lock:
            token = write_token(config_dir)
            asyncio.run(_serve(config, config_dir, token, lock, stuck))
    except KeyboardInterrupt:  # Windows: no signal handlers, Ctrl+C comes out of asyncio.run
        if not any(stuck):
            raise
    if any(stuck):  # a job blocked in I/O that never returns (a named pipe for a map, a dead
        # network share): Python would wait for its thread at exit, for ever
        log.error("a job is still blocked; exiting without waiting for it")
        logging.shutdown()
        sys.stderr.flush()
        os._exit(1)


async def _serve(config: Config, config_dir: Path, token: str, lock: InstanceLock,
                 stuck: list[bool]) -> None:
    """Serve until a signal; `stuck` gets whether a job was left blocked (JobQueue.close)."""
    daemon = Daemon(config, token, config_dir)
    await daemon.start()
    lock.update(daemon.port)
    print(f"kiai daemon on ws://{HOST}:{daemon.port}/ (Songs: {daemon.songs.root}; token in "
          f"{config_dir / 'token'}; Ctrl+C stops it)", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, AttributeError):  # Windows: no handlers
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("kiai daemon stopping...", file=sys.stderr, flush=True)
        await daemon.stop()
        stuck.append(daemon.jobs is not None and daemon.jobs.stuck)
