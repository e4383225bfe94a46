"""Log-mel features cached on disk, keyed by the audio file's content, for building data sets.

An entry is `<sha256 of the encoded audio>-<audio.FEATURES_ID>.npy`: the same song under two
names (copied between beatmap sets, or read out of different .osz archives) is computed once, and
a change to the feature parameters changes every key, so stale entries are never read.

Entries are float16 .npy files (never pickles: np.load runs with allow_pickle=False). The features
lie in [-1, 1], where float16's spacing is at most 2**-11, so an entry is off by at most 2**-12 =
0.00024, i.e. 0.01 dB of the 80 dB range — and half the size of float32 (5.8 MB for a 3-minute
song). Both hits and misses return the float16-rounded values, so a result never depends on
whether it was cached.

A write goes to a temporary file in the cache folder, then os.replace renames it into place
(atomic on one filesystem): readers see a whole entry or none, and a failed write removes its
temporary file. Without an fsync a crash can still leave a damaged entry; an entry that cannot be
read, or reads as the wrong shape or values, is recomputed and rewritten, never fatal.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from core.audio import FEATURES_ID, N_MELS, AudioError, load_audio_bytes, log_mel

log = logging.getLogger(__name__)

HASH_BLOCK = 1 << 20  # bytes read at a time while hashing a file: a song never sits in memory twice


class FeatureCache:
    """A folder of cached features; `hits` and `misses` count this object's lookups."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def features(self, source: str | os.PathLike | bytes, name: str | None = None) -> torch.Tensor:
        """log_mel features of an audio file, or of an encoded file's bytes: (N_MELS, frames).

        `name` labels errors (default: the path; required for bytes). Raises AudioError, as
        core.audio does, for audio that cannot be decoded; nothing is cached for it.
        """
        if isinstance(source, bytes):
            if name is None:
                raise ValueError("name is required when the audio is given as bytes")
            key = hashlib.sha256(source).hexdigest()
        else:
            name = name or str(source)
            key = _file_sha256(Path(source), name)
        entry = self.path_of(key)
        cached = self._read(entry)
        if cached is not None:
            self.hits += 1
            return torch.from_numpy(cached.astype(np.float32))
        self.misses += 1
        data = source if isinstance(source, bytes) else _read_bytes(Path(source), name)
        stored = log_mel(load_audio_bytes(data, name)).numpy().astype(np.float16)
        self._write(entry, stored)
        return torch.from_numpy(stored.astype(np.float32))

    def path_of(self, key: str) -> Path:
        """Where the entry for a content hash (hex sha256) lives."""
        return self.directory / f"{key}-{FEATURES_ID}.npy"

    def _read(self, entry: Path) -> np.ndarray | None:
        """The entry's float16 features, or None when it is absent or unusable."""
        try:
            stored = np.load(entry, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as e:
            log.warning("feature cache entry %s is unreadable (%s): recomputing", entry, e)
            return None
        if (stored.dtype != np.float16 or stored.ndim != 2 or stored.shape[0] != N_MELS
                or stored.shape[1] == 0 or not np.all(np.abs(stored) <= 1.0)):
            # np.abs(nan) <= 1 is False, so this also rejects non-finite values.
            log.warning("feature cache entry %s holds %s %s, not (%d, frames) float16 in [-1, 1]: "
                        "recomputing", entry, stored.dtype, stored.shape, N_MELS)
            return None
        return stored

    def _write(self, entry: Path, stored: np.ndarray) -> None:
        """Write an entry atomically; a failure is logged (the cache is only an optimisation)."""
        temporary = None
        try:
            with tempfile.NamedTemporaryFile(dir=self.directory, prefix=".tmp-", suffix=".npy",
                                             delete=False) as f:
                temporary = Path(f.name)
                np.save(f, stored, allow_pickle=False)
            os.replace(temporary, entry)
            temporary = None
        except OSError as e:
            log.warning("could not write feature cache entry %s: %s", entry, e)
        finally:  # on any failure, interrupts included
            if temporary is not None:
                temporary.unlink(missing_ok=True)


def _file_sha256(path: Path, name: str) -> str:
    """sha256 of a file's bytes, read HASH_BLOCK at a time."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while block := f.read(HASH_BLOCK):
                digest.update(block)
    except FileNotFoundError as e:
        raise AudioError(name, "missing: no such file") from e
    except OSError as e:
        raise AudioError(name, f"cannot be read ({e.strerror or e})") from e
    return digest.hexdigest()


def _read_bytes(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise AudioError(name, f"cannot be read ({e.strerror or e})") from e
