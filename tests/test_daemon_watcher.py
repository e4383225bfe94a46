"""The Songs watcher: a song folder copied in slowly is detected and generated for exactly once;
a restart generates nothing it already did; the daemon's own writes, hidden folders and .osz
archives trigger nothing; the feature can be turned off."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time

from daemon_support import Client, config_for, running

from companion.watcher import HandledState
from core.beatmap.parser import parse_file
from core.beatmap.ticks import TickGrid, divisors_for

SETTLE_S = 1.0  # well above the copier's pauses, so that a slow machine does not fire early


def copy_slowly(source, target, done, pause_s=0.3):
    """A download or a copy in progress: the folder first, then each file, the audio in
    chunks, with pauses shorter than the settle time between them. `done` gets the time the
    last byte was written."""
    target.mkdir()
    for file in sorted(source.iterdir()):
        time.sleep(pause_s)
        data = file.read_bytes()
        if file.suffix == ".ogg":
            chunk = len(data) // 4 + 1
            with open(target / file.name, "wb") as f:
                for start in range(0, len(data), chunk):
                    f.write(data[start: start + chunk])
                    f.flush()
                    time.sleep(pause_s)
        else:
            (target / file.name).write_bytes(data)
    done.append(time.monotonic())


def generated(folder):
    """The maps kiai wrote in a song folder (`[kiai 4.0]`, `[Hard (kiai)]`)."""
    return sorted(p.name for p in folder.glob("*.osu") if "kiai" in p.name.split("[")[-1])


def test_a_new_folder_copied_in_slowly_is_generated_for_exactly_once(tmp_path, library, model):
    songs = tmp_path / "Songs"
    songs.mkdir()
    existing = songs / "old song"
    shutil.copytree(library["short"], existing)
    config_dir = tmp_path / "config"
    config = config_for(songs, model, watch=True, settle_s=SETTLE_S)
    new = songs / "123 New Song"
    done = []
    later = songs / "456 While Stopped"

    async def first_run():
        async with running(config, config_dir) as daemon, \
                Client.connect(daemon.port) as client:
            copier = threading.Thread(target=copy_slowly, args=(library["short"], new, done))
            copier.start()
            # Things that must trigger nothing: hidden staging folders, archives (osu! imports
            # them itself), and the daemon's own writes (a continuation in an old folder).
            (songs / ".tmp-staging").mkdir()
            shutil.copy(library["short"] / "audio.ogg", songs / ".tmp-staging" / "audio.ogg")
            (songs / "789 Archive.osz").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
            old_map = next(existing.glob("*[[]Hard[]].osu"))
            accepted = await client.call("map.continue", {
                "beatmap": f"{existing.name}/{old_map.name}", "fromMs": 5000,
                "untilMs": 12000})
            await client.job_end(accepted["jobId"])
            await asyncio.to_thread(copier.join)
            detected = await client.wait_for(lambda n: n["method"] == "songs.detected")
            job = await client.wait_for(lambda n: n["method"] == "job.progress"
                                        and n["params"]["jobId"] != accepted["jobId"])
            end = await client.job_end(job["params"]["jobId"])
            await asyncio.sleep(SETTLE_S * 3)  # time enough for any second trigger
            return detected, end, client.events("songs.detected"), \
                (await client.call("job.list"))["jobs"]

    detected, end, all_detected, jobs = asyncio.run(first_run())
    assert detected["params"] == {"folder": new.name}
    assert detected["received"] > done[0]  # only once the copy was complete
    assert len(all_detected) == 1
    assert end["method"] == "job.finished", end
    assert end["params"]["stats"]["timing"] == "map"  # the song's own maps are timed
    assert end["params"]["path"].startswith(new.name + "/")
    assert len(generated(new)) == 1 and generated(new)[0].endswith("[kiai 4.0].osu")
    assert [j["method"] for j in jobs] == ["map.continue", "map.generate"]
    assert len(generated(existing)) == 1  # the continuation only

    # A restart: the handled folder stays handled; one that came while stopped is picked up.
    # It holds only the audio (a mapper starting a new set): its timing is estimated.
    later.mkdir()
    shutil.copy(library["short"] / "audio.ogg", later / "audio.ogg")

    async def second_run():
        async with running(config, config_dir) as daemon, \
                Client.connect(daemon.port) as client:
            detected = await client.wait_for(lambda n: n["method"] == "songs.detected")
            job = await client.wait_for(lambda n: n["method"] == "job.progress")
            end = await client.job_end(job["params"]["jobId"])
            await asyncio.sleep(SETTLE_S * 3)
            return detected, end, client.events("songs.detected"), \
                (await client.call("job.list"))["jobs"]

    detected, end, all_detected, jobs = asyncio.run(second_run())
    assert detected["params"] == {"folder": later.name} and len(all_detected) == 1
    assert end["params"]["stats"]["timing"] == "estimated"  # and it says so
    assert end["params"]["stats"]["attempts"] >= 1
    assert len(jobs) == 1
    assert len(generated(new)) == 1 and len(generated(later)) == 1
    timed = parse_file(later / generated(later)[0]).beatmap
    truth = [p for p in parse_file(next(library["short"].glob("*.osu"))).beatmap.timing_points
             if p.uninherited]
    red = [p for p in timed.timing_points if p.uninherited]
    assert red and abs(red[0].beat_length / truth[0].beat_length - 1) < 0.005
    # the tempo to offer should the estimate be a multiple off (protocol 1.4): another octave
    ratio = end["params"]["stats"]["alternativeBpm"] / red[0].bpm
    assert any(abs(ratio / r - 1) < 0.01 for r in (2, 0.5, 1.5, 2 / 3))
    assert "bpmTag" not in end["params"]["stats"]  # the synthetic song's audio has no tags
    ticks = TickGrid(red, divisors_for(4))
    assert timed.hit_objects and all(ticks.snap(o.time, 1.0) for o in timed.hit_objects)

    async def third_run():
        async with running(config, config_dir) as daemon, \
                Client.connect(daemon.port) as client:
            await asyncio.sleep(SETTLE_S * 3)
            return client.events("songs.detected"), (await client.call("job.list"))["jobs"]

    assert asyncio.run(third_run()) == ([], [])  # nothing new


def test_the_first_start_leaves_the_library_alone_and_watching_can_be_off(tmp_path, library,
                                                                          model):
    songs = tmp_path / "Songs"
    songs.mkdir()
    shutil.copytree(library["short"], songs / "already here")

    async def main(watch):
        config = config_for(songs, model, watch=watch, settle_s=SETTLE_S)
        async with running(config, tmp_path / "config") as daemon, \
                Client.connect(daemon.port) as client:
            if not watch:
                shutil.copytree(library["short"], songs / "new while not watching")
            await asyncio.sleep(SETTLE_S * 3)
            status = await client.call("server.status")
            return status["watching"], client.events("songs.detected")

    assert asyncio.run(main(watch=True)) == (True, [])
    assert asyncio.run(main(watch=False)) == (False, [])
    assert not [p for p in songs.iterdir() if generated(p)]


def test_renamed_sets_stay_handled_and_a_stalled_copy_is_generated_once_complete(
        tmp_path, library, model):
    """A mapper renaming a handled set triggers nothing; a folder holding a symlink loop is
    still a song folder; a copy that stalls longer than the settle time looks complete, its
    job fails on the truncated audio, and the rest of the copy then gets its map."""
    songs = tmp_path / "Songs"
    songs.mkdir()
    shutil.copytree(library["short"], songs / "old song")
    audio = (library["short"] / "audio.ogg").read_bytes()

    async def main():
        config = config_for(songs, model, watch=True, settle_s=SETTLE_S)
        async with running(config, tmp_path / "config") as daemon, \
                Client.connect(daemon.port) as client:
            (songs / "old song").rename(songs / "old song (tidied)")
            looping = songs / "90001 Loop"
            shutil.copytree(library["short"], looping)
            (looping / "loop").symlink_to("loop")
            loop_job = await client.wait_for(lambda n: n["method"] == "job.progress")
            loop_end = await client.job_end(loop_job["params"]["jobId"])

            stalled = songs / "90002 Stalled"
            stalled.mkdir()
            for file in library["short"].glob("*.osu"):
                shutil.copy(file, stalled / file.name)
            (stalled / "audio.ogg").write_bytes(audio[: len(audio) // 2 + 7])
            failed = await client.wait_for(lambda n: n["method"] == "job.failed")
            (stalled / "audio.ogg").write_bytes(audio)  # the copy goes on
            finished = await client.wait_for(
                lambda n: n["method"] == "job.finished"
                and n["params"]["path"].startswith(stalled.name))
            await asyncio.sleep(SETTLE_S * 3)
            return loop_end, failed, finished, client.events("songs.detected")

    loop_end, failed, finished, detected = asyncio.run(main())
    assert loop_end["method"] == "job.finished", loop_end
    assert loop_end["params"]["path"].startswith("90001 Loop/")
    assert failed["params"]["code"] == -32021, failed  # AUDIO_ERROR
    assert "90002 Stalled/audio.ogg" in failed["params"]["message"]
    assert [d["folder"] for d in detected] == ["90001 Loop", "90002 Stalled"]  # once each
    assert not generated(songs / "old song (tidied)")
    assert len(generated(songs / "90002 Stalled")) == 1
    assert finished["params"]["stats"]["objects"] > 0


def test_a_record_that_cannot_be_written_is_logged_not_raised(tmp_path, caplog):
    """A full disk or a read-only config folder must not stop the watching (the error had
    escaped the watcher's guard, ending it silently); the folder stays handled for this run."""
    blocker = tmp_path / "not a folder"
    blocker.write_text("a file where the config folder should be", encoding="utf-8")
    state = HandledState(blocker / "state.json", tmp_path / "Songs")
    state.add("123 New Song")
    assert "123 New Song" in state.names
    assert "cannot record the handled song folders" in caplog.text
