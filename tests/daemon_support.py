"""What the daemon tests share: a model, song folders, a running daemon and a raw JSON client.

The daemon is the real one (companion.server.Daemon) on an ephemeral port of 127.0.0.1; the
client speaks raw JSON-RPC over a real websocket, so the tests see exactly what is on the wire.
The model is the shipped starter model when the checkout has it, else a tiny random checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
import threading
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import websockets
from websockets.asyncio.client import connect

from companion.config import Config
from companion.server import Daemon
from core.checkpoint import save_model_only
from core.model import MapModel, ModelDims
from core.starter import default_model_path
from core.synth.config import SynthConfig
from core.synth.songs import write_song
from core.tokens.vocab import DEFAULT, Vocab
from protocol import bearer_header

TOKEN = "test-token-" + "x" * 32
# websockets 15+ reads proxies from the environment; a loopback daemon is never behind one.
NO_PROXY: dict[str, Any] = ({"proxy": None}
                            if int(websockets.__version__.split(".")[0]) >= 15 else {})
TOSU_ORIGIN = "http://127.0.0.1:24050"
TIMEOUT_S = 60.0  # for any one job; generous for a loaded CI machine


def make_model(folder: Path) -> Path:
    """The starter model if built, else a tiny random checkpoint written into `folder`."""
    starter = default_model_path()
    if starter is not None:
        return starter
    torch.manual_seed(0)
    vocab = Vocab(DEFAULT)
    dims = ModelDims(n_vocab=len(vocab), d_model=64, n_heads=4, n_layers=2, d_ff=128)
    return save_model_only(MapModel(dims).eval(), DEFAULT, folder / "tiny-model")


def make_library(folder: Path) -> dict[str, Path]:
    """Synthetic song folders to copy into a test's Songs folder: `short` (20 s) and `long`."""
    short = write_song(SynthConfig(out=folder, seed=21, duration_s=20.0), 0)
    long = write_song(SynthConfig(out=folder, seed=22, duration_s=90.0), 0)
    return {"short": short, "long": long}


def songs_with(tmp_path: Path, library: dict[str, Path], *names: str) -> Path:
    """A fresh Songs folder under `tmp_path` holding copies of the library's songs `names`."""
    folder = tmp_path / "Songs"
    folder.mkdir()
    for name in names:
        shutil.copytree(library[name], folder / library[name].name)
    return folder


def add_corpus_song(songs: Path, corpus: Path, map_file: Path) -> Path:
    """A folder in `songs` with a ranked corpus map and a real track under its audio name
    (the corpus has no audio of its own for it): the map's path."""
    from core.beatmap.parser import parse_file

    folder = songs / "241526 Soleily - Renatus"
    folder.mkdir()
    shutil.copy(map_file, folder / map_file.name)
    audio_name = parse_file(map_file).beatmap.audio_filename
    with zipfile.ZipFile(corpus / "osu-resources" / "triangles.osz") as z:
        (folder / audio_name).write_bytes(z.read("audio.mp3"))
    return folder / map_file.name


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its bytes: to check that nothing was written."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def hit_object_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    start = lines.index("[HitObjects]") + 1
    return [line for line in lines[start:] if line.strip()]


def config_for(songs: Path, model: Path, **changes: Any) -> Config:
    base = Config(songs=songs, port=0, model=model, watch=False, settle_s=0.5,
                  rate_per_s=1000.0, rate_burst=1000)
    return replace(base, **changes)


@contextlib.asynccontextmanager
async def running(config: Config, config_dir: Path | None = None) -> AsyncIterator[Daemon]:
    daemon = Daemon(config, TOKEN, config_dir)
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


class RpcError(Exception):
    def __init__(self, error: dict) -> None:
        self.code, self.message, self.data = error["code"], error["message"], error.get("data")
        super().__init__(f"{self.code}: {self.message}")


class Client:
    """Raw JSON-RPC over one websocket: `call` for results, `notifications` as they came."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[Any, asyncio.Future] = {}
        self.notifications: list[dict] = []
        self.unmatched: list[dict] = []  # error responses with a null id
        self.changed = asyncio.Condition()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, port: int, token: str | None = TOKEN, origin: str | None = None,
                      initialize: bool = True, **options: Any) -> AsyncIterator[Client]:
        headers = bearer_header(token) if token is not None else {}
        async with connect(f"ws://127.0.0.1:{port}/", additional_headers=headers,
                           origin=origin, open_timeout=10, max_size=None, **NO_PROXY,
                           **options) as ws:
            client = cls(ws)
            try:
                if initialize:
                    await client.initialize()
                yield client
            finally:
                client.reader.cancel()

    async def initialize(self, token: str | None = None) -> dict:
        params: dict[str, Any] = {"protocolVersion": "1.0",
                                  "client": {"name": "tests", "version": "0"}}
        if token is not None:
            params["token"] = token
        return await self.call("initialize", params)

    async def call(self, method: str, params: dict | None = None) -> Any:
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        frame = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            frame["params"] = params
        await self.ws.send(json.dumps(frame))
        return await asyncio.wait_for(future, TIMEOUT_S)

    async def wait_for(self, predicate: Callable[[dict], bool], timeout: float = TIMEOUT_S
                       ) -> dict:
        """The first notification (seen or to come) that satisfies `predicate`."""
        async def seen() -> dict:
            async with self.changed:
                while True:
                    for n in self.notifications:
                        if predicate(n):
                            return n
                    await self.changed.wait()
        return await asyncio.wait_for(seen(), timeout)

    async def job_end(self, job_id: str, timeout: float = TIMEOUT_S) -> dict:
        return await self.wait_for(
            lambda n: n["method"] in ("job.finished", "job.failed")
            and n["params"]["jobId"] == job_id, timeout)

    def events(self, method: str, job_id: str | None = None) -> list[dict]:
        return [n["params"] for n in self.notifications if n["method"] == method
                and (job_id is None or n["params"].get("jobId") == job_id)]

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for frame in self.ws:
                message = json.loads(frame)
                if "method" in message:
                    message["received"] = time.monotonic()  # not on the wire: for ordering
                    async with self.changed:
                        self.notifications.append(message)
                        self.changed.notify_all()
                    continue
                future = self.pending.pop(message.get("id"), None)
                if future is None:
                    self.unmatched.append(message)
                elif "error" in message:
                    future.set_exception(RpcError(message["error"]))
                else:
                    future.set_result(message["result"])


class DaemonThread:
    """A daemon on its own event loop in a thread, for synchronous tests (hypothesis)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.ready = threading.Event()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    def __enter__(self) -> DaemonThread:
        self._thread.start()
        if not self.ready.wait(30):
            raise RuntimeError("the daemon did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with running(self.config) as daemon:
            self.port = daemon.port
            self.ready.set()
            await self._stop.wait()
