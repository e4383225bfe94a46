"""timing.estimate (protocol 1.6): a real daemon, real websocket clients, real audio files.

The estimate is answered as the request's response, from a worker thread of its own, so a
plugin gets a new song's red lines while a long generation job is still running."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile as sf
from corpus_files import REPO
from daemon_support import (
    TOKEN,
    Client,
    DaemonThread,
    RpcError,
    config_for,
    running,
    songs_with,
    tree,
)
from mapping_support import tagged_bare_song

from companion.analysis import Analyses
from core.beatmap.parser import parse_bytes
from protocol import ErrorCode, InternalError, JobCancelledError, QueueFullError


@pytest.fixture
def songs(tmp_path, library):
    return songs_with(tmp_path, library, "long")


def off_beat_ms(time: float, truth) -> float:
    d = (time - truth.time) % truth.beat_length
    return min(d, truth.beat_length - d)


def test_red_lines_of_a_tagged_song_arrive_while_a_job_runs(songs, library, model):
    """A bare song whose audio's tag says 114 BPM (the audio alone times it at 228): the answer
    is at the tag, offers the other reading, parses back as .osu lines, writes nothing, and
    comes while a 90 s song's generation job is still running (that job is then cancelled)."""
    bare = songs / "1009 Synth - Tagged"
    truth = tagged_bare_song(bare, 1, songs.parent / "made")
    before = tree(bare)

    async def main():
        async with running(config_for(songs, model)) as daemon, \
                Client.connect(daemon.port) as client:
            accepted = await client.call("map.generate", {"songFolder": library["long"].name})
            job = accepted["jobId"]
            await client.wait_for(lambda n: n["method"] == "job.progress"
                                  and n["params"]["stage"] == "decoding")
            result = await client.call("timing.estimate", {"songFolder": bare.name})
            cancelled = await client.call("job.cancel", {"jobId": job})
            end = await client.job_end(job)
            given = await client.call("timing.estimate",
                                      {"audio": f"{bare.name}/audio.ogg", "bpm": 2 * truth.bpm})
            return result, cancelled, end, given

    result, cancelled, end, given = asyncio.run(main())
    assert cancelled == {"cancelled": True}  # the job was still running when the answer came
    assert end["params"]["code"] == ErrorCode.CANCELLED
    assert result["audio"] == f"{bare.name}/audio.ogg"
    assert result["tempoFrom"] == "tag" and result["bpmTag"] == pytest.approx(truth.bpm)
    assert result["alternativeBpm"] == pytest.approx(2 * truth.bpm)
    (line,) = result["timingPoints"]
    assert line["beatLength"] == pytest.approx(truth.beat_length)
    assert line["bpm"] == pytest.approx(truth.bpm) and line["meter"] == truth.meter
    assert off_beat_ms(line["timeMs"], truth) <= 10
    text = "osu file format v14\n\n[TimingPoints]\n" + "\n".join(result["osuLines"]) + "\n"
    (parsed,) = parse_bytes(text.encode(), "osuLines").beatmap.timing_points
    assert parsed.uninherited and parsed.time == pytest.approx(line["timeMs"], abs=1e-3)
    assert parsed.beat_length == pytest.approx(line["beatLength"], rel=1e-9)
    assert tree(bare) == before  # nothing written

    assert given["tempoFrom"] == "given" and "alternativeBpm" not in given
    assert "bpmTag" not in given  # the tempo was given: the tag was not asked
    (line,) = given["timingPoints"]
    assert line["beatLength"] == pytest.approx(truth.beat_length / 2)
    assert off_beat_ms(line["timeMs"], truth) <= 10


def test_bad_requests_get_their_codes_and_the_daemon_goes_on(songs, model):
    """The schema's checks (meter, one of songFolder and audio), paths inside Songs, audio
    that cannot be read or has no beat (AUDIO_ERROR naming the file), a folder with no audio;
    an audio file directly in Songs is timed, but map.generate refuses to write beside it."""
    quiet = songs / "2 Silence - Nothing"
    quiet.mkdir()
    sf.write(quiet / "silence.wav", np.zeros(10 * 22050, dtype=np.float32), 22050)
    t = np.arange(10 * 22050) / 22050
    sf.write(quiet / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050)
    (songs / "3 Empty").mkdir()
    shutil.copy(next(songs.glob("*/audio.ogg")), songs / "loose.ogg")
    (songs / "3 Empty" / "notes.txt").write_text("no audio here", encoding="utf-8")

    async def code_of(client, params):
        with pytest.raises(RpcError) as e:
            await client.call("timing.estimate", params)
        return e.value

    async def main():
        async with running(config_for(songs, model)) as daemon, \
                Client.connect(daemon.port) as client:
            errors = {
                "meter": await code_of(client, {"songFolder": quiet.name, "meter": 0}),
                "both": await code_of(client, {"songFolder": quiet.name,
                                               "audio": f"{quiet.name}/silence.wav"}),
                "neither": await code_of(client, {}),
                "outside": await code_of(client, {"songFolder": "../.."}),
                "not audio": await code_of(client, {"audio": "3 Empty/notes.txt"}),
                "silent": await code_of(client, {"audio": f"{quiet.name}/silence.wav"}),
                "no beat": await code_of(client, {"audio": f"{quiet.name}/tone.wav"}),
                "no audio": await code_of(client, {"songFolder": "3 Empty"}),
            }
            with pytest.raises(RpcError) as loose:  # a map beside it would sit in Songs itself
                await client.call("map.generate", {"audio": "loose.ogg"})
            timed = await client.call("timing.estimate", {"audio": "loose.ogg"})  # writes none
            return errors, await client.call("server.status"), loose.value, timed

    errors, status, loose, timed = asyncio.run(main())
    assert loose.code == ErrorCode.INVALID_PARAMS and "directly in Songs" in loose.message
    assert timed["audio"] == "loose.ogg" and timed["timingPoints"]
    for name in ("meter", "both", "neither", "not audio"):
        assert errors[name].code == ErrorCode.INVALID_PARAMS, (name, errors[name])
    assert errors["outside"].code == ErrorCode.PATH_OUTSIDE_SONGS
    assert errors["silent"].code == ErrorCode.AUDIO_ERROR
    assert errors["silent"].data == {"file": f"{quiet.name}/silence.wav"}
    assert "silent" in errors["silent"].message
    assert errors["no beat"].code == ErrorCode.AUDIO_ERROR  # core.tempo's TimingError
    assert errors["no beat"].data == {"file": f"{quiet.name}/tone.wav"}
    assert "nothing to time" in errors["no beat"].message
    assert errors["no audio"].code == ErrorCode.AUDIO_ERROR
    assert errors["no audio"].data == {"file": "3 Empty"}  # named relative to Songs, as the rest
    assert errors["no audio"].message.startswith("3 Empty: no audio file")
    assert status["queue"]["length"] == 0


def test_the_analysis_thread_bounds_what_waits_and_answers_every_request():
    """CAPACITY requests wait or run at once; the next is refused QUEUE_FULL at once; a work
    that raises is answered INTERNAL_ERROR; closing answers what has not started CANCELLED
    (which of two submitted has started by then is the threads' race)."""
    async def main():
        analyses = Analyses(capacity=2)
        release = threading.Event()
        answers: list = []
        analyses.run(lambda: release.wait(10) and "first", answers.append)
        analyses.run(lambda: 1 / 0, answers.append)
        with pytest.raises(QueueFullError):
            analyses.run(lambda: "third", answers.append)
        release.set()
        while len(answers) < 2:
            await asyncio.sleep(0.01)
        analyses.run(lambda: "after", answers.append)  # room again
        while len(answers) < 3:
            await asyncio.sleep(0.01)
        hold = threading.Event()
        analyses.run(lambda: hold.wait(10), answers.append)
        analyses.run(lambda: "never", answers.append)
        analyses.close()
        hold.set()
        while len(answers) < 5:
            await asyncio.sleep(0.01)
        with pytest.raises(JobCancelledError, match="shutting down"):
            analyses.run(lambda: "closed", answers.append)
        return answers

    answers = asyncio.run(main())
    assert answers[0] == "first" and isinstance(answers[1], InternalError)
    assert answers[2] == "after"
    for answer in answers[3:]:  # each answered once: run, or dropped as the thread closed
        assert answer in (True, "never") or (isinstance(answer, JobCancelledError)
                                             and "shutting down" in answer.message), answer


def test_the_red_lines_example_prints_lines_that_paste_into_a_map(songs, model, tmp_path):
    """examples/red_lines.py against the real daemon, with the song as an absolute path."""
    bare = songs / "1010 Synth - Tagged"
    truth = tagged_bare_song(bare, 1, tmp_path / "made")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def example(port, *args):
        return subprocess.run(
            [sys.executable, str(REPO / "examples" / "red_lines.py"), *args, "--port", str(port),
             "--token-file", str(token_file)], capture_output=True, text=True, env=env,
            timeout=120)

    with DaemonThread(config_for(songs, model)) as daemon:
        done = example(daemon.port, str(bare))
        as_json = example(daemon.port, f"{bare.name}/audio.ogg", "--bpm", "300", "--json")
        outside = example(daemon.port, "../elsewhere")
        slow = example(daemon.port, str(bare), "--bpm", "5")
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    assert header == "[TimingPoints]"
    text = "osu file format v14\n\n[TimingPoints]\n" + "\n".join(lines) + "\n"
    (red,) = parse_bytes(text.encode(), "stdout").beatmap.timing_points
    assert red.beat_length == pytest.approx(truth.beat_length)
    assert off_beat_ms(red.time, truth) <= 10
    assert "BPM tag" in done.stderr and f"--bpm {2 * truth.bpm:g}" in done.stderr
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["tempoFrom"] == "given" and result["timingPoints"][0]["bpm"] == 300
    assert outside.returncode == 1 and "PATH_OUTSIDE_SONGS" not in outside.stderr
    assert "outside" in outside.stderr and "-32010" in outside.stderr
    assert slow.returncode == 2 and "not within 20..1000" in slow.stderr  # a usage error
