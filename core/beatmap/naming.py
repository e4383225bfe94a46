"""osu!'s file name for a difficulty, made safe for Windows and unique in its folder.

osu! names a difficulty `Artist - Title (Creator) [Version].osu`. Names must survive Windows
(osu! stable's home): no `<>:"/\\|?*` or control characters, no trailing dot or space, no
reserved device names, and a length that leaves room in MAX_PATH.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.beatmap.model import Beatmap

_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
             *(f"LPT{i}" for i in range(1, 10))}
MAX_NAME = 180  # characters; Windows' MAX_PATH is 260 with the Songs folder in front
# UTF-8 bytes: Linux and macOS cap a name at 255 bytes, and a CJK character takes 3; the
# daemon's temp file (`.name.XXXXXXXX.tmp`) adds 14
MAX_NAME_BYTES = 230
MAX_CREATOR_BYTES = 40
MAX_VERSION_BYTES = 80


def sanitize(text: str) -> str:
    """`text` with characters Windows forbids in file names removed, trailing dots/spaces cut."""
    clean = _FORBIDDEN.sub("", text).strip().rstrip(". ")
    if clean.split(".")[0].upper() in _RESERVED:
        clean = f"_{clean}"
    return clean


def clip_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, at a character boundary, trailing dots and
    spaces cut (Windows drops them)."""
    if len(text.encode("utf-8")) <= limit:
        return text
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore").rstrip(". ")


def difficulty_filename(beatmap: Beatmap) -> str:
    """`Artist - Title (Creator) [Version].osu`, Artist - Title (then Creator) cut to fit
    MAX_NAME characters and MAX_NAME_BYTES bytes; Version is kept whole (unique_version keeps
    it short), as it is what tells difficulties apart."""
    m = beatmap.metadata
    artist = sanitize(m.get("Artist", "")) or "Unknown"
    title = sanitize(m.get("Title", "")) or "Unknown"
    creator = sanitize(m.get("Creator", "")) or "kiai"
    version = sanitize(m.get("Version", "")) or "kiai"
    song = f"{artist} - {title}"
    name = f"{song} ({creator}) [{version}].osu"
    if len(name) <= MAX_NAME and len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    creator = clip_bytes(creator, MAX_CREATOR_BYTES)
    tail = f" ({creator}) [{version}].osu"
    room = min(MAX_NAME - len(tail), MAX_NAME_BYTES - len(tail.encode("utf-8"))) - 3
    song = clip_bytes(song[:max(room, 8)], max(room, 8))
    return f"{song} ({creator}) [{version}].osu"


def unique_version(folder: Path, beatmap: Beatmap, base: str) -> str:
    """A Version (difficulty name) based on `base` whose file does not exist in `folder` yet,
    and that no other difficulty there uses (read from their [Metadata]: a map renamed by hand
    keeps its Version), both compared case-insensitively as Windows does. Sets it on
    `beatmap`."""
    maps = list(folder.glob("*.osu")) if folder.is_dir() else []
    names = {p.name.lower() for p in maps}
    versions = {v.lower() for v in map(declared_version, maps) if v is not None}
    base = clip_bytes(sanitize(base), MAX_VERSION_BYTES) or "kiai"
    for n in range(1, 1000):
        version = base if n == 1 else f"{base} {n}"
        beatmap.metadata["Version"] = version
        if version.lower() not in versions \
                and difficulty_filename(beatmap).lower() not in names:
            return version
    raise FileExistsError(f"{folder}: no free difficulty name based on {base!r}")


def declared_version(path: Path) -> str | None:
    """The `Version:` a .osu file declares in its [Metadata], or None (unreadable, none, or
    no regular file: a named pipe's open would block)."""
    if not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            section = ""
            for n, line in enumerate(f):
                line = line.strip()
                if line.startswith("["):
                    if section == "[Metadata]":
                        return None
                    section = line
                elif section == "[Metadata]" and line.startswith("Version:"):
                    return line.partition(":")[2].strip()
                if n > 400:  # [Metadata] comes in a map's first lines
                    return None
    except OSError:
        return None
    return None
