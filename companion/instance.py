"""One daemon per config folder, and its token (DESIGN §10, Security).

    <config dir>/kiai.lock   held (flock / msvcrt) while a daemon runs; holds its pid and port
    <config dir>/token       a fresh random token on every start, readable by the user alone

The token is `secrets.token_urlsafe(32)` (256 bits), written to a new file created with mode 0600
(O_CREAT|O_EXCL) and renamed over the old one, so no other user can ever read it, not even for an
instant. On Windows the mode bits mean little; the config folder (%APPDATA%) is private to the user.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
from pathlib import Path

from protocol import TOKEN_FILE_NAME

LOCK_FILE_NAME = "kiai.lock"
# Windows locks byte ranges and refuses reads of a locked range: lock a byte past the info.
_WINDOWS_LOCK_OFFSET = 1 << 20


class AlreadyRunning(Exception):
    """Another daemon holds this config folder's lock; the message names its pid and port."""


def write_token(config_dir: Path) -> str:
    """A new token in `<config dir>/token` (mode 0600, replaced atomically); returns it."""
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    final = config_dir / TOKEN_FILE_NAME
    tmp = config_dir / f".{TOKEN_FILE_NAME}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return token


class InstanceLock:
    """The config folder's single-instance lock: `acquire()` or AlreadyRunning."""

    def __init__(self, config_dir: Path) -> None:
        self.path = config_dir / LOCK_FILE_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
            if not _try_lock(fd):
                info = _read_info(fd)
                os.close(fd)
                raise AlreadyRunning(_describe(self.path, info))
            # A daemon that was stopping may have unlinked the file between our open and lock:
            # then we hold a lock on a file nobody else will open. Start over on the new one.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                self.update(port=None)
                return
            os.close(fd)
        raise AlreadyRunning(f"{self.path}: could not take the lock (it keeps changing)")

    def update(self, port: int | None) -> None:
        """Record this process (and, once bound, its port) for a second instance's message."""
        if self._fd is None:
            raise RuntimeError("acquire() the lock first")
        data = json.dumps({"pid": os.getpid(), "port": port}).encode()
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, data)
        os.ftruncate(self._fd, len(data))

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # before unlocking: a waiting instance then re-opens (see acquire)
        _unlock(self._fd)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _describe(path: Path, info: dict) -> str:
    pid, port = info.get("pid"), info.get("port")
    where = f" on port {port}" if port else ""
    who = f"(pid {pid}{where})" if pid else "(pid unknown)"
    return (f"another kiai daemon is already running with this config folder {who}; "
            f"stop it first, or use another --config-dir. Lock: {path}")


def _read_info(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096) or b"{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
