"""Paths and writes: the user's files are sacred (DESIGN §10).

- Every path a client names is resolved, symlinks included, and must land inside the Songs
  folder; otherwise PATH_OUTSIDE_SONGS, and nothing is read or written. Paths found *inside* a
  file the client named (a beatmap's AudioFilename) are held to the same rule.
- A new difficulty is `Artist - Title (Creator) [Version].osu` with the Version unique in its
  folder and safe for Windows (core.beatmap.naming); it is created exclusively, never replacing
  a file that appeared meanwhile.
- An in-place write needs the MD5 the client saw. The file is checked against it, backed up to
  `<name>.<YYYYmmdd-HHMMSS>.bak` beside it (exclusively: a backup never replaces anything), and
  checked again right before a temp file is renamed over it. The backup sits beside the map,
  not in the config folder, so that job.finished can name it relative to Songs like every other
  path, and so that it travels with the song folder; osu! ignores files that are not .osu.
- Every write is a temp file in the same folder (hidden: `.name.*.tmp`), fsync, then a rename or
  link. Everything the daemon writes is recorded in OwnWrites so that the watcher ignores it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from core.beatmap.model import Beatmap
from core.beatmap.naming import difficulty_filename, unique_version
from core.beatmap.writer import move_new, write_text
from protocol import (
    FileChangedError,
    InvalidParamsError,
    MissingFileError,
    PathOutsideSongsError,
)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # osu!'s own beatmap checksum: not for security


class SongsFolder:
    """The Songs folder, resolved once; the gate every client-named path goes through."""

    def __init__(self, songs: Path) -> None:
        try:
            self.root = songs.resolve(strict=True)
        except OSError as e:
            raise FileNotFoundError(f"the Songs folder {songs} does not exist") from e
        if not self.root.is_dir():
            raise NotADirectoryError(f"the Songs folder {songs} is not a folder")

    def file(self, relative: str) -> Path:
        """The real path of an existing file named relative to Songs."""
        path = self._resolve(relative)
        if not path.is_file():
            raise MissingFileError(relative, "is a folder, not a file" if path.is_dir()
                                   else "is not a regular file")
        return path

    def folder(self, relative: str) -> Path:
        """The real path of an existing song folder (not Songs itself) named relative to it."""
        path = self._resolve(relative)
        if not path.is_dir():
            raise MissingFileError(relative, "is a file, not a song folder" if path.is_file()
                                   else "is not a folder")
        if path == self.root:
            raise InvalidParamsError("expected a song folder inside Songs, not Songs itself")
        return path

    def contain(self, path: Path) -> Path:
        """The real path of `path` (found inside a file the client named), if inside Songs."""
        try:
            return self._resolve(str(path.relative_to(self.root)))
        except ValueError:  # named by its file name only: no absolute path goes on the wire
            raise PathOutsideSongsError(path.name) from None

    def check_links(self, folder: Path) -> None:
        """PathOutsideSongsError if a symlink directly in `folder` leads outside Songs."""
        for entry in folder.iterdir():
            if not entry.is_symlink():
                continue
            try:
                target = entry.resolve()
            except (OSError, RuntimeError):  # a loop (RuntimeError before Python 3.13) leads
                continue  # nowhere: reading it fails like a missing file
            if not target.is_relative_to(self.root):
                raise PathOutsideSongsError(self.relative(entry))

    def relative(self, path: Path) -> str:
        """`path` (inside Songs) as the wire names it: relative, with forward slashes."""
        return path.relative_to(self.root).as_posix()

    def _resolve(self, relative: str) -> Path:
        # osu!'s names never hold a backslash (Windows forbids it): it is a separator from a
        # Windows client, also on a POSIX daemon.
        candidate = self.root / relative.replace("\\", "/")
        # Containment first, without requiring existence, so that a missing file outside Songs
        # answers PATH_OUTSIDE_SONGS rather than revealing whether it exists.
        try:
            outside = not candidate.resolve().is_relative_to(self.root)
        except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
            raise MissingFileError(relative) from None
        if outside:
            raise PathOutsideSongsError(relative)
        try:
            real = candidate.resolve(strict=True)
        except OSError as e:  # missing, unreadable, a name too long
            why = e.strerror.lower() if e.errno == errno.ENAMETOOLONG and e.strerror else None
            raise MissingFileError(relative, *([why] if why else [])) from None
        except RuntimeError:  # a symlink loop (before Python 3.13)
            raise MissingFileError(relative) from None
        if not real.is_relative_to(self.root):  # a link changed since the first resolve
            raise PathOutsideSongsError(relative)
        return real


class OwnWrites:
    """Paths the daemon wrote recently (thread-safe): the watcher ignores events on them."""

    def __init__(self, memory_s: float = 60.0) -> None:
        self._memory_s = memory_s
        self._paths: dict[Path, float] = {}
        self._lock = threading.Lock()

    def add(self, path: Path) -> None:
        with self._lock:
            now = time.monotonic()
            self._paths = {p: t for p, t in self._paths.items() if now - t < self._memory_s}
            self._paths[path] = now

    def __contains__(self, path: object) -> bool:
        with self._lock:
            written = self._paths.get(path)  # type: ignore[call-overload]
            return written is not None and time.monotonic() - written < self._memory_s


def write_new_difficulty(beatmap: Beatmap, folder: Path, version: str,
                         own: OwnWrites | None = None) -> Path:
    """Save `beatmap` as a new difficulty in `folder`, its Version `version` made unique."""
    data = b""
    for _ in range(100):
        unique_version(folder, beatmap, version)
        path = folder / difficulty_filename(beatmap)
        data = write_text(beatmap).encode("utf-8")
        if own is not None:
            own.add(path)
        try:
            _write_exclusive(path, data)
        except FileExistsError:  # created by someone else since unique_version looked
            continue
        return path
    raise FileExistsError(f"{folder}: no free difficulty name based on {version!r}")


def check_md5(path: Path, expected_md5: str, relative: str) -> bytes:
    """The file's bytes, if their MD5 is `expected_md5`; else FileChangedError."""
    data = path.read_bytes()
    actual = md5_hex(data)
    if actual != expected_md5.lower():
        raise FileChangedError(relative, expected_md5, actual)
    return data


def write_in_place(beatmap: Beatmap, path: Path, expected_md5: str, relative: str,
                   own: OwnWrites | None = None, now: datetime | None = None) -> Path:
    """Replace the map at `path` with `beatmap` after backing it up; the backup's path.

    FileChangedError (and nothing written) unless the file's MD5 is `expected_md5`, checked
    before the backup and again right before the rename.
    """
    original = check_md5(path, expected_md5, relative)
    backup = _backup(path, original, now or datetime.now(), own)
    if own is not None:
        own.add(path)

    def unchanged() -> None:
        try:
            check_md5(path, expected_md5, relative)
        except FileChangedError:
            backup.unlink(missing_ok=True)  # nothing is written when the write is refused
            raise

    _replace(path, write_text(beatmap).encode("utf-8"), unchanged)
    return backup


def backup_path(path: Path, now: datetime, n: int = 1) -> Path:
    stamp = now.strftime("%Y%m%d-%H%M%S")
    suffix = "" if n == 1 else f"-{n}"
    return path.with_name(f"{path.name}.{stamp}{suffix}.bak")


def _backup(path: Path, original: bytes, now: datetime, own: OwnWrites | None) -> Path:
    for n in range(1, 1000):
        backup = backup_path(path, now, n)
        if own is not None:
            own.add(backup)
        try:
            _write_exclusive(backup, original, mode=path.stat().st_mode & 0o777)
        except FileExistsError:
            continue
        return backup
    raise FileExistsError(f"{path}: too many backups at {now:%Y%m%d-%H%M%S}")


def _temp_file(path: Path, data: bytes, mode: int) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        os.chmod(tmp, mode)  # mkstemp's 0600 would follow the file into Songs
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _write_exclusive(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create `path` with `data` atomically; FileExistsError if it exists (move_new)."""
    tmp = _temp_file(path, data, mode)
    try:
        move_new(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _replace(path: Path, data: bytes, check: Callable[[], None]) -> None:
    """Rename a temp file holding `data` over `path`, after `check()` passes."""
    tmp = _temp_file(path, data, path.stat().st_mode & 0o777)
    try:
        check()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
