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
    sets a search of `roots` just gave); returns their source paths, as recorded.

    A root where the search found no set at all is left alone: an unmounted drive or a sync
    not yet done is no reason to empty a data set (QA). A record is placed by the absolute
    path it was built from (a record without one, from an older build, is left alone: its
    path as typed depended on the folder the build ran in), through symbolic links or not."""
    found = list(found)
    searched = [root for root in roots
                if any(_under(os.path.abspath(s.path), root) for s in found)]
    keep = {song_key(song_set) for song_set in found}
    dropped = []
    for path in sorted((Path(out) / INDEX_DIR).glob("*.json")):
        if path.stem in keep:
            continue
        try:
            record = read_json(path)
        except (OSError, DatasetError):
            continue  # not a record this build can vouch for: left as it is
        absolute = record.get("absolute")
        if not isinstance(absolute, str) or not any(_under(absolute, r) for r in searched):
            continue
        try:
            path.unlink()
            if record.get("shard"):
                (Path(out) / record["shard"]).unlink(missing_ok=True)
        except OSError as e:
            raise DatasetError(f"{path}: cannot be removed ({e.strerror or e})") from e
        dropped.append(str(record.get("source")))
    return dropped


def _under(path: str, root: Path) -> bool:
    """Whether `path` (absolute) lies under `root`, as written or with links resolved (a set
    reached through a link in Songs, or Songs itself reached through one)."""
    return (Path(path).is_relative_to(os.path.abspath(root))
            or Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root)))
