"""Records of song sets that left their Songs folder, dropped from a data set.

A data set (core.dataset) is keyed by each set's absolute path, and a rerun only adds: a song
folder renamed, moved or deleted kept its old record beside the new one, so a renamed song was
trained twice (QA round 9: 1460 -> 1480 windows after one rename). A rebuild of a Songs folder
now mirrors it: a record whose set lies under a folder just searched, which that search did
not find, and which is provably gone or unusable (`drop_gone`), is removed (its record first,
so a build killed halfway leaves no record without its shard). Records of sets elsewhere
(another Songs folder, built another day) stay. Feature files are a cache by content and stay
too: the same song elsewhere reuses them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from core.dataset import INDEX_DIR, SHARD_DIR, DatasetError, read_json, song_key
from core.songs import (
    MISSING_AUDIO,
    NO_BEATMAPS,
    OTHER_MODE,
    TOO_LARGE,
    UNPARSABLE,
    SongSet,
)

# skips of a set the search read and found nothing usable in (not UNREADABLE: a folder that
# cannot be listed now may hold its sets still)
EXAMINED = {NO_BEATMAPS, UNPARSABLE, OTHER_MODE, MISSING_AUDIO, TOO_LARGE}


def drop_gone(out: Path, roots: Iterable[Path], found: Iterable[SongSet],
              skipped: Iterable[tuple[str, str, str]] = ()) -> list[str]:
    """Remove from the data set in `out` the sets under `roots` that are not in `found` (the
    sets a search of `roots` just gave) and are provably gone: their path no longer exists
    while the folder that held it does (renamed, moved, deleted), or the search read them and
    found nothing usable (`skipped`: discovery's skips, reason, path, detail). Returns the
    dropped sets' source paths, as recorded.

    Anything the search could not vouch for stays (the review of session 33): a root where it
    found no set (an unmounted drive), a set under a folder it could not read or past the
    depth it searches, a set behind a link whose target is gone (a drive reached through a
    link). A record is placed by the absolute path it was built from; one from an older build
    without it, by its source where that is absolute."""
    found = list(found)
    searched = [root for root in roots
                if any(_under(os.path.abspath(s.path), root) for s in found)]
    keep = {song_key(song_set) for song_set in found}
    unusable = {os.path.abspath(where.split("::")[0]) for reason, where, _ in skipped
                if reason in EXAMINED}
    unusable |= {os.path.dirname(path) for path in unusable}  # a folder set's maps' folder
    dropped = []
    for path in sorted((Path(out) / INDEX_DIR).glob("*.json")):
        if path.stem in keep:
            continue
        try:
            record = read_json(path)
        except (OSError, DatasetError):
            continue  # not a record this build can vouch for: left as it is
        source = str(record.get("source", ""))
        absolute = record.get("absolute") or (source if os.path.isabs(source) else None)
        if not isinstance(absolute, str) or not any(_under(absolute, r) for r in searched):
            continue
        gone = not os.path.lexists(absolute) and os.path.isdir(os.path.dirname(absolute))
        if not gone and absolute not in unusable:
            continue
        shard = record.get("shard")
        try:
            path.unlink()
            if shard == f"{SHARD_DIR}/{path.stem}.safetensors":  # never a path a record names
                (Path(out) / shard).unlink(missing_ok=True)
        except OSError as e:
            raise DatasetError(f"{path}: cannot be removed ({e.strerror or e})") from e
        dropped.append(source)
    return dropped


def _under(path: str, root: Path) -> bool:
    """Whether `path` (absolute) lies under `root`, as written or with links resolved (a set
    reached through a link in Songs, or Songs itself reached through one)."""
    return (Path(path).is_relative_to(os.path.abspath(root))
            or Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root)))
