"""New song folders in Songs: detected once, generated for once (DESIGN §1, auto-generation).

A watchdog observer watches the Songs folder itself (not recursively: a library holds thousands
of folders) and, while a new folder is pending, that folder too. Its thread hands each event to
the event loop with `call_soon_threadsafe`. A new folder is ready when:

1. no event has touched it for `settle_s` seconds (a trailing-edge debounce: every event
   inside it or on it restarts the wait);
2. its files' names, sizes and mtimes are unchanged across two polls `poll_s` apart (a copy in
   progress changes them even when the platform reports nothing);
3. it holds an audio file (an empty folder waits, without polling, for its next event).

Then `on_detected(folder)` (songs.detected) and `on_ready(folder, audio_failed, ended)` (queue
one generation; False when the queue is full, and the watcher tries again later) run once. When
the job ends it calls `ended(record)` (on the loop's thread), and the folder's name is recorded
in `<config dir>/state.json` (written atomically), so a restart generates nothing it already
did; a job the daemon's stopping cut short, or one still queued then, is not recorded, and the
next start generates it, nor is a folder deleted meanwhile (a set downloaded again gets the
same name). Until then the folder is in flight: events in it change nothing, and renamed, its
new name is a new song (the job, writing to the old name, fails). A copy that stalls for longer
than `settle_s` looks finished; its job then fails on the truncated audio (or on audio that
changed while it was mapped) and calls `audio_failed`, and the watcher watches the folder
again: the copy going on makes it pending once more, and where the daemon stops with such a
folder changed since it failed, its record is dropped, so the next start maps the whole song.
A copy that stalls for longer than its generation, of an mp3 that does not say its length (no
Xing header), is mapped as far as it got.

On the first start with a Songs folder, every folder already there is recorded as handled: kiai
never generates for a whole existing library. A handled folder renamed within Songs stays
handled under its new name. Folders that appear while the daemon is stopped are picked up at
the next start. A folder that makes the watcher fail is logged and skipped, never the watching.

Ignored: hidden names (`.tmp-*` staging, extraction temp folders), symlinks, files, names the
protocol cannot carry (a backslash, which clients send as a separator, or bytes that are not
UTF-8; logged once), the daemon's own writes (OwnWrites) and `.osz` archives: osu! stable
imports every .osz in Songs itself, extracting it into a folder and deleting the archive.
Extracting it here too would race that importer (a duplicate set, or one merged with ours
half-way); the folder osu! creates is what triggers the generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from companion.safety import OwnWrites
from core.song_input import AUDIO_SUFFIXES

log = logging.getLogger(__name__)

STATE_VERSION = 1
MAX_SNAPSHOT_FILES = 5000  # a song folder with more is still compared on these
Snapshot = tuple[tuple[str, int, int], ...]  # (relative path, size, mtime ns), sorted


@dataclass
class _Pending:
    path: Path
    deadline: float | None  # loop time of the next poll; None: wait for an event
    snapshot: Snapshot | None = None
    detected: bool = False
    watch: ObservedWatch | None = None
    failed: Snapshot | None = None  # re-armed: the folder as its job failed on the audio


class SongsWatcher:
    def __init__(self, songs: Path, state_path: Path, settle_s: float, own: OwnWrites,
                 on_detected: Callable[[Path], None],
                 on_ready: Callable[[Path, Callable[[], None], Callable[[bool], None]], bool]
                 ) -> None:
        self.songs = songs
        self.state = HandledState(state_path, songs)
        self.settle_s = settle_s
        self.poll_s = max(0.2, settle_s / 2)
        self.own = own
        self.on_detected, self.on_ready = on_detected, on_ready
        self._pending: dict[str, _Pending] = {}
        self._wake = asyncio.Event()
        self._observer = Observer()
        self._handler = _Bridge(self)
        self.loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._rearms: set[asyncio.Future[None]] = set()
        self._in_flight: set[str] = set()  # queued or generating: recorded when the job ends
        self._unnamable: set[str] = set()  # names already logged as unusable

    async def start(self) -> None:
        self._observer.schedule(self._handler, str(self.songs), recursive=False)
        self._observer.start()
        existing = {p.name for p in self.songs.iterdir() if self._candidate(p)}
        if self.state.load() is None:  # first start on this Songs folder: all of it is old
            self.state.record(existing)
        else:
            for name in sorted(existing - self.state.names):  # appeared while stopped
                self._touch(name)
        self._task = asyncio.create_task(self._run(), name="kiai-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:  # _run guards each folder; whatever still got out is logged
                log.exception("the watcher had stopped")
        for rearm in list(self._rearms):
            rearm.cancel()
        for name, pending in list(self._pending.items()):  # a copy going on after its job
            # failed: mapped at the next start, not left half-copied and handled
            if pending.failed is not None and name in self.state.names and \
                    await asyncio.to_thread(_snapshot, pending.path) != pending.failed:
                self.state.discard(name)
        self._observer.stop()
        await asyncio.to_thread(self._observer.join, 5.0)

    # Events, on the loop's thread

    def event(self, name: str, kind: str) -> None:
        if kind == "deleted":
            if not (self.songs / name).exists():
                self._forget(name)
                self.state.discard(name)
            return
        self._touch(name)

    def renamed(self, old: str, new: str) -> None:
        """A folder moved from `old` to `new`, both in Songs: a handled one stays handled (a
        mapper tidying the library's names is not a new song)."""
        self._forget(old)
        if old in self.state.names:
            self.state.rename(old, new)
        else:
            self._touch(new)

    def _touch(self, name: str) -> None:
        path = self.songs / name
        pending = self._pending.get(name)
        if pending is None:
            if (name in self.state.names or name in self._in_flight or not self._candidate(path)
                    or path in self.own or not self._nameable(name)):
                return
            pending = _Pending(path, None)
            self._pending[name] = pending
            with contextlib.suppress(OSError):  # watch inside it until it is handled
                pending.watch = self._observer.schedule(self._handler, str(path))
        pending.deadline = self.loop.time() + self.settle_s
        pending.snapshot = None
        self._wake.set()

    def _candidate(self, path: Path) -> bool:
        return (not path.name.startswith(".") and not path.is_symlink() and path.is_dir())

    def _nameable(self, name: str) -> bool:
        """Whether the protocol can carry the folder's name (songs.detected, job paths)."""
        try:
            name.encode("utf-8")
            if "\\" not in name:
                return True
            why = "a backslash, which clients send as a folder separator"
        except UnicodeEncodeError:
            why = "bytes that are not UTF-8"
        if name not in self._unnamable:
            self._unnamable.add(name)
            log.warning("not generating for the song folder %a: its name has %s; rename it",
                        name, why)
        return False

    def _forget(self, name: str) -> None:
        pending = self._pending.pop(name, None)
        if pending is not None and pending.watch is not None:
            with contextlib.suppress(KeyError, OSError):
                self._observer.unschedule(pending.watch)

    # The debounce loop

    async def _run(self) -> None:
        while True:
            due = [p.deadline for p in self._pending.values() if p.deadline is not None]
            self._wake.clear()
            timeout = None if not due else max(0.0, min(due) - self.loop.time())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            now = self.loop.time()
            for name, pending in list(self._pending.items()):
                if pending.deadline is not None and pending.deadline <= now:
                    try:
                        await self._poll(name, pending)
                    except Exception:  # one odd folder must not stop the watching of all
                        log.exception("skipping the new song folder %s", name)
                        self._forget(name)
                        self.state.add(name)

    async def _poll(self, name: str, pending: _Pending) -> None:
        snapshot = await asyncio.to_thread(_snapshot, pending.path)
        if self._pending.get(name) is not pending:  # deleted or touched meanwhile
            return
        if snapshot is None:
            self._forget(name)
        elif snapshot != pending.snapshot:  # still changing (or the first poll)
            pending.snapshot = snapshot
            pending.deadline = self.loop.time() + self.poll_s
        elif not any(Path(f).suffix.lower() in AUDIO_SUFFIXES and "/" not in f
                     for f, _, _ in snapshot):
            pending.deadline = None  # no audio yet: wait for the next event
        else:
            self._ready(name, pending)

    def _ready(self, name: str, pending: _Pending) -> None:
        if not pending.detected:
            pending.detected = True
            log.info("new song folder: %s", name)
            self.on_detected(pending.path)
        snapshot = pending.snapshot

        def audio_failed() -> None:  # the job's thread: a truncated copy, perhaps
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self.loop.call_soon_threadsafe(self._start_rearm, name, snapshot)

        def ended(record: bool) -> None:  # on the loop's thread (JobQueue), or at once
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self.loop.call_soon_threadsafe(self._ended, name, record)

        if not self.on_ready(pending.path, audio_failed, ended):  # the queue is full: later
            pending.deadline = self.loop.time() + self.settle_s
            return
        self._forget(name)
        self._in_flight.add(name)

    def _ended(self, name: str, record: bool) -> None:
        self._in_flight.discard(name)
        if record and (self.songs / name).is_dir():  # not a folder deleted meanwhile
            self.state.add(name)
        elif not record:  # a second try the stop cut short, of one handled when it failed
            self.state.discard(name)

    def _start_rearm(self, name: str, snapshot: Snapshot | None) -> None:
        task = asyncio.ensure_future(self._rearm(name, snapshot))
        self._rearms.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._rearms.discard)

    async def _rearm(self, name: str, snapshot: Snapshot | None) -> None:
        """Watch a handled folder whose generation failed on its audio again: pending (without
        polling) until an event inside it, or at once if it changed since it looked ready."""
        path = self.songs / name
        if name in self._pending or not self._candidate(path):
            return
        # songs.detected was sent already
        pending = _Pending(path, None, detected=True, failed=snapshot)
        self._pending[name] = pending
        with contextlib.suppress(OSError):
            pending.watch = self._observer.schedule(self._handler, str(path))
        if await asyncio.to_thread(_snapshot, path) != snapshot:
            log.info("%s changed after it looked copied: generating again once it settles",
                     name)
            self._touch(name)


class _Bridge(FileSystemEventHandler):
    """watchdog's thread -> the loop: the top-level name each event is about."""

    def __init__(self, watcher: SongsWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):  # reads change nothing
            return
        paths = [event.src_path, getattr(event, "dest_path", "") or ""]
        if event.event_type == "moved" and all(
                Path(os.fsdecode(raw)).parent == self.watcher.songs for raw in paths):
            old, new = (Path(os.fsdecode(raw)).name for raw in paths)
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self.watcher.loop.call_soon_threadsafe(self.watcher.renamed, old, new)
            return
        for raw in paths:
            if not raw:
                continue
            path = Path(os.fsdecode(raw))
            if path in self.watcher.own:
                continue
            if path.parent == self.watcher.songs:
                name, kind = path.name, event.event_type
                if raw == event.src_path and kind == "moved":
                    kind = "deleted"  # moved away from this name
            elif path.parent.parent == self.watcher.songs:
                name, kind = path.parent.name, "inside"
            else:
                continue
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self.watcher.loop.call_soon_threadsafe(self.watcher.event, name, kind)


def _snapshot(folder: Path) -> Snapshot | None:
    """Names, sizes and mtimes of the files under `folder`; None if it is gone."""
    entries = []
    try:
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for file in files:
                path = Path(root, file)
                with contextlib.suppress(OSError):
                    stat = path.lstat()
                    entries.append((path.relative_to(folder).as_posix(), stat.st_size,
                                    stat.st_mtime_ns))
                if len(entries) >= MAX_SNAPSHOT_FILES:
                    break
    except OSError:
        return None
    if not folder.is_dir():
        return None
    return tuple(sorted(entries))


class HandledState:
    """The song folders already handled, per Songs folder, in `state.json`."""

    def __init__(self, path: Path, songs: Path) -> None:
        self.path, self.key = path, str(songs)
        self.names: set[str] = set()
        self._document: dict = {"version": STATE_VERSION, "songs": {}}

    def load(self) -> set[str] | None:
        """The handled names, or None when this Songs folder has no record yet."""
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            entry = document["songs"].get(self.key)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            log.warning("%s: unreadable (%s); treating every current folder as handled",
                        self.path, e)
            return None
        self._document = document
        if not isinstance(entry, dict) or not isinstance(entry.get("handled"), list):
            return None
        self.names = {n for n in entry["handled"] if isinstance(n, str)}
        return self.names

    def record(self, names: set[str]) -> None:
        self.names = set(names)
        self._save()

    def add(self, name: str) -> None:
        self.names.add(name)
        self._save()

    def rename(self, old: str, new: str) -> None:
        self.names.discard(old)
        self.names.add(new)
        self._save()

    def discard(self, name: str) -> None:
        if name in self.names:
            self.names.discard(name)
            self._save()

    def _save(self) -> None:
        """Write the record; where it cannot be written (a full disk, a read-only config
        folder) say so and go on: `names` still holds it for this run."""
        self._document.setdefault("songs", {})[self.key] = {
            "handled": sorted(self.names), "updated": time.time()}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=self.path.parent)
        except OSError as e:
            log.warning("%s: cannot record the handled song folders (%s)", self.path, e)
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._document, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            log.warning("%s: cannot record the handled song folders (%s)", self.path, e)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
