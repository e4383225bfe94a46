"""One client connection: its handshake checks, its auth state, its rate limit and its outbox.

Handshake (websockets' `process_request`, before any frame), after jupyter-server's checks:
- Host must name the loopback interface (a DNS-rebinding page sends its own host name);
- a browser's Origin must be allowed by the config (cross-site websocket hijacking); clients that
  are not browsers send no Origin;
- a token in `Authorization: Bearer` must be the daemon's (compared with hmac.compare_digest).
  Without the header, only an allowed browser page may connect (browsers cannot set headers); it
  must then send the token in `initialize` within AUTH_DEADLINE_S. A client that is not a
  browser and sends no token is refused with HTTP 401.

Everything sent to a client goes through its outbox, one writer task per connection, so replies
and notifications leave in the order they were produced and a slow reader never blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

from protocol import parse_bearer

AUTH_DEADLINE_S = 10.0  # a browser connection without the header has this long to initialize
MAX_AUTH_FAILURES = 3  # wrong tokens in initialize before the connection is closed
MAX_OUTBOX = 4096  # unsent frames before a client that does not read is disconnected
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]"}


def tokens_equal(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode("utf-8"))


def header_token_ok(headers: Headers, token: str) -> bool:
    given = parse_bearer(headers.get("Authorization"))
    return given is not None and tokens_equal(given, token)


def check_handshake(connection: ServerConnection, headers: Headers, token: str,
                    origins: tuple[str, ...]) -> Response | None:
    """An HTTP refusal for a handshake that fails the checks above, or None to accept it."""
    if any(len(headers.get_all(name)) > 1 for name in ("Host", "Origin", "Authorization")):
        return connection.respond(HTTPStatus.BAD_REQUEST, "repeated Host, Origin or "
                                  "Authorization header\n")
    host = headers.get("Host", "")
    hostname, _, port = host.rpartition(":")
    if not hostname or host.endswith("]"):  # no port (an IPv6 address holds colons)
        hostname, port = host, "0"
    if hostname.lower() not in LOOPBACK_HOSTS or not (port.isascii() and port.isdigit()):
        return connection.respond(HTTPStatus.FORBIDDEN, "the Host must be 127.0.0.1\n")
    origin = headers.get("Origin")
    if origin is not None and origin not in origins:
        return connection.respond(HTTPStatus.FORBIDDEN,
                                  "this Origin is not allowed (allowed_origins in config.toml)\n")
    if "Authorization" in headers:
        if not header_token_ok(headers, token):
            return connection.respond(HTTPStatus.UNAUTHORIZED, "wrong token\n")
    elif origin is None:
        return connection.respond(
            HTTPStatus.UNAUTHORIZED,
            "missing token: send 'Authorization: Bearer <token>', the token being the content"
            " of the daemon's token file\n")
    return None


class RateLimiter:
    """A token bucket: `burst` requests at once, refilled at `rate_per_s`."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate, self.burst = rate_per_s, burst
        self._tokens = float(burst)
        self._last = time.monotonic()

    def take(self) -> float | None:
        """None when a request may go ahead; else the seconds until one may."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return round((1 - self._tokens) / self.rate, 3)


class Session:
    """A connection's state; `send` queues a frame for it."""

    def __init__(self, ws: ServerConnection, authenticated: bool, rate: RateLimiter) -> None:
        self.ws = ws
        self.authenticated = authenticated
        self.initialized = False
        self.auth_failures = 0
        self.rate = rate
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write())
        self._deadline: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None
        if not authenticated:
            self._deadline = asyncio.get_running_loop().call_later(
                AUTH_DEADLINE_S, self._expire)

    def send(self, frame: str) -> None:
        if self._writer.done():
            return
        if self._outbox.qsize() >= MAX_OUTBOX:  # it does not read: drop, and disconnect it
            self.close(1008, "too many unread messages")
            return
        self._outbox.put_nowait(frame)

    def authenticate(self) -> None:
        self.authenticated = True
        if self._deadline is not None:
            self._deadline.cancel()

    def close(self, code: int, reason: str) -> None:
        """Close the connection once what is queued now (an error reply, say) has been sent."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        await self.flush(1.0)
        self._writer.cancel()
        await self.ws.close(code, reason)

    async def flush(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until the frames queued so far have been sent."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._outbox.join(), timeout_s)

    async def finish(self) -> None:
        """The connection has closed: stop the writer."""
        if self._deadline is not None:
            self._deadline.cancel()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    def _expire(self) -> None:
        if not self.authenticated:
            self.close(1008, "no token: send it in initialize")

    async def _write(self) -> None:
        while True:
            frame = await self._outbox.get()
            try:
                await self.ws.send(frame)
            except ConnectionClosed:
                return
            finally:
                self._outbox.task_done()
