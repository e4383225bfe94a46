"""The daemon's defences: the handshake (token, Origin, Host), paths that try to leave the Songs
folder, frame and rate limits, the loopback binding, the token file and the single instance."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_support import (
    NO_PROXY,
    TOKEN,
    TOSU_ORIGIN,
    Client,
    RpcError,
    config_for,
    md5,
    running,
    songs_with,
    tree,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

import companion.server as server_module
import companion.session as session_module
from companion.instance import AlreadyRunning, InstanceLock, write_token
from protocol import ErrorCode, bearer_header

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def songs(tmp_path, library):
    return songs_with(tmp_path, library, "short")


async def handshake_status(port: int, headers: dict, origin: str | None = None) -> int:
    try:
        async with connect(f"ws://127.0.0.1:{port}/", additional_headers=headers,
                           origin=origin, **NO_PROXY, open_timeout=10):
            return 101
    except InvalidStatus as e:
        return e.response.status_code


async def raw_handshake_status(port: int, host: str) -> int:
    """The status of a handshake whose Host header is `host` (as a DNS-rebinding page sends)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
                  ).encode())
    status = await reader.readline()
    writer.close()
    return int(status.split()[1])


def test_the_handshake_refuses_missing_and_wrong_tokens_and_foreign_origins(songs, model):
    async def main():
        async with running(config_for(songs, model)) as daemon:
            port = daemon.port
            return {
                "no token": await handshake_status(port, {}),
                "wrong token": await handshake_status(port, bearer_header("nope")),
                "not bearer": await handshake_status(port, {"Authorization": f"Basic {TOKEN}"}),
                "foreign origin": await handshake_status(port, bearer_header(TOKEN),
                                                         "https://evil.example"),
                "foreign origin, no token": await handshake_status(port, {},
                                                                   "https://evil.example"),
                "two hosts": await handshake_status(port, {**bearer_header(TOKEN),
                                                           "Host": "evil.example"}),
                "rebound host": await raw_handshake_status(port, "evil.example"),
                "loopback host": await raw_handshake_status(port, f"localhost:{port}"),
                "loopback, no port": await raw_handshake_status(port, "127.0.0.1"),
                "IPv6 loopback": await raw_handshake_status(port, f"[::1]:{port}"),
                "IPv6, no port": await raw_handshake_status(port, "[::1]"),
                "host in the port": await raw_handshake_status(port, "127.0.0.1:evil.example"),
                "token": await handshake_status(port, bearer_header(TOKEN)),
                "tosu overlay": await handshake_status(port, {}, TOSU_ORIGIN),
            }
    assert asyncio.run(main()) == {
        "no token": 401, "wrong token": 401, "not bearer": 401, "foreign origin": 403,
        "foreign origin, no token": 403, "two hosts": 400, "rebound host": 403,
        "loopback host": 101, "loopback, no port": 101, "IPv6 loopback": 101,
        "IPv6, no port": 101, "host in the port": 403, "token": 101, "tosu overlay": 101}


def test_paths_outside_songs_are_refused_and_nothing_is_written(songs, model, tmp_path):
    folder = songs / next(p.name for p in songs.iterdir())
    secret = tmp_path / "secret.osu"
    shutil.copy(next(folder.glob("*[[]Hard[]].osu")), secret)
    outside_song = tmp_path / "outside song"
    shutil.copytree(folder, outside_song)
    (folder / "link.osu").symlink_to(secret)
    (songs / "linked song").symlink_to(outside_song, target_is_directory=True)
    # A map inside Songs whose audio file is outside it.
    sneaky = folder / "sneaky.osu"
    text = next(folder.glob("*[[]Easy[]].osu")).read_text(encoding="utf-8")
    sneaky.write_text(text.replace("AudioFilename: audio.ogg",
                                   "AudioFilename: ../../outside song/audio.ogg"),
                      encoding="utf-8")
    before_inside, before_outside = tree(songs), tree(tmp_path / "outside song")
    song = folder.name

    async def main():
        codes = {}
        async with running(config_for(songs, model)) as daemon, \
                Client.connect(daemon.port) as client:
            for name, method, params in [
                ("dotdot", "map.continue", {"beatmap": "../secret.osu", "fromMs": 0}),
                ("dotdot inside", "map.continue",
                 {"beatmap": f"{song}/../../secret.osu", "fromMs": 0}),
                ("backslashes", "map.continue", {"beatmap": "..\\secret.osu", "fromMs": 0}),
                ("missing outside", "map.continue", {"beatmap": "../nothing.osu", "fromMs": 0}),
                ("symlinked map", "map.continue", {"beatmap": f"{song}/link.osu", "fromMs": 0}),
                ("symlinked folder", "map.generate", {"songFolder": "linked song"}),
                ("folder with a link out", "map.generate", {"songFolder": song}),
                ("audio", "map.generate", {"audio": "../outside song/audio.ogg"}),
                ("in place", "map.continue", {"beatmap": "../secret.osu", "fromMs": 0,
                                              "write": "inPlace", "expectedMd5": md5(secret)}),
            ]:
                with pytest.raises(RpcError) as e:
                    await client.call(method, {**params})
                codes[name] = e.value.code
            accepted = await client.call("map.continue", {"beatmap": f"{song}/sneaky.osu",
                                                          "fromMs": 1000})
            end = await client.job_end(accepted["jobId"])
        return codes, end

    codes, end = asyncio.run(main())
    assert codes == dict.fromkeys(codes, ErrorCode.PATH_OUTSIDE_SONGS)
    assert end["method"] == "job.failed"
    assert end["params"]["code"] == ErrorCode.PATH_OUTSIDE_SONGS, end
    assert tree(songs) == before_inside and tree(tmp_path / "outside song") == before_outside


def test_oversized_frames_and_the_rate_limit(songs, model):
    async def main():
        config = config_for(songs, model, rate_per_s=1.0, rate_burst=5)
        async with running(config) as daemon, Client.connect(daemon.port) as client:
            # Over the protocol's 64 KiB: answered, and the connection goes on.
            big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "job.list",
                              "params": {"x": "a" * 100_000}})
            await client.ws.send(big)
            await asyncio.sleep(0.2)
            too_large = client.unmatched[-1]["error"]
            assert too_large["code"] == ErrorCode.FRAME_TOO_LARGE
            results = []
            for _ in range(8):
                try:
                    results.append(await client.call("server.status"))
                except RpcError as e:
                    results.append(e)
            limited = [r for r in results if isinstance(r, RpcError)]
            assert limited and all(e.code == ErrorCode.RATE_LIMITED for e in limited)
            assert limited[0].data["retryAfterS"] > 0
            # Over the websocket's 1 MiB: the connection is closed (1009), the daemon lives.
            with contextlib.suppress(ConnectionClosedError):
                await client.ws.send("x" * (2 << 20))
            await asyncio.wait_for(client.reader, 10)
            assert client.ws.close_code == 1009
            async with Client.connect(daemon.port) as other:
                return await other.call("server.status")

    assert asyncio.run(main())["version"]


def test_the_daemon_binds_loopback_only(songs, model):
    async def main():
        async with running(config_for(songs, model)) as daemon:
            addresses = {s.getsockname()[0] for s in daemon.server.sockets}
            port = daemon.port
            others = _other_addresses()
            refused = []
            for address in others:
                with socket.socket() as s:
                    s.settimeout(2)
                    refused.append(s.connect_ex((address, port)) != 0)
            return addresses, refused

    addresses, refused = asyncio.run(main())
    assert addresses == {"127.0.0.1"}
    assert all(refused)


def _other_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (none on an isolated machine)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for a UDP connect
            address = s.getsockname()[0]
    except OSError:
        return []
    return [] if address.startswith("127.") else [address]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes and signals")
def test_token_file_single_instance_and_sigterm(songs, model, tmp_path):
    config_dir = tmp_path / "config"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", "from companion.cli import main; main()", "serve",
               "--songs", str(songs), "--port", "0", "--config-dir", str(config_dir),
               "--model", str(model), "--no-watch"]
    first = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        lock = config_dir / "kiai.lock"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            info = json.loads(lock.read_text() or "{}") if lock.exists() else {}
            if info.get("port"):
                break
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.1)
        assert info["pid"] == first.pid and info["port"]
        token = config_dir / "token"
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
        assert len(token.read_text().strip()) >= 43  # 32 random bytes, base64
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        assert "already running" in second.stderr and f"pid {first.pid}" in second.stderr
        assert f"port {info['port']}" in second.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
        assert not lock.exists()  # the lock is released
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_the_token_is_fresh_and_private_and_the_lock_is_exclusive(tmp_path):
    first = write_token(tmp_path)
    second = write_token(tmp_path)
    assert first != second and (tmp_path / "token").read_text().strip() == second
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600 or sys.platform == "win32"
    assert [p.name for p in tmp_path.iterdir()] == ["token"]  # no temp file left behind
    with InstanceLock(tmp_path) as lock:
        lock.update(port=24060)
        with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()} on port 24060"):
            InstanceLock(tmp_path).acquire()
    with InstanceLock(tmp_path):  # released: it can be taken again
        pass


def test_a_page_without_the_token_is_disconnected(songs, model, monkeypatch):
    monkeypatch.setattr(session_module, "AUTH_DEADLINE_S", 0.3)

    async def main():
        async with running(config_for(songs, model)) as daemon:
            async with Client.connect(daemon.port, token=None, origin=TOSU_ORIGIN,
                                      initialize=False) as idle:
                await asyncio.wait_for(idle.reader, 10)  # closed by the daemon
                idle_code = idle.ws.close_code
            async with Client.connect(daemon.port, token=None, origin=TOSU_ORIGIN,
                                      initialize=False) as guesser:
                codes = []
                for _ in range(3):
                    try:
                        await guesser.initialize(token="guess")
                    except RpcError as e:
                        codes.append(e.code)
                await asyncio.wait_for(guesser.reader, 10)
                return idle_code, codes, guesser.ws.close_code

    idle_code, codes, guesser_code = asyncio.run(main())
    assert idle_code == 1008 and guesser_code == 1008
    assert codes == [ErrorCode.UNAUTHORIZED] * 3


def test_pages_without_the_token_cannot_keep_token_holders_out(songs, model, monkeypatch):
    """Any local process can claim an allowed Origin and connect without the token; such
    connections get MAX_UNAUTHENTICATED places, and a client with the token still gets in."""
    monkeypatch.setattr(server_module, "MAX_UNAUTHENTICATED", 3)

    async def main():
        async with running(config_for(songs, model)) as daemon, \
                contextlib.AsyncExitStack() as stack:
            for _ in range(3):
                await stack.enter_async_context(Client.connect(
                    daemon.port, token=None, origin=TOSU_ORIGIN, initialize=False))
            with pytest.raises(InvalidStatus) as refused:
                await stack.enter_async_context(Client.connect(
                    daemon.port, token=None, origin=TOSU_ORIGIN, initialize=False))
            async with Client.connect(daemon.port) as holder:
                status = await holder.call("server.status")
            return refused.value.response.status_code, status

    code, status = asyncio.run(main())
    assert code == 503 and status["queue"]["length"] == 0
