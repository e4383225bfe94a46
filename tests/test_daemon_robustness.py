"""What a hostile or unlucky Songs folder does to the daemon (QA round 7): a folder swapped for a
link out of Songs after its request was accepted, a named pipe where a map should be, a cancel
that comes as the job writes, progress through retries, new songs queued when the daemon stops,
folder names the protocol cannot carry, audio still being copied, a full disk, and file systems
without hard links."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import logging
import os
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest
from daemon_support import tree

import companion.tasks as tasks
from companion.jobs import JobQueue, Outcome
from companion.mapping import Generated, Target
from companion.methods import handled_after
from companion.safety import OwnWrites, SongsFolder
from companion.tasks import ContinueRequest, Workspace, check_continue, check_generate
from companion.watcher import SongsWatcher
from core.beatmap.parser import parse_file
from core.beatmap.writer import move_new, write_file_atomic
from core.decoding import DecodingOptions, JobCancelled
from core.song_input import resolve
from protocol import (
    AudioError,
    ErrorCode,
    JobFailed,
    JobFinished,
    JobProgress,
    MissingFileError,
    PathOutsideSongsError,
    WriteError,
)

POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX links, pipes and names")


@pytest.fixture
def space(tmp_path, library):
    songs = tmp_path / "Songs"
    songs.mkdir()
    shutil.copytree(library["short"], songs / "song")
    return Workspace(SongsFolder(songs), OwnWrites())


class Context:
    """A JobContext for work run outside the queue."""

    def generator(self):
        return None

    def progress(self, stage: str, percent: float) -> None:
        pass

    def should_stop(self) -> bool:
        return False

    def check_cancelled(self) -> None:
        pass

    def commit(self) -> None:
        pass


@POSIX
def test_a_folder_swapped_for_a_link_out_of_songs_after_the_request_is_refused(space, tmp_path):
    songs = space.songs.root
    map_name = next((songs / "song").glob("*.osu")).name
    path = check_continue(space, f"song/{map_name}", None, False)
    folder = check_generate(space, "song", None)
    outside = tmp_path / "outside"
    shutil.copytree(songs / "song", outside)
    (songs / "song").rename(songs / "song.old")  # while the jobs waited in the queue
    (songs / "song").symlink_to(outside, target_is_directory=True)
    for audio in outside.glob("*.ogg"):  # its audio leads back in: only the folder is out
        audio.unlink()
        audio.symlink_to(songs / "song.old" / audio.name)
    before = tree(outside)
    request = ContinueRequest(path, f"song/{map_name}", 1000.0, None, None, False,
                              DecodingOptions())
    with pytest.raises(PathOutsideSongsError):
        tasks.continue_work(space, request)(Context())
    with pytest.raises(PathOutsideSongsError):
        tasks.generate_work(space, folder, Target(3.0), DecodingOptions())(Context())
    assert tree(outside) == before


@POSIX
def test_a_named_pipe_for_a_map_or_the_audio_is_not_read(space):
    folder = space.songs.root / "song"
    pipes = [folder / "pipe.osu", folder / "pipe.mp3"]
    for pipe in pipes:
        os.mkfifo(pipe)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        source = pool.submit(resolve, folder).result(timeout=20)
    finally:  # a read blocked on a pipe (the bug) is let go, so that the test fails, not hangs
        for pipe in pipes:
            with contextlib.suppress(OSError):  # ENXIO: nobody is reading it
                os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        pool.shutdown(wait=False)
    assert source.audio.name == "audio.ogg" and source.template.audio_filename == "audio.ogg"


def run_queue(work, cancel_when: threading.Event | None = None):
    """Run one job of `work` on a JobQueue; cancel it once `cancel_when` is set. (the job's
    end, what cancel answered, every notification)"""
    async def main():
        published = []
        queue = JobQueue(2, lambda: object(), published.append)
        job = queue.submit("map.generate", work)
        answered = None
        while not any(isinstance(n, (JobFinished, JobFailed)) for n in published):
            if cancel_when is not None and cancel_when.is_set() and answered is None:
                answered = queue.cancel(job.id)
            await asyncio.sleep(0.01)
        await queue.close()
        return job, answered, published

    return asyncio.run(main())


def test_a_cancel_that_comes_as_the_job_writes_is_refused_and_one_before_is_not():
    for late in (True, False):
        asked = threading.Event()

        def work(context, late=late, asked=asked):
            if late:
                context.commit()
            asked.set()
            for _ in range(500):  # the cancel arrives here
                if context.should_stop():
                    break
                threading.Event().wait(0.01)
            context.commit()
            return Outcome("song/x.osu", 1, 1.0)

        job, answered, _ = run_queue(work, asked)
        if late:
            assert answered is False and job.state == "finished"
        else:
            assert answered is True and job.state == "cancelled"


def test_progress_never_goes_back_within_a_stage_and_a_retry_starts_its_own():
    def work(context):
        for stage, percent in [("decoding", 40), ("decoding", 100), ("decoding", 70),
                               ("retry 2", 0), ("retry 2", 30), ("retry 2", 10)]:
            context.progress(stage, percent)
        return Outcome("song/x.osu", 1, 1.0)

    _, _, published = run_queue(work)
    seen = [(n.stage, n.percent) for n in published if isinstance(n, JobProgress)]
    assert seen[-6:] == [("decoding", 40), ("decoding", 100), ("decoding", 100),
                         ("retry 2", 0), ("retry 2", 30), ("retry 2", 30)]


def test_job_ids_are_new_at_each_start():
    async def ids():
        queue = JobQueue(2, lambda: object(), lambda _n: None)
        job = queue.submit("map.generate", lambda _c: Outcome("a/x.osu", 1, 1.0))
        await queue.close()
        return job.id

    starts = [asyncio.run(ids()) for _ in range(3)]
    assert all(re.fullmatch(r"j-[a-z0-9]{4}-1", job_id) for job_id in starts)
    assert len(set(starts)) > 1  # all three alike: once in 10^12 runs


async def watch(songs: Path, state: Path, calls: list, seconds: float) -> None:
    """A SongsWatcher on `songs` for `seconds`, each on_ready call appended to `calls`."""
    def ready(path, audio_failed, ended):
        calls.append((path.name, ended))
        return True

    watcher = SongsWatcher(songs, state, 0.2, OwnWrites(), lambda _p: None, ready)
    await watcher.start()
    await asyncio.sleep(seconds)
    await watcher.stop()


def test_a_new_song_is_recorded_when_its_job_ends_not_when_it_is_queued(tmp_path, library,
                                                                           caplog):
    songs, state = tmp_path / "Songs", tmp_path / "state.json"
    songs.mkdir()
    calls: list = []
    asyncio.run(watch(songs, state, calls, 0.1))  # first start: the library, all old
    shutil.copytree(library["short"], songs / "new song")
    if sys.platform != "win32":
        shutil.copytree(library["short"], songs / "a\\b")  # legal here, unnamable on the wire
    with caplog.at_level(logging.WARNING, logger="companion.watcher"):
        asyncio.run(watch(songs, state, calls, 2.0))
    assert [name for name, _ in calls] == ["new song"]
    if sys.platform != "win32":
        assert "a backslash" in caplog.text
    # the daemon stopped with the job queued or cut short: the next start generates it again
    calls[0][1](False)
    asyncio.run(watch(songs, state, calls, 2.0))
    assert [name for name, _ in calls] == ["new song", "new song"]

    async def ended_then_touched():  # in flight, events in the folder change nothing
        def ready(path, audio_failed, ended):
            calls.append((path.name, ended))
            loop = asyncio.get_running_loop()
            loop.call_later(0.3, watcher.event, path.name, "inside")  # a file added in it
            loop.call_later(1.5, ended, True)
            return True

        watcher = SongsWatcher(songs, state, 0.2, OwnWrites(), lambda _p: None, ready)
        await watcher.start()
        await asyncio.sleep(2.5)
        await watcher.stop()

    asyncio.run(ended_then_touched())
    asyncio.run(watch(songs, state, calls, 1.0))
    assert [name for name, _ in calls] == ["new song"] * 3


def fake_generated(space: Workspace, change_audio: bool):
    """companion.tasks.generate_beatmap, standing in for the model: a copy of the song's map,
    after appending to its audio where `change_audio` (a copy still going on)."""
    folder = space.songs.root / "song"

    def generate(generator, source, target, options, **kwargs):
        if change_audio:
            with open(source.audio, "ab") as f:
                f.write(b"\0" * 1000)
        beatmap = parse_file(next(folder.glob("*.osu"))).beatmap
        beatmap.metadata["Version"] = "kiai 3.0"
        return Generated(beatmap, 3.0, 1, "map")

    return generate


def test_audio_that_changed_while_mapped_is_an_audio_error_and_nothing_is_written(
        space, monkeypatch):
    monkeypatch.setattr(tasks, "generate_beatmap", fake_generated(space, True))
    folder = space.songs.root / "song"
    before = tree(folder)
    with pytest.raises(AudioError) as e:
        tasks.generate_work(space, folder, Target(3.0), DecodingOptions())(Context())
    assert "changed while it was being mapped" in e.value.message
    assert set(tree(folder)) == set(before)


def test_a_full_disk_names_the_folder(space, monkeypatch):
    monkeypatch.setattr(tasks, "generate_beatmap", fake_generated(space, False))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tasks, "write_new_difficulty", full)
    folder = space.songs.root / "song"
    with pytest.raises(WriteError) as e:
        tasks.generate_work(space, folder, Target(3.0), DecodingOptions())(Context())
    assert e.value.message == f"cannot write in 'song': {os.strerror(errno.ENOSPC)}"
    assert e.value.to_json()["code"] == ErrorCode.WRITE_ERROR == -32013
    assert e.value.data == {"path": "song"}


def test_writes_without_hard_links_still_never_replace_a_file(tmp_path, monkeypatch):
    def no_links(*args, **kwargs):  # FAT, exFAT, some network shares
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "map.osu"
    write_file_atomic(path, b"first")
    assert path.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.osu"]  # no temp file left
    late = tmp_path / ".late.tmp"  # a name taken between the check and the move
    late.write_bytes(b"second")
    with pytest.raises(FileExistsError):
        move_new(late, path)
    assert path.read_bytes() == b"first"


def test_a_wrong_kind_of_path_says_what_it_is(space, tmp_path):
    songs = space.songs
    map_name = next((songs.root / "song").glob("*.osu")).name
    cases = [(songs.file, "song", "'song' is a folder, not a file"),
             (songs.folder, f"song/{map_name}", f"'song/{map_name}' is a file, not a song folder"),
             (songs.file, "song/none.osu", "'song/none.osu' does not exist")]
    for look, name, message in cases:
        with pytest.raises(MissingFileError) as e:
            look(name)
        assert e.value.message == message
    with pytest.raises(MissingFileError) as e:
        songs.file("song/" + "x" * 300 + ".osu")
    assert "too long" in e.value.message
    # a path outside Songs found in a map is named by its file name: no absolute path is sent
    with pytest.raises(PathOutsideSongsError) as e:
        songs.contain(tmp_path / "elsewhere" / "audio.ogg")
    assert e.value.data == {"path": "audio.ogg"}


def test_every_end_of_a_job_is_told_queued_or_running_and_what_it_leaves_handled():
    async def main():
        ends: dict[str, tuple] = {}
        release = threading.Event()

        def slow(context):
            release.wait(10)
            return Outcome("song/x.osu", 1, 1.0)

        def bad_audio(context):
            raise AudioError("song/audio.mp3: truncated")

        def until_stopped(context):
            while not context.should_stop():
                threading.Event().wait(0.01)
            raise JobCancelled()

        queue = JobQueue(8, lambda: object(), lambda _n: None)
        submitted = {name: queue.submit("map.generate", work,
                                        on_end=lambda *end, name=name: ends.update({name: end}))
                     for name, work in [("finished", slow), ("audio", bad_audio),
                                        ("client", slow), ("running", until_stopped),
                                        ("shutdown", slow)]}
        queue.cancel(submitted["client"].id)  # still queued behind the first
        release.set()
        while submitted["running"].state != "running":
            await asyncio.sleep(0.01)
        await queue.close()  # the running one stopped, the last (queued) cancelled
        return ends

    ends = asyncio.run(main())
    assert ends["finished"] == ("finished", False)
    assert ends["client"] == ("cancelled", False)
    assert ends["running"] == ends["shutdown"] == ("cancelled", True)
    names = ("finished", "audio", "client", "running", "shutdown")
    assert [handled_after(*ends[n]) for n in names] == \
        [True, True, True, False, False]


def test_a_folder_without_usable_audio_is_named_relative_to_songs(space):
    folder = space.songs.root / "song"
    for audio in folder.glob("*.ogg"):
        audio.unlink()
    with pytest.raises(AudioError) as e:
        tasks.generate_work(space, folder, Target(3.0), DecodingOptions())(Context())
    assert e.value.message.startswith("song: ") and str(space.songs.root) not in e.value.message


@POSIX
def test_a_dangling_link_is_refused_as_an_existing_file(tmp_path):
    (tmp_path / "out.osu").symlink_to(tmp_path / "nowhere.osu")
    with pytest.raises(FileExistsError) as e:
        write_file_atomic(tmp_path / "out.osu", b"map")
    assert str(e.value) == f"{tmp_path / 'out.osu'}: already exists; refusing to overwrite"
    assert not (tmp_path / "nowhere.osu").exists()


def test_a_deleted_folder_and_a_copy_going_on_are_not_left_handled_but_broken_audio_is(
        tmp_path, library):
    songs, state = tmp_path / "Songs", tmp_path / "state.json"
    songs.mkdir()
    asyncio.run(watch(songs, state, [], 0.1))  # first start: nothing there
    for name in ("gone", "copying", "broken"):
        shutil.copytree(library["short"], songs / name)

    async def main():
        calls = {}

        def ready(path, audio_failed, ended):
            calls[path.name] = (audio_failed, ended)
            return True

        watcher = SongsWatcher(songs, state, 0.2, OwnWrites(), lambda _p: None, ready)
        await watcher.start()
        while len(calls) < 3:
            await asyncio.sleep(0.05)
        shutil.rmtree(songs / "gone")  # deleted while its job ran (a set to download again)
        calls["gone"][1](True)
        for name in ("copying", "broken"):  # both failed on their audio
            calls[name][0]()
            calls[name][1](True)
        await asyncio.sleep(0.3)
        with open(songs / "copying" / "audio.ogg", "ab") as f:  # ... and one copy goes on
            f.write(b"\0" * 1000)
        await asyncio.sleep(0.05)
        await watcher.stop()  # before that copy settles
        return watcher.state.names

    assert asyncio.run(main()) == {"broken"}  # not tried again at every start
