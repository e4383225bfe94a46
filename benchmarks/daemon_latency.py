"""Daemon latency: request -> job.finished for a 10 s continuation, and many clients at once.

`kiai serve` runs in its own process (as a user runs it) on a temporary Songs folder holding a
synthetic song; clients connect over loopback with the token, as the examples do.

1. Latency: REQUESTS map.continue requests one after another, each continuing the song's Hard
   difficulty from 15 s to 25 s (a new difficulty each time); the time from sending the request
   to receiving its job.finished. One warm-up request first, not counted.
2. Load: CLIENTS clients connect at once and send TOTAL requests in all (a seeded mix of
   server.status, job.list and map.continue), each client pipelining its share. Every request
   must be answered (a result, or an error such as QUEUE_FULL) and every accepted job must end
   with job.finished or job.failed with a code: "lost" counts what never came.
3. Red lines: timing.estimate on the song, REQUESTS times with the daemon idle and REQUESTS
   times while a map.generate job for a second, 3-minute song runs (the job is cancelled
   after): the estimate runs on its own thread, so it does not wait behind the job, and the
   table sets its time beside the job's.

The model: --model, else the shipped starter model, else a tiny random checkpoint (the table
says which: a random model's latency says nothing about a trained one's token count).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.client import connect

from core.starter import default_model_path
from core.synth.config import SynthConfig
from core.synth.songs import write_song
from protocol import bearer_header

REPO = Path(__file__).resolve().parent.parent


class Client:
    """Raw JSON-RPC: results by id, job ends by job id."""

    def __init__(self, ws) -> None:
        self.ws, self.next_id = ws, 0
        self.pending: dict[int, asyncio.Future] = {}
        self.ends: dict[str, asyncio.Future] = {}
        self.reader = asyncio.create_task(self._read())

    def _end(self, job_id: str) -> asyncio.Future:
        return self.ends.setdefault(job_id, asyncio.get_running_loop().create_future())

    async def call(self, method: str, params: dict | None = None) -> dict:
        """{"result": ...} or {"error": ...}."""
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                       "params": params or {}}))
        return await future

    async def job_end(self, job_id: str, timeout: float = 600) -> dict:
        return await asyncio.wait_for(asyncio.shield(self._end(job_id)), timeout)

    async def _read(self) -> None:
        async for frame in self.ws:
            message = json.loads(frame)
            method = message.get("method")
            if method in ("job.finished", "job.failed"):
                future = self._end(message["params"]["jobId"])
                if not future.done():
                    future.set_result(message)
            elif method is None:
                future = self.pending.pop(message["id"], None)
                if future is not None:
                    future.set_result(message)


async def open_client(port: int, token: str):
    ws = await connect(f"ws://127.0.0.1:{port}/", additional_headers=bearer_header(token),
                       proxy=None, max_size=None, open_timeout=30)
    client = Client(ws)
    reply = await client.call("initialize", {"protocolVersion": "1.0",
                                             "client": {"name": "bench", "version": "0"}})
    assert "result" in reply, reply
    return client


def tiny_model(folder: Path) -> Path:
    import torch

    from core.checkpoint import save_model_only
    from core.model import MapModel, ModelDims
    from core.tokens.vocab import DEFAULT, Vocab

    torch.manual_seed(0)
    dims = ModelDims(n_vocab=len(Vocab(DEFAULT)), d_model=64, n_heads=4, n_layers=2, d_ff=128)
    return save_model_only(MapModel(dims).eval(), DEFAULT, folder / "tiny-model")


def start_daemon(songs: Path, config_dir: Path, model: Path) -> tuple[subprocess.Popen, int, str]:
    command = [sys.executable, "-c", "from companion.cli import main; main()", "serve",
               "--songs", str(songs), "--port", "0", "--config-dir", str(config_dir),
               "--model", str(model), "--no-watch"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    lock = config_dir / "kiai.lock"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("kiai serve exited early")
        try:
            port = json.loads(lock.read_text()).get("port")
        except (OSError, ValueError):
            port = None
        if port:
            return proc, port, (config_dir / "token").read_text().strip()
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("kiai serve did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def latency(port: int, token: str, beatmap: str, requests: int) -> list[tuple[float, int]]:
    client = await open_client(port, token)
    out = []
    for i in range(requests + 1):
        start = time.perf_counter()
        reply = await client.call("map.continue", {"beatmap": beatmap, "fromMs": 15000,
                                                   "untilMs": 25000, "sampling": {"seed": i}})
        end = await client.job_end(reply["result"]["jobId"])
        elapsed = time.perf_counter() - start
        assert end["method"] == "job.finished", end
        # The first one is cold: the model may still be loading, the song's features are not
        # cached yet (the daemon keeps the last few songs': "continue" is asked again and again).
        out.append((elapsed, end["params"]["stats"]["objects"]))
    await client.ws.close()
    return out


async def load(port: int, token: str, beatmap: str, clients: int, total: int) -> dict:
    rng = random.Random(7)
    shares = [total // clients + (i < total % clients) for i in range(clients)]
    plans = [[rng.choices(["server.status", "job.list", "map.continue"], [4, 3, 3])[0]
              for _ in range(n)] for n in shares]
    connected = await asyncio.gather(*(open_client(port, token) for _ in range(clients)))
    quick: list[float] = []
    counts: Counter = Counter()

    async def one(client: Client, method: str, i: int) -> None:
        params = {"beatmap": beatmap, "fromMs": 15000, "untilMs": 25000,
                  "sampling": {"seed": i}} if method == "map.continue" else {}
        start = time.perf_counter()
        reply = await asyncio.wait_for(client.call(method, params), 120)
        counts["answered"] += 1
        if "error" in reply:
            counts[f"refused {reply['error']['code']}"] += 1
            return
        if method != "map.continue":
            quick.append(time.perf_counter() - start)
            return
        counts["accepted"] += 1
        end = await client.job_end(reply["result"]["jobId"])
        if end["method"] == "job.finished":
            counts["finished"] += 1
        else:
            counts[f"failed {end['params']['code']}"] += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(client, method, i * 100 + j)
                           for i, (client, plan) in enumerate(zip(connected, plans))
                           for j, method in enumerate(plan)), return_exceptions=False)
    wall = time.perf_counter() - start
    for client in connected:
        await client.ws.close()
    return {"counts": counts, "quick": quick, "wall": wall, "sent": total,
            "mix": Counter(m for plan in plans for m in plan)}


async def red_lines(port: int, token: str, song: str, busy_song: str, requests: int) -> dict:
    client = await open_client(port, token)

    async def estimate() -> float:
        start = time.perf_counter()
        reply = await client.call("timing.estimate", {"songFolder": song})
        assert "result" in reply, reply
        return time.perf_counter() - start

    await estimate()  # warm: the song's features are then cached, as for "continue"
    idle = [await estimate() for _ in range(requests)]
    busy, still_running = [], 0
    start = time.perf_counter()
    reply = await client.call("map.generate", {"songFolder": busy_song})
    job = reply["result"]["jobId"]
    for _ in range(requests):
        busy.append(await estimate())
        still_running += not client._end(job).done()
    await client.call("job.cancel", {"jobId": job})
    await client.job_end(job)
    reply = await client.call("map.generate", {"songFolder": busy_song})  # the job's own time
    end = await client.job_end(reply["result"]["jobId"])
    job_s = end["params"]["stats"]["durationS"] if end["method"] == "job.finished" else None
    await client.ws.close()
    return {"idle": idle, "busy": busy, "still_running": still_running, "job_s": job_s,
            "first_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--total", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = args.model or default_model_path()
        label = "given" if args.model else "starter"
        if model is None:
            model, label = tiny_model(root), "tiny random (no starter model built)"
        songs = root / "Songs"
        folder = write_song(SynthConfig(out=songs, seed=5, duration_s=40.0), 0)
        beatmap = next(folder.glob("*[[]Hard[]].osu")).relative_to(songs).as_posix()
        busy = write_song(SynthConfig(out=songs, seed=6, duration_s=180.0), 0)
        proc, port, token = start_daemon(songs, root / "config", model)
        try:
            timings = asyncio.run(latency(port, token, beatmap, args.requests))
            result = asyncio.run(load(port, token, beatmap, args.clients, args.total))
            lines = asyncio.run(red_lines(port, token, folder.name, busy.name, args.requests))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    cold, timings = timings[0], timings[1:]
    seconds = [t for t, _ in timings]
    print(f"model: {label} ({model.name}); CPU threads: {os.cpu_count()}")
    print("\n| map.continue, 10 s | requests | median s | p90 s | min s | max s | objects in map |"
          " goal |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| request -> job.finished | {len(seconds)} | {statistics.median(seconds):.2f} | "
          f"{percentile(seconds, 0.9):.2f} | {min(seconds):.2f} | {max(seconds):.2f} | "
          f"{statistics.median(o for _, o in timings):.0f} | <= 2 s |")
    print(f"| first request (cold) | 1 | {cold[0]:.2f} | | | | {cold[1]} | |")
    counts, quick = result["counts"], result["quick"]
    ended = sum(v for k, v in counts.items() if k == "finished" or k.startswith("failed"))
    lost = (result["sent"] - counts["answered"]) + (counts["accepted"] - ended)
    print("\n| load | clients | requests | mix | answered | accepted jobs | ended | refusals |"
          " lost | status/list p50 / p90 s | wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    mix = ", ".join(f"{m} {n}" for m, n in sorted(result["mix"].items()))
    refusals = ", ".join(f"{k[8:]}: {v}" for k, v in sorted(counts.items())
                         if k.startswith("refused")) or "none"
    ends = f"{counts['finished']} finished" + "".join(
        f", {v} {k}" for k, v in sorted(counts.items()) if k.startswith("failed"))
    print(f"| concurrent | {args.clients} | {result['sent']} | {mix} | {counts['answered']} | "
          f"{counts['accepted']} | {ends} | {refusals} | {lost} | "
          f"{statistics.median(quick):.3f} / {percentile(quick, 0.9):.3f} | "
          f"{result['wall']:.1f} |")
    idle, busy = statistics.median(lines["idle"]), statistics.median(lines["busy"])
    job = f"{lines['job_s']:.1f}" if lines["job_s"] is not None else "failed"
    print("\n| timing.estimate, 40 s song | requests | median s | max s | busy / idle |"
          " answered while the job ran | the job alone, s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| idle daemon | {len(lines['idle'])} | {idle:.2f} | {max(lines['idle']):.2f} | 1.00 |"
          " | |")
    print(f"| during map.generate (3 min song) | {len(lines['busy'])} | {busy:.2f} | "
          f"{max(lines['busy']):.2f} | {busy / idle:.2f} | {lines['still_running']} of "
          f"{len(lines['busy'])} | {job} |")


if __name__ == "__main__":
    main()
