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


def sanitize(text: str) -> str:
    """`text` with characters Windows forbids in file names removed, trailing dots/spaces cut."""
    clean = _FORBIDDEN.sub("", text).strip().rstrip(". ")
    if clean.split(".")[0].upper() in _RESERVED:
        clean = f"_{clean}"
    return clean


def difficulty_filename(beatmap: Beatmap) -> str:
    m = beatmap.metadata
    artist = sanitize(m.get("Artist", "")) or "Unknown"
    title = sanitize(m.get("Title", "")) or "Unknown"
    creator = sanitize(m.get("Creator", "")) or "kiai"
    version = sanitize(m.get("Version", "")) or "kiai"
    name = f"{artist} - {title} ({creator}) [{version}].osu"
    if len(name) > MAX_NAME:
        keep = MAX_NAME - len(f" ({creator}) [{version}].osu") - 3
        name = f"{f'{artist} - {title}'[:max(keep, 8)]} ({creator}) [{version}].osu"
    return name


def unique_version(folder: Path, beatmap: Beatmap, base: str) -> str:
    """A Version (difficulty name) based on `base` whose file does not exist in `folder` yet,
    and that no other difficulty there uses, compared case-insensitively as Windows does."""
    existing = {p.name.lower() for p in folder.glob("*.osu")} if folder.is_dir() else set()
    base = sanitize(base) or "kiai"
    for n in range(1, 1000):
        version = base if n == 1 else f"{base} {n}"
        beatmap.metadata["Version"] = version
        if difficulty_filename(beatmap).lower() not in existing:
            return version
    raise FileExistsError(f"{folder}: no free difficulty name based on {base!r}")
