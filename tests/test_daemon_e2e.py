"""The daemon end to end: a real server on an ephemeral port, real websocket clients, a real
Songs folder (a ranked corpus map with a real track, and synthetic songs) and a real model."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from corpus_files import require_corpus, resource
from daemon_support import (
    TOKEN,
    TOSU_ORIGIN,
    Client,
    RpcError,
    add_corpus_song,
    config_for,
    hit_object_lines,
    md5,
    running,
    songs_with,
    tree,
)

from protocol import ErrorCode

RENATUS = "Soleily - Renatus (Gamu) [Insane].osu"


@pytest.fixture
def songs(tmp_path, library):
    return songs_with(tmp_path, library, "short", "long")


@pytest.fixture
def renatus(songs):
    root = require_corpus()
    return add_corpus_song(songs, root, resource(root, RENATUS))


def rel(songs, path):
    return path.relative_to(songs).as_posix()


def test_initialize_with_the_header_or_in_params(songs, model):
    async def main():
        async with running(config_for(songs, model)) as daemon:
            async with Client.connect(daemon.port, initialize=False) as client:
                with pytest.raises(RpcError) as e:
                    await client.call("server.status")
                assert e.value.code == ErrorCode.NOT_INITIALIZED
                result = await client.initialize()
                assert result["protocolVersion"] == "1.9"
                assert {"map.continue", "timing.estimate"} <= set(result["capabilities"]["methods"])
                assert result["model"]["name"]
            # A browser page (an allowed Origin) cannot set headers: the token goes in params.
            async with Client.connect(daemon.port, token=None, origin=TOSU_ORIGIN,
                                      initialize=False) as page:
                with pytest.raises(RpcError) as e:
                    await page.call("job.list")
                assert e.value.code == ErrorCode.UNAUTHORIZED
                with pytest.raises(RpcError) as e:
                    await page.initialize(token="wrong")
                assert e.value.code == ErrorCode.UNAUTHORIZED
                await page.initialize(token=TOKEN)
                status = await page.call("server.status")
                assert status["songsFolder"] == str(songs.resolve())
    asyncio.run(main())


def test_continue_writes_a_new_difficulty_keeping_the_objects_before_from(songs, renatus,
                                                                           model):
    original = renatus.read_bytes()
    from_ms, until_ms = 60_000, 70_000

    async def main():
        async with running(config_for(songs, model)) as daemon, \
                Client.connect(daemon.port) as client:
            accepted = await client.call("map.continue", {
                "beatmap": rel(songs, renatus), "fromMs": from_ms, "untilMs": until_ms,
                "expectedMd5": md5(renatus)})
            end = await client.job_end(accepted["jobId"])
            assert end["method"] == "job.finished", end
            progress = client.events("job.progress", accepted["jobId"])
            return end["params"], progress, client.notifications

    finished, progress, notifications = asyncio.run(main())
    # The reply came before the first progress (0%), which the last (100%) follows.
    assert progress[0] == {"jobId": finished["jobId"], "stage": "queued", "percent": 0}
    assert [p["percent"] for p in progress] == sorted(p["percent"] for p in progress)
    assert progress[-1]["percent"] == 100
    assert notifications[-1]["method"] == "job.finished"
    written = songs / finished["path"]
    assert written.parent == renatus.parent and written != renatus
    assert written.name == "Soleily - Renatus (Gamu) [Insane (kiai)].osu"
    assert "backupPath" not in finished
    assert finished["stats"]["objects"] > 0 and finished["stats"]["stars"] > 0
    before = [line for line in hit_object_lines(renatus) if int(line.split(",")[2]) < from_ms]
    assert hit_object_lines(written)[: len(before)] == before  # byte for byte
    assert renatus.read_bytes() == original


def test_in_place_backs_up_first_and_refuses_a_changed_file(songs, renatus, model):
    original = renatus.read_bytes()
    beatmap = rel(songs, renatus)

    async def main():
        async with running(config_for(songs, model)) as daemon, \
                Client.connect(daemon.port) as client:
            untouched = tree(songs)
            for params, code in [
                ({"expectedMd5": "0" * 32}, ErrorCode.FILE_CHANGED),
                ({}, ErrorCode.INVALID_PARAMS),  # inPlace needs the MD5 the client saw
            ]:
                with pytest.raises(RpcError) as e:
                    await client.call("map.continue", {"beatmap": beatmap, "fromMs": 60_000,
                                                       "write": "inPlace", **params})
                assert e.value.code == code
            assert tree(songs) == untouched  # nothing written
            accepted = await client.call("map.continue", {
                "beatmap": beatmap, "fromMs": 60_000, "untilMs": 68_000, "write": "inPlace",
                "expectedMd5": md5(renatus)})
            return await client.job_end(accepted["jobId"])

    end = asyncio.run(main())
    assert end["method"] == "job.finished", end
    finished = end["params"]
    assert finished["path"] == beatmap
    backup = songs / finished["backupPath"]
    assert backup.parent == renatus.parent
    assert backup.name.startswith(renatus.name + ".") and backup.suffix == ".bak"
    assert backup.read_bytes() == original  # the backup is the original, byte for byte
    assert renatus.read_bytes() != original
    before = [line for line in hit_object_lines(backup) if int(line.split(",")[2]) < 60_000]
    assert hit_object_lines(renatus)[: len(before)] == before


def test_generate_list_status_and_a_disconnected_client(songs, library, model):
    folder = library["short"].name
    song_map = next((songs / folder).glob("*[[]Hard[]].osu"))

    async def main():
        async with running(config_for(songs, model)) as daemon, \
                Client.connect(daemon.port) as watcher:
            # A client that asks and goes away: its job goes on.
            async with Client.connect(daemon.port) as quitter:
                gone = await quitter.call("map.continue", {"beatmap": rel(songs, song_map),
                                                           "fromMs": 5000, "untilMs": 15000})
            accepted = await watcher.call("map.generate", {"songFolder": folder, "stars": 3.5})
            ends = [await watcher.job_end(gone["jobId"]),
                    await watcher.job_end(accepted["jobId"])]
            jobs = (await watcher.call("job.list"))["jobs"]
            status = await watcher.call("server.status")
            return ends, jobs, status, watcher.events("job.progress", accepted["jobId"])

    ends, jobs, status, progress = asyncio.run(main())
    assert [e["method"] for e in ends] == ["job.finished", "job.finished"], ends
    continued, generated = (songs / e["params"]["path"] for e in ends)
    assert continued.name.endswith("[Hard (kiai)].osu") and continued.is_file()
    assert generated.parent == songs / folder and generated.name.endswith("[kiai 3.5].osu")
    assert {p["percent"] for p in progress} >= {0, 100}
    assert [(j["method"], j["state"]) for j in jobs] == [("map.continue", "finished"),
                                                          ("map.generate", "finished")]
    assert status["queue"] == {"length": 0, "capacity": 8} and status["watching"] is False


def test_generate_at_a_given_bpm_and_refuse_a_bad_one(songs, library, model):
    """map.generate's `bpm` (1.3) and `meter` (1.7): checked against the schema, then the song
    is timed with them; job.finished offers no other tempo (1.4's alternativeBpm is for
    estimates)."""
    from core.beatmap.parser import parse_file

    folder = library["short"].name
    (truth,) = [p for p in parse_file(next((songs / folder).glob("*.osu"))).beatmap.timing_points
                if p.uninherited]

    async def main():
        async with running(config_for(songs, model)) as daemon, \
                Client.connect(daemon.port) as client:
            with pytest.raises(RpcError) as e:
                await client.call("map.generate", {"songFolder": folder, "bpm": 5})
            assert e.value.code == ErrorCode.INVALID_PARAMS and "bpm" in e.value.message
            with pytest.raises(RpcError) as e:
                await client.call("map.generate", {"songFolder": folder, "meter": 0})
            assert e.value.code == ErrorCode.INVALID_PARAMS and "meter" in e.value.message
            accepted = await client.call("map.generate", {"songFolder": folder, "stars": 3,
                                                          "bpm": truth.bpm * 2, "meter": 3})
            return await client.job_end(accepted["jobId"])

    end = asyncio.run(main())
    assert end["method"] == "job.finished", end
    assert end["params"]["stats"]["timing"] == "estimated"
    assert "alternativeBpm" not in end["params"]["stats"]  # the tempo was given, not estimated
    assert end["params"]["stats"]["tempoFrom"] == "given"  # 1.9: clients can tell
    (line,) = [p for p in parse_file(songs / end["params"]["path"]).beatmap.timing_points
               if p.uninherited]
    assert abs(line.beat_length - truth.beat_length / 2) < 1e-9 and line.meter == 3
    d = (line.time - truth.time) % line.beat_length
    assert min(d, line.beat_length - d) <= 10


def test_cancel_a_running_job_and_a_full_queue(songs, library, model):
    long_song = library["long"].name
    before = tree(songs)

    async def main():
        config = config_for(songs, model, queue_capacity=1)
        async with running(config) as daemon, Client.connect(daemon.port) as client:
            accepted = await client.call("map.generate", {"songFolder": long_song})
            job_id = accepted["jobId"]
            await client.wait_for(lambda n: n["method"] == "job.progress"
                                  and n["params"]["stage"] == "decoding")
            with pytest.raises(RpcError) as full:
                await client.call("map.generate", {"songFolder": long_song})
            assert full.value.code == ErrorCode.QUEUE_FULL
            assert (await client.call("job.cancel", {"jobId": job_id})) == {"cancelled": True}
            end = await client.job_end(job_id)
            jobs = (await client.call("job.list"))["jobs"]
            again = await client.call("job.cancel", {"jobId": job_id})
            with pytest.raises(RpcError) as missing:
                await client.call("job.cancel", {"jobId": "j-999"})
            status = await client.call("server.status")
            return end, jobs, again, missing.value.code, status

    end, jobs, again, missing, status = asyncio.run(main())
    assert end["method"] == "job.failed" and end["params"]["code"] == ErrorCode.CANCELLED
    assert jobs[0]["state"] == "cancelled" and again == {"cancelled": False}
    assert missing == ErrorCode.JOB_NOT_FOUND
    assert status["queue"]["length"] == 0  # and the daemon still answers
    assert tree(songs) == before  # no file written


def test_job_failures_carry_their_codes(songs, library, model, tmp_path):
    folder = songs / library["short"].name
    broken = folder / "broken.osu"
    broken.write_bytes(b"\x00\x01 not a beatmap at all")
    no_audio = folder / "no audio.osu"
    text = next(folder.glob("*[[]Easy[]].osu")).read_text(encoding="utf-8")
    no_audio.write_text(text.replace("AudioFilename: audio.ogg", "AudioFilename: gone.ogg"),
                        encoding="utf-8")
    before = tree(songs)

    async def failure(client, params):
        accepted = await client.call("map.continue", {"fromMs": 1000, **params})
        end = await client.job_end(accepted["jobId"])
        assert end["method"] == "job.failed", end
        return end["params"]

    async def main():
        async with running(config_for(songs, model)) as daemon, \
                Client.connect(daemon.port) as client:
            parse = await failure(client, {"beatmap": rel(songs, broken)})
            audio = await failure(client, {"beatmap": rel(songs, no_audio)})
            with pytest.raises(RpcError) as missing:
                await client.call("map.continue", {"beatmap": "nope/x.osu", "fromMs": 0})
        without_model = config_for(songs, tmp_path / "no-such-checkpoint")
        async with running(without_model) as daemon, Client.connect(daemon.port) as client:
            assert (await client.call("server.status"))["model"]["name"] == "none"
            no_model = await failure(client, {"beatmap": rel(songs, no_audio.with_name(
                next(folder.glob("*[[]Easy[]].osu")).name))})
        return parse, audio, missing.value, no_model

    parse, audio, missing, no_model = asyncio.run(main())
    assert parse["code"] == ErrorCode.BEATMAP_PARSE_ERROR
    assert parse["data"]["file"] == rel(songs, broken)
    assert audio["code"] == ErrorCode.AUDIO_ERROR and "gone.ogg" in audio["message"]
    assert missing.code == ErrorCode.FILE_NOT_FOUND
    assert no_model["code"] == ErrorCode.MODEL_ERROR
    assert tree(songs) == before  # failed jobs write nothing


def test_continue_keeps_to_the_spacing_asked_for_and_refuses_a_bad_one(songs, renatus, model):
    from core.beatmap.parser import parse_file

    async def main():
        async with running(config_for(songs, model)) as daemon, \
                Client.connect(daemon.port) as client:
            with pytest.raises(RpcError) as e:
                await client.call("map.continue", {"beatmap": rel(songs, renatus),
                                                   "fromMs": 60_000, "spacing": 0})
            assert e.value.code == ErrorCode.INVALID_PARAMS and "spacing" in e.value.message
            accepted = await client.call("map.continue", {
                "beatmap": rel(songs, renatus), "fromMs": 60_000, "untilMs": 75_000,
                "spacing": 0.1})
            return await client.job_end(accepted["jobId"])

    end = asyncio.run(main())
    assert end["method"] == "job.finished", end
    objects = parse_file(songs / end["params"]["path"]).beatmap.hit_objects
    pairs = [(a, b) for a, b in itertools.pairwise(objects) if 60_000 <= b.time < 75_000
             and type(a).__name__ == "Circle" and type(b).__name__ != "Spinner"]
    assert len(pairs) >= 3
    for a, b in pairs:  # 10 ms for times snapping onto ticks, 4 px cells
        assert ((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5 <= 0.1 * (b.time - a.time + 10) + 9


def test_an_audio_files_bpm_tag_times_a_new_song_and_is_reported(songs, model):
    """A bare song whose audio names its tempo (114 BPM, which the audio alone times at 228):
    map.generate times it at the tag, and job.finished says so (1.5's bpmTag) and offers the
    other reading."""
    from mapping_support import tagged_bare_song

    from core.beatmap.parser import parse_file

    bare = songs / "1009 Synth - Tagged"
    truth = tagged_bare_song(bare, 1, songs.parent / "made")

    async def main():
        async with running(config_for(songs, model)) as daemon, \
                Client.connect(daemon.port) as client:
            accepted = await client.call("map.generate", {"songFolder": bare.name, "stars": 3})
            return await client.job_end(accepted["jobId"])

    end = asyncio.run(main())
    assert end["method"] == "job.finished", end
    stats = end["params"]["stats"]
    assert stats["timing"] == "estimated" and stats["bpmTag"] == pytest.approx(truth.bpm)
    assert stats["tempoFrom"] == "tag"
    assert stats["alternativeBpm"] == pytest.approx(2 * truth.bpm)
    (line,) = [p for p in parse_file(songs / end["params"]["path"]).beatmap.timing_points
               if p.uninherited]
    assert line.beat_length == pytest.approx(truth.beat_length)
    assert end["params"]["path"].startswith("1009 Synth - Tagged/Synth - Tagged (kiai)")


def test_a_map_deleted_while_its_job_waits_is_file_not_found(songs, library, model):
    """The map an inPlace continuation names is deleted while the job waits behind another:
    the job fails FILE_NOT_FOUND naming it relative to Songs (it had been INTERNAL_ERROR with
    an absolute path), and nothing is written."""
    folder = songs / library["short"].name
    target = next(folder.glob("*[[]Hard[]].osu"))

    async def main():
        async with running(config_for(songs, model)) as daemon, \
                Client.connect(daemon.port) as client:
            busy = await client.call("map.generate", {"songFolder": library["long"].name})
            await client.wait_for(lambda n: n["method"] == "job.progress"
                                  and n["params"]["stage"] == "decoding")
            waiting = await client.call("map.continue", {
                "beatmap": rel(songs, target), "fromMs": 5000, "write": "inPlace",
                "expectedMd5": md5(target)})
            target.unlink()
            await client.call("job.cancel", {"jobId": busy["jobId"]})
            return await client.job_end(waiting["jobId"])

    end = asyncio.run(main())
    assert end["method"] == "job.failed", end
    assert end["params"]["code"] == ErrorCode.FILE_NOT_FOUND
    assert end["params"]["data"] == {"path": rel(songs, target)}
    assert not list(folder.glob("*.bak")) and not list(folder.glob(".*.tmp"))
