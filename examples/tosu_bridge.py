"""Continue the map open in osu!'s editor from the editor's time: tosu in, kiai out.

tosu (https://github.com/tosuapp/tosu) reads osu!'s memory and publishes it on a websocket. This
bridge follows its v2 feed and, when asked, sends the kiai daemon `map.continue` for the open
beatmap from the editor's current time. It reads, from each tosu message:

    state.number           1 while osu! is in the editor
    folders.songs          the Songs folder
    directPath.beatmapFile the open .osu (relative to Songs in current tosu, absolute in older
                           versions: both are handled; backslashes are taken as separators)
    beatmap.time.live      the editor's time, ms

Asking: press Enter (one request per line on stdin). A global hotkey is out of scope: bind one in
your hotkey tool (AutoHotkey, a macro key) to send Enter to this window, or pipe lines in. End
of input (Ctrl+D, Ctrl+Z Enter on Windows) ends the bridge once its jobs have finished.
With --every SECONDS it asks by itself instead, every SECONDS while the editor is open, skipping
while one of its requests is running and when neither the map nor the time changed since its
last request; stdin is then ignored and Ctrl+C ends it.

Save the map in the editor before asking: the daemon reads the saved file (and refuses if it
changes before the write). Then reload with Ctrl+L in the editor.

    python examples/tosu_bridge.py                      # Enter = continue from the editor's time
    python examples/tosu_bridge.py --length 30 --in-place
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import sys
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websockets
from kiai_client import (
    EXIT_FAILED,
    EXIT_OK,
    ClientError,
    KiaiClient,
    add_connection_arguments,
    format_time,
    read_token,
    run,
    url_of,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from protocol import JobFailed, JobFinished, JobProgress, MapContinueParams, ProtocolError

TOSU_URL = "ws://127.0.0.1:24050/websocket/v2"
EDITOR_STATE = 1  # tosu's state.number for the editor (osu! stable's OsuModes.Edit)
RETRY_S = 2.0


class Unavailable(Exception):
    """Why the open map cannot be continued right now."""


@dataclass(frozen=True)
class EditorTarget:
    beatmap: str  # relative to Songs, "/"-separated
    time_ms: float
    local_path: Path | None  # where this machine can read it (to send its MD5)


def editor_target(payload: dict[str, Any]) -> EditorTarget:
    """The map open in the editor and the editor's time, from one tosu v2 message."""
    state = _get(payload, "state", "number")
    if state != EDITOR_STATE:
        name = _get(payload, "state", "name")
        raise Unavailable(f"osu! is not in the editor (tosu state {state}"
                          + (f", {name})" if name else ")"))
    beatmap_file = _get(payload, "directPath", "beatmapFile")
    if not isinstance(beatmap_file, str) or not beatmap_file.strip():
        raise Unavailable("tosu reports no open beatmap")
    time_ms = _get(payload, "beatmap", "time", "live")
    if isinstance(time_ms, bool) or not isinstance(time_ms, (int, float)) or time_ms != time_ms:
        raise Unavailable("tosu reports no editor time")
    songs = _get(payload, "folders", "songs")
    songs = songs if isinstance(songs, str) and songs else None
    beatmap = relative_to_songs(beatmap_file, songs)
    return EditorTarget(beatmap, max(0.0, float(time_ms)), Path(songs, beatmap) if songs else None)


def relative_to_songs(path: str, songs: str | None) -> str:
    """tosu's beatmap path relative to the Songs folder, "/"-separated."""
    unified = path.replace("\\", "/")
    if not (unified.startswith("/") or re.match(r"[A-Za-z]:/", unified)):
        return unified
    base = (songs or "").replace("\\", "/").rstrip("/")
    # Windows paths compare without case; a Songs folder's name on other systems rarely differs
    # from tosu's by case alone.
    if base and unified.lower().startswith(base.lower() + "/"):
        return unified[len(base) + 1:]
    raise Unavailable(f"{path} is not inside the Songs folder ({songs or 'unknown'})")


def _get(payload: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    return payload


def md5_of(path: Path | None) -> str | None:
    try:
        return hashlib.md5(path.read_bytes()).hexdigest() if path else None
    except OSError:
        return None


class Bridge:
    def __init__(self, client: KiaiClient, args: argparse.Namespace) -> None:
        self.client, self.args = client, args
        self.payload: dict[str, Any] | None = None
        self.tosu_seen = asyncio.Event()
        self.jobs: set[str] = set()  # ours, still running
        self.idle = asyncio.Event()
        self.idle.set()
        self.last_request: tuple[str, float] | None = None
        self.unclaimed: dict[str, deque[Any]] = {}  # events that came before their job id

    async def follow_tosu(self) -> None:
        """Keep the latest tosu message, reconnecting (tosu may start after the bridge)."""
        said_waiting = False
        while True:
            try:
                async with connect(self.args.tosu, open_timeout=5, max_size=None,
                                   **_no_proxy()) as ws:
                    print(f"connected to tosu at {self.args.tosu}", flush=True)
                    said_waiting = False
                    async for frame in ws:
                        with contextlib.suppress(ValueError):
                            payload = json.loads(frame)
                            if isinstance(payload, dict):
                                self.payload = payload
                                self.tosu_seen.set()
                print("tosu closed the connection; reconnecting", file=sys.stderr)
            except (OSError, TimeoutError, asyncio.TimeoutError, InvalidHandshake, InvalidURI,
                    ConnectionClosed):
                if not said_waiting:
                    print(f"waiting for tosu at {self.args.tosu}: is it running?",
                          file=sys.stderr, flush=True)
                    said_waiting = True
            await asyncio.sleep(RETRY_S)

    async def ask(self, automatic: bool = False) -> None:
        """Send map.continue for the open map at the editor's time."""
        try:
            target = editor_target(self.payload or {})
        except Unavailable as e:
            if not automatic:
                print(f"not now: {e}", flush=True)
            return
        if automatic and (self.jobs or self.last_request == (target.beatmap, target.time_ms)):
            return
        self.last_request = (target.beatmap, target.time_ms)
        until = None if self.args.length is None else target.time_ms + self.args.length * 1000
        params = MapContinueParams(
            beatmap=target.beatmap, from_ms=target.time_ms, until_ms=until,
            expected_md5=md5_of(target.local_path),
            write="inPlace" if self.args.in_place else "newDifficulty")
        try:
            accepted = await self.client.call(params)
        except ProtocolError as e:
            print(f"refused: {e.message} (code {e.code})", flush=True)
            return
        print(f"job {accepted.job_id}: continuing {target.beatmap} from"
              f" {format_time(target.time_ms)}", flush=True)
        self.jobs.add(accepted.job_id)
        self.idle.clear()
        for event in self.unclaimed.pop(accepted.job_id, []):
            self.on_event(event)

    async def follow_jobs(self) -> None:
        """Print our jobs' events; returns when the daemon closes the connection."""
        async for notification in self.client.notifications():
            event = notification.params
            job_id = getattr(event, "job_id", None)
            if job_id in self.jobs:
                self.on_event(event)
            elif job_id is not None:  # another client's job, or ours before `ask` saw its id
                if job_id not in self.unclaimed and len(self.unclaimed) >= 64:
                    del self.unclaimed[next(iter(self.unclaimed))]  # forget the oldest
                self.unclaimed.setdefault(job_id, deque(maxlen=16)).append(event)

    def on_event(self, event: Any) -> None:
        if isinstance(event, JobProgress):
            print(f"  [{event.percent:5.1f}%] {event.stage}", flush=True)
            return
        if isinstance(event, JobFinished):
            print(f"job {event.job_id}: wrote {event.path} ({event.stats.objects} objects);"
                  " reload with Ctrl+L in the editor", flush=True)
        elif isinstance(event, JobFailed):
            print(f"job {event.job_id} failed: {event.message} (code {event.code})", flush=True)
        else:
            return
        self.jobs.discard(event.job_id)
        if not self.jobs:
            self.idle.set()

    async def from_stdin(self) -> None:
        """One request per line; returns at the end of input."""
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def read() -> None:  # a daemon thread: a blocked readline never holds up the exit
            with contextlib.suppress(RuntimeError):  # the loop closed first
                for line in sys.stdin:
                    loop.call_soon_threadsafe(lines.put_nowait, line)
                loop.call_soon_threadsafe(lines.put_nowait, None)

        threading.Thread(target=read, daemon=True).start()
        await self.tosu_seen.wait()
        print("press Enter to continue the open map from the editor's time", flush=True)
        while await lines.get() is not None:
            await self.ask()

    async def every(self, seconds: float) -> None:
        await self.tosu_seen.wait()
        print(f"asking every {seconds:g} s while the editor is open", flush=True)
        while True:
            await asyncio.sleep(seconds)
            await self.ask(automatic=True)


def _no_proxy() -> dict[str, Any]:
    # Loopback connections never go through $HTTP_PROXY (the option exists from websockets 15).
    return {"proxy": None} if int(websockets.__version__.split(".")[0]) >= 15 else {}


async def main_async(args: argparse.Namespace) -> int:
    token = read_token(args.token_file)
    async with KiaiClient.connect(url_of(args), token, "tosu_bridge") as client:
        bridge = Bridge(client, args)
        jobs = asyncio.create_task(bridge.follow_jobs())
        tasks = [jobs, asyncio.create_task(bridge.follow_tosu()),
                 asyncio.create_task(bridge.every(args.every) if args.every
                                     else bridge.from_stdin())]
        try:
            await asyncio.wait([jobs, tasks[2]], return_when=asyncio.FIRST_COMPLETED)
            if not jobs.done():
                tasks[2].result()  # the end of input (or its error)
                tasks.append(asyncio.create_task(bridge.idle.wait()))
                await asyncio.wait([jobs, tasks[-1]], return_when=asyncio.FIRST_COMPLETED)
            if jobs.done():
                raise ClientError("the daemon closed the connection")
        finally:
            for task in tasks:
                task.cancel()
    return EXIT_OK if not bridge.jobs else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tosu", default=TOSU_URL,
                        help="tosu's v2 websocket (default: %(default)s)")
    parser.add_argument("--every", type=float, default=None, metavar="SECONDS",
                        help="ask by itself every SECONDS instead of on Enter")
    parser.add_argument("--length", type=float, default=None, metavar="SECONDS",
                        help="generate this many seconds (default: to the end of the audio)")
    parser.add_argument("--in-place", action="store_true",
                        help="overwrite the map (after a backup) instead of a new difficulty")
    add_connection_arguments(parser)
    args = parser.parse_args(argv)
    if args.every is not None and args.every <= 0:
        parser.error("--every must be positive")
    if args.length is not None and args.length <= 0:
        parser.error("--length must be positive")
    return run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
