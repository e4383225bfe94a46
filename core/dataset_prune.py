"""Records of song sets that left their Songs folder, dropped from a data set.

A data set (core.dataset) is keyed by each set's absolute path, and a rerun only adds: a song
folder renamed, moved or deleted kept its old record beside the new one, so a renamed song was
trained twice (QA round 9: 1460 -> 1480 windows after one rename). A rebuild of a Songs folder
now mirrors it: a record whose set lies under a folder just searched, and which that search did
not find, is removed (its record first, so a build killed halfway leaves no record without its
shard). Records of sets elsewhere (another Songs folder, built another day) stay. Feature
files are a cache by content and stay too: the same song elsewhere reuses them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from core.dataset import INDEX_DIR, DatasetError, read_json, song_key
from core.songs import SongSet


def drop_gone(out: Path, roots: Iterable[Path], found: Iterable[SongSet]) -> list[str]:
    """Remove from the data set in `out` the sets under `roots` that are not in `found` (the
    sets a search of `roots` just gave); returns their source paths, as recorded."""
    roots = [Path(os.path.realpath(root)) for root in roots]
    keep = {song_key(song_set) for song_set in found}
    dropped = []
    for path in sorted((Path(out) / INDEX_DIR).glob("*.json")):
        if path.stem in keep:
            continue
        try:
            record = read_json(path)
        except (OSError, DatasetError):
            continue  # not a record this build can vouch for: left as it is
        source = Path(os.path.realpath(record.get("source", "")))
        if not any(source.is_relative_to(root) for root in roots):
            continue
        try:
            path.unlink()
            if record.get("shard"):
                (Path(out) / record["shard"]).unlink(missing_ok=True)
        except OSError as e:
            raise DatasetError(f"{path}: cannot be removed ({e.strerror or e})") from e
        dropped.append(str(record.get("source")))
    return dropped
