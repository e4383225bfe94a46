"""The example clients, run as scripts against a fake daemon (and a fake tosu) built on the
protocol package: what they send, what they print, how they fail."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import sys
from http import HTTPStatus
from pathlib import Path

import pytest
from websockets.asyncio.server import serve

from protocol import (
    PROTOCOL_VERSION,
    InitializeParams,
    InitializeResult,
    JobAccepted,
    JobCancelParams,
    JobCancelResult,
    JobFailed,
    JobFinished,
    JobProgress,
    JobStats,
    MapContinueParams,
    ModelInfo,
    ProtocolError,
    QueueInfo,
    Sampling,
    ServerStatusParams,
    ServerStatusResult,
    SongsDetected,
    all_capabilities,
    decode_message,
    encode_error,
    encode_notification,
    parse_bearer,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
TOKEN = "s3cret-token"
MAP = "Song/Artist - Song (me) [Hard].osu"


class FakeDaemon:
    """Just enough daemon for the examples: the real codec, token check and canned jobs."""

    def __init__(self, songs: Path, job: str = "finish", after_status=(), close_after=False,
                 accept_delay_s: float = 0.0):
        self.songs, self.job, self.accept_delay_s = songs, job, accept_delay_s
        self.after_status, self.close_after = list(after_status), close_after
        self.requests: list = []
        self.cancel_seen = asyncio.Event()
        self.job_started = asyncio.Event()

    def process_request(self, connection, request):
        if parse_bearer(request.headers.get("Authorization")) != TOKEN:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
        return None

    async def handler(self, ws):
        async for frame in ws:
            try:
                message = decode_message(frame)
            except ProtocolError as e:
                await ws.send(encode_error(e.request_id, e))
                continue
            self.requests.append(message.params)
            await self.answer(ws, message)

    async def answer(self, ws, message):
        params = message.params
        if isinstance(params, InitializeParams):
            await ws.send(message.reply(InitializeResult(
                "0.0-test", PROTOCOL_VERSION, all_capabilities(), ModelInfo("fake", "default"))))
        elif isinstance(params, ServerStatusParams):
            await ws.send(message.reply(ServerStatusResult(
                "0.0-test", 1.0, QueueInfo(0, 8), True, ModelInfo("fake", "default"),
                songs_folder=str(self.songs))))
            for event in self.after_status:
                await ws.send(encode_notification(event))
            if self.close_after:
                await ws.close()
        elif isinstance(params, MapContinueParams):
            if self.accept_delay_s:  # the job runs before its id reaches the client
                self.job_started.set()
                await asyncio.sleep(self.accept_delay_s)
            await ws.send(message.reply(JobAccepted("j-1")))
            await self.run_job(ws, params)
        elif isinstance(params, JobCancelParams):
            self.cancel_seen.set()
            await ws.send(message.reply(JobCancelResult(True)))

    async def run_job(self, ws, params):
        for stage, percent in (("queued", 0), ("decoding", 50)):
            await ws.send(encode_notification(JobProgress("j-1", stage, percent)))
        self.job_started.set()
        if self.job == "finish":
            out = params.beatmap.replace("[Hard]", "[kiai]")
            await ws.send(encode_notification(JobProgress("j-1", "writing", 100)))
            await ws.send(encode_notification(JobFinished("j-1", out, JobStats(120, 4.2, 0.8))))
        elif self.job == "fail":
            await ws.send(encode_notification(JobFailed("j-1", -32020, "line 9: bad object",
                                                        {"file": params.beatmap, "line": 9})))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_from_a_terminal() -> None:
    """In the example's process before it starts: Ctrl+C (SIGINT) at its default, as a
    terminal gives it. A test run started in the background (`cmd &` in a script, nohup) has
    SIGINT ignored, every child inherits that, and Python then never installs its Ctrl+C
    handler: the Ctrl+C tests' examples ran on until killed (seen twice in clean-clone runs)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def run_example(script: str, *args: str, stdin: bytes = b"", timeout: float = 20,
                      on_start=None) -> tuple[int, str, str]:
    # faulthandler: a hung example dumps every thread's stack on SIGABRT, into the failure
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONFAULTHANDLER": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / script), *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        preexec_fn=_as_from_a_terminal if sys.platform != "win32" else None)
    if on_start is not None:
        await on_start(proc)
    talk = asyncio.ensure_future(proc.communicate(stdin))
    try:
        out, err = await asyncio.wait_for(asyncio.shield(talk), timeout)
    except asyncio.TimeoutError:
        proc.send_signal(signal.SIGABRT)
        try:
            out, err = await asyncio.wait_for(talk, 5)
        except asyncio.TimeoutError:
            proc.kill()
            out, err = await talk
        raise AssertionError(f"{script} was still running after {timeout:g} s; its output:\n"
                             f"{out.decode()}\n{err.decode()}") from None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def songs(tmp_path):
    folder = tmp_path / "Songs"
    (folder / "Song").mkdir(parents=True)
    (folder / MAP).write_bytes(b"osu file format v14\n")
    return folder


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def with_daemon(daemon: FakeDaemon, body):
    async def main():
        async with serve(daemon.handler, "127.0.0.1", 0,
                         process_request=daemon.process_request) as server:
            port = server.sockets[0].getsockname()[1]
            return await body(port)
    return asyncio.run(main())


@pytest.mark.parametrize("script", ["continue_from_here.py", "watch.py", "tosu_bridge.py"])
def test_help_works(script):
    async def main():
        return await run_example(script, "--help")
    code, out, _ = asyncio.run(main())
    assert code == 0 and out.startswith("usage:") and "--token-file" in out


def test_continue_from_here_sends_the_map_and_prints_progress(songs, token_file):
    daemon = FakeDaemon(songs)
    code, out, err = with_daemon(daemon, lambda port: run_example(
        "continue_from_here.py", str(songs / MAP), "--at", "1:02.500", "--until", "70",
        "--port", str(port), "--token-file", str(token_file)))
    assert code == 0, err
    request = next(p for p in daemon.requests if isinstance(p, MapContinueParams))
    assert request == MapContinueParams(
        beatmap=MAP, from_ms=62500, until_ms=70000,
        expected_md5=hashlib.md5((songs / MAP).read_bytes()).hexdigest())
    assert "[  0.0%] queued" in out and "[ 50.0%] decoding" in out
    assert "wrote " + str(songs / "Song/Artist - Song (me) [kiai].osu") in out
    assert isinstance(daemon.requests[0], InitializeParams)
    assert daemon.requests[0].token is None  # the token went in the header


def test_continue_from_here_asks_to_draw_the_gaps(songs, token_file):
    daemon = FakeDaemon(songs)
    code, _, err = with_daemon(daemon, lambda port: run_example(
        "continue_from_here.py", MAP, "--at", "62.5", "--draw-gaps", "--port", str(port),
        "--token-file", str(token_file)))
    assert code == 0, err
    request = next(p for p in daemon.requests if isinstance(p, MapContinueParams))
    assert request.sampling == Sampling(draw_gaps=True) and request.from_ms == 62500


def test_continue_from_here_reports_a_failed_job(songs, token_file):
    code, _, err = with_daemon(FakeDaemon(songs, job="fail"), lambda port: run_example(
        "continue_from_here.py", MAP, "--at", "01:02:500 (1,2) -", "--in-place",
        "--port", str(port), "--token-file", str(token_file)))
    assert code == 1 and "failed: line 9: bad object (code -32020)" in err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_continue_from_here_cancels_its_job_on_ctrl_c(songs, token_file):
    daemon = FakeDaemon(songs, job="hang")

    async def interrupt(proc):
        await asyncio.wait_for(daemon.job_started.wait(), 15)
        await asyncio.sleep(0.3)  # let it print the progress so far
        proc.send_signal(signal.SIGINT)

    code, _, err = with_daemon(daemon, lambda port: run_example(
        "continue_from_here.py", MAP, "--at", "62.5", "--port", str(port),
        "--token-file", str(token_file), on_start=interrupt))
    assert code == 130 and daemon.cancel_seen.is_set(), err
    assert "cancelled job j-1" in err


def test_ctrl_c_before_the_job_id_arrives_still_cancels_the_job(songs, token_file):
    daemon = FakeDaemon(songs, job="hang", accept_delay_s=1.0)

    async def interrupt(proc):
        await asyncio.wait_for(daemon.job_started.wait(), 15)
        await asyncio.sleep(0.3)  # inside the daemon's delay: the reply is not sent yet
        proc.send_signal(signal.SIGINT)

    code, _, err = with_daemon(daemon, lambda port: run_example(
        "continue_from_here.py", MAP, "--at", "62.5", "--port", str(port),
        "--token-file", str(token_file), on_start=interrupt))
    assert code == 130 and daemon.cancel_seen.is_set(), err
    assert "cancelled job j-1" in err


def test_a_daemon_that_is_not_running_is_a_clean_error(token_file):
    code, _, err = asyncio.run(run_example(
        "continue_from_here.py", MAP, "--at", "1:00", "--port", str(free_port()),
        "--token-file", str(token_file)))
    assert code == 3 and "is it running? Start it with `kiai serve`" in err
    assert "Traceback" not in err


def test_a_wrong_token_is_a_clean_error(songs, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    code, _, err = with_daemon(FakeDaemon(songs), lambda port: run_example(
        "watch.py", "--port", str(port), "--token-file", str(wrong)))
    assert code == 3 and "refused the connection (HTTP 401)" in err and "token" in err
    code, _, err = asyncio.run(run_example("watch.py", "--token-file", str(tmp_path / "none")))
    assert code == 3 and "no token file at" in err


def test_watch_prints_every_notification(songs, token_file):
    events = [SongsDetected("2110511 xi - Blue Zenith"), JobProgress("j-7", "decoding", 0),
              JobFinished("j-7", "a/b.osu", JobStats(3, 1.5, 2.0), backup_path="a/b.osu.bak"),
              JobFailed("j-8", -32031, "the job queue is full (8 jobs)", {"capacity": 8}),
              JobFinished("j-9", "c/d.osu", JobStats(5, 3.0, 4.0, timing="estimated",
                                                     attempts=1, alternative_bpm=85.0)),
              JobFinished("j-10", "e/f.osu", JobStats(5, 3.0, 4.0, timing="estimated",
                                                      attempts=1, alternative_bpm=180.0,
                                                      bpm_tag=90.0)),
              JobFinished("j-11", "g/h.osu", JobStats(5, 3.0, 4.0, timing="estimated",
                                                      attempts=1, tempo_from="given"))]
    daemon = FakeDaemon(songs, after_status=events, close_after=True)
    code, out, err = with_daemon(daemon, lambda port: run_example(
        "watch.py", "--port", str(port), "--token-file", str(token_file)))
    assert code == 0, err
    lines = out.splitlines()
    assert "model fake" in lines[0] and str(songs) in lines[0]
    assert "songs.detected" in lines[1] and "new song folder 2110511 xi - Blue Zenith" in lines[1]
    assert "j-7    0.0% decoding" in lines[2]
    assert "wrote a/b.osu (3 objects, 1.50 stars, 2.0 s, backup a/b.osu.bak)" in lines[3]
    assert "error -32031: the job queue is full" in lines[4]
    assert "wrote c/d.osu (5 objects, 3.00 stars, 4.0 s; if the beat is at 85 BPM, ask again " \
           "with bpm)" in lines[5]
    assert "wrote e/f.osu (5 objects, 3.00 stars, 4.0 s; the file's BPM tag says 90; if the " \
           "beat is at 180 BPM, ask again with bpm)" in lines[6]
    assert "wrote g/h.osu (5 objects, 3.00 stars, 4.0 s; at the BPM asked for)" in lines[7]
    code, out, _ = with_daemon(FakeDaemon(songs, after_status=events[:1], close_after=True),
                               lambda port: run_example("watch.py", "--json", "--port", str(port),
                                                        "--token-file", str(token_file)))
    assert json.loads(out.splitlines()[1]) == {
        "jsonrpc": "2.0", "method": "songs.detected",
        "params": {"folder": "2110511 xi - Blue Zenith"}}


def tosu_payload(songs: Path, beatmap_file: str, state: int = 1, live: float = 62500) -> dict:
    return {"state": {"number": state, "name": "edit" if state == 1 else "menu"},
            "folders": {"game": str(songs.parent), "songs": str(songs)},
            "directPath": {"beatmapFile": beatmap_file},
            "beatmap": {"time": {"live": live, "firstObject": 1000}}}


def test_tosu_bridge_continues_the_open_map_at_the_editor_time(songs, token_file):
    daemon = FakeDaemon(songs)

    async def tosu(ws):
        while True:  # tosu pushes its state at its poll rate
            await ws.send(json.dumps(tosu_payload(songs, MAP.replace("/", "\\"))))
            await asyncio.sleep(0.05)

    async def body(port):
        async with serve(tosu, "127.0.0.1", 0) as tosu_server:
            tosu_port = tosu_server.sockets[0].getsockname()[1]
            return await run_example(
                "tosu_bridge.py", "--tosu", f"ws://127.0.0.1:{tosu_port}/websocket/v2",
                "--length", "10", "--port", str(port), "--token-file", str(token_file),
                stdin=b"\n")

    code, out, err = with_daemon(daemon, body)
    assert code == 0, err
    request = next(p for p in daemon.requests if isinstance(p, MapContinueParams))
    assert request.beatmap == MAP and request.from_ms == 62500 and request.until_ms == 72500
    assert request.expected_md5 == hashlib.md5((songs / MAP).read_bytes()).hexdigest()
    assert "job j-1: wrote Song/Artist - Song (me) [kiai].osu" in out


# The examples' pure parts


@pytest.fixture
def examples(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import kiai_client
    import tosu_bridge
    return kiai_client, tosu_bridge


def test_parse_time(examples):
    parse_time = examples[0].parse_time
    assert parse_time("1:02.500") == 62500
    assert parse_time("1:02") == 62000
    assert parse_time("62.5") == 62500
    assert parse_time("62500ms") == 62500
    assert parse_time("1:01:02.5") == 3662500
    assert parse_time("01:02:500 (1,2,3) - ") == 62500  # the osu! editor's copied timestamp
    assert parse_time("01:02:500") == 62500
    assert examples[0].format_time(62500) == "1:02.500"
    for bad in ("", "abc", "1:2:3:4", "-5", "ms"):
        with pytest.raises(Exception, match="not a time"):
            parse_time(bad)


def test_editor_target_reads_tosu_v2(examples, tmp_path):
    bridge = examples[1]
    songs = r"C:\Users\me\AppData\Local\osu!\Songs"
    target = bridge.editor_target(tosu_payload(Path(songs), r"123 Song\map [Hard].osu"))
    assert (target.beatmap, target.time_ms) == ("123 Song/map [Hard].osu", 62500)
    # older tosu: an absolute path under the Songs folder
    old = tosu_payload(Path(songs), songs.lower() + r"\123 Song\map [Hard].osu")
    old["folders"]["songs"] = songs
    assert bridge.editor_target(old).beatmap == "123 Song/map [Hard].osu"
    with pytest.raises(bridge.Unavailable, match="not in the editor"):
        bridge.editor_target(tosu_payload(Path(songs), "a/b.osu", state=0))
    with pytest.raises(bridge.Unavailable, match="not inside the Songs folder"):
        bridge.editor_target(tosu_payload(Path(songs), r"D:\elsewhere\b.osu"))
    with pytest.raises(bridge.Unavailable, match="no open beatmap"):
        bridge.editor_target(tosu_payload(Path(songs), ""))
    with pytest.raises(bridge.Unavailable, match="no editor time"):
        bridge.editor_target(tosu_payload(Path(songs), "a/b.osu", live=float("nan")))
    with pytest.raises(bridge.Unavailable, match="not in the editor"):
        bridge.editor_target({})
