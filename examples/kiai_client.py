"""A small asyncio client for the kiai daemon, shared by the example scripts.

It uses only the protocol package (message classes and codec), the standard library and
websockets:

    async with KiaiClient.connect(url, token, "my-tool") as client:
        status = await client.call(ServerStatusParams())      # typed result
        accepted = await client.call(MapContinueParams("Song/map.osu", from_ms=62500))
        async for notification in client.notifications():    # JobProgress, JobFinished, ...
            ...

Errors a user can act on (the daemon is not running, the token is refused, the connection
dropped) are raised as ClientError with a message to print; errors the daemon answers with are
raised as protocol.ProtocolError subclasses, carrying their code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from protocol import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    PROTOCOL_VERSION,
    ClientInfo,
    ErrorResponse,
    InitializeParams,
    InitializeResult,
    MethodNotFoundError,
    Notification,
    ProtocolError,
    Response,
    bearer_header,
    decode_message,
    decode_result,
    default_config_dir,
    encode_request,
    is_compatible,
    parse_version,
    token_path,
    websocket_url,
)

CLIENT_VERSION = "0.1.0"

# Exit statuses shared by the examples.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class ClientError(Exception):
    """Something the user can fix; str(e) says what."""


def default_token_file() -> Path:
    return Path(token_path(default_config_dir()))


def read_token(token_file: Path | None) -> str:
    path = token_file or default_token_file()
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ClientError(f"no token file at {path}: start the daemon (kiai serve), which writes"
                          " it, or pass --token-file") from None
    except OSError as e:
        raise ClientError(f"cannot read the token file {path}: {e.strerror}") from None
    if not token:
        raise ClientError(f"the token file {path} is empty")
    return token


class KiaiClient:
    """One connection to the daemon: requests by id, notifications in arrival order."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._last_id = 0
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._notifications: asyncio.Queue[Notification | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())
        self.server: InitializeResult | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, token: str, client_name: str) -> AsyncIterator[KiaiClient]:
        """Connect with the token in an `Authorization: Bearer` header, then `initialize`."""
        # the daemon is trusted: job lists may be long (max_size); a close after Ctrl+C waits at
        # most 2 s for its handshake (websockets' default, 10 s, is a long hang on exit)
        options: dict[str, Any] = {"additional_headers": bearer_header(token), "open_timeout": 5,
                                   "close_timeout": 2, "max_size": None}
        if int(websockets.__version__.split(".")[0]) >= 15:
            options["proxy"] = None  # a loopback daemon: never through $HTTP_PROXY
        try:
            ws = await connect(url, **options)
        except InvalidStatus as e:
            status = e.response.status_code
            hint = (" check the token file (--token-file)" if status in (401, 403)
                    else " is something else listening on that port?")
            raise ClientError(f"the daemon at {url} refused the connection (HTTP {status}):"
                              + hint) from None
        except (OSError, TimeoutError, asyncio.TimeoutError, InvalidHandshake, InvalidURI) as e:
            raise ClientError(f"cannot reach the kiai daemon at {url} ({e or type(e).__name__}):"
                              " is it running? Start it with `kiai serve`.") from None
        client = cls(ws)
        try:
            client.server = await client.call(InitializeParams(
                PROTOCOL_VERSION, ClientInfo(client_name, CLIENT_VERSION)))
            if not is_compatible(client.server.protocol_version):
                raise ClientError(f"the daemon speaks protocol {client.server.protocol_version},"
                                  f" this client {PROTOCOL_VERSION}")
            yield client
        finally:
            client._reader.cancel()
            await ws.close()

    async def call(self, params: Any) -> Any:
        """Send a request and wait for its typed result (a ProtocolError if it is refused)."""
        self._last_id += 1
        request_id = self._last_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (params.METHOD, future)
        try:
            await self._ws.send(encode_request(request_id, params))
        except ConnectionClosed:
            self._pending.pop(request_id, None)
            raise ClientError(self._closed_message()) from None
        return await future

    async def notifications(self) -> AsyncIterator[Notification]:
        """Every notification, until the connection closes."""
        while (notification := await self._notifications.get()) is not None:
            yield notification

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                self._handle(frame)
        except ConnectionClosed:
            pass
        finally:
            for _, future in self._pending.values():
                if not future.done():
                    future.set_exception(ClientError(self._closed_message()))
            self._pending.clear()
            self._notifications.put_nowait(None)

    def _handle(self, frame: str | bytes) -> None:
        try:
            message = decode_message(frame, max_bytes=None)
        except MethodNotFoundError:
            return  # a notification from a newer minor version: ignore it
        except ProtocolError as e:
            print(f"kiai: ignoring a malformed message from the daemon: {e}", file=sys.stderr)
            return
        if isinstance(message, Notification):
            self._notifications.put_nowait(message)
        elif isinstance(message, (Response, ErrorResponse)):
            method, future = self._pending.pop(message.id, (None, None))
            if future is None:
                if isinstance(message, ErrorResponse):
                    print(f"kiai: the daemon reports: {message.error.message}", file=sys.stderr)
                return
            if isinstance(message, ErrorResponse):
                future.set_exception(message.exception())
            else:
                try:
                    future.set_result(decode_result(method, message.result))
                except ProtocolError as e:
                    future.set_exception(e)

    def _closed_message(self) -> str:
        reason = f": {self._ws.close_reason}" if self._ws.close_reason else ""
        return f"the daemon closed the connection{reason}"


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help="daemon host (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="daemon port (default: %(default)s)")
    parser.add_argument("--token-file", type=Path, default=None,
                        help=f"the daemon's token (default: {default_token_file()})")


def url_of(args: argparse.Namespace) -> str:
    return websocket_url(args.host, args.port)


def run(main: Awaitable[int]) -> int:
    """Run an example's coroutine; ClientError and Ctrl+C become a message and a status."""
    try:
        return asyncio.run(main)
    except ClientError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


# Paths and versions


def speaks(version: str, minor: int) -> bool:
    """Whether a server of `version` (same major, see protocol.version) knows a field added in
    minor version `minor`."""
    return parse_version(version)[1] >= minor


def is_absolute(path: str) -> bool:
    return PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute()


def locate(path_arg: str, songs_folder: str | None, what: str = "MAP"
           ) -> tuple[str, Path | None]:
    """(a path given on the command line, relative to Songs for a request; the local file, or
    None where the daemon reports no Songs folder). `what` names the argument in errors."""
    if not is_absolute(path_arg):
        return path_arg, Path(songs_folder, path_arg) if songs_folder else None
    if not songs_folder:
        raise ClientError(f"{what} is absolute but the daemon reports no Songs folder:"
                          f" give {what} relative to Songs")
    local, songs = Path(os.path.normpath(path_arg)), Path(os.path.normpath(songs_folder))
    for inner, outer in ((local, songs), (local.resolve(), songs.resolve())):  # then symlinks
        with contextlib.suppress(ValueError):
            return inner.relative_to(outer).as_posix(), local
    raise ClientError(f"{path_arg} is not inside the daemon's Songs folder ({songs_folder})")


# Times on the command line

_OSU_TIMESTAMP = re.compile(r"([0-9]+):([0-9]{2}):([0-9]{3})(\s*\([0-9,|\s]*\))?\s*-?\s*")
_CLOCK = re.compile(r"(?:([0-9]+):)?(?:([0-9]+):)?([0-9]+(?:\.[0-9]*)?)")


def parse_time(text: str) -> float:
    """A time in ms from: 1:02.500 (m:ss.fff), 1:01:02.5 (h:mm:ss), 62.5 (seconds), 62500ms,
    or the osu! editor's copied timestamp 01:02:500 (1,2,3) - (mm:ss:mmm, objects ignored)."""
    text = text.strip()
    if m := _OSU_TIMESTAMP.fullmatch(text):
        return (int(m[1]) * 60 + int(m[2])) * 1000.0 + int(m[3])
    if text.endswith("ms"):
        try:
            return float(text[:-2])
        except ValueError:
            pass
    elif m := _CLOCK.fullmatch(text):
        parts = [p for p in m.groups() if p is not None]
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + float(part)
        return seconds * 1000.0
    raise argparse.ArgumentTypeError(
        f"not a time: {text!r} (try 1:02.500, 62.5, 62500ms or 01:02:500)")


def format_time(ms: float) -> str:
    """62500 -> 1:02.500"""
    minutes, rest = divmod(ms / 1000, 60)
    return f"{int(minutes)}:{rest:06.3f}"
