"""Song discovery: the song sets of an osu! Songs folder, their osu!standard difficulties and the
audio file each one names, read in place.

A set is a folder holding .osu files, or an .osz/.olz archive (a zip; .olz is lazer's export). A
folder without .osu files is searched MAX_PACK_DEPTH levels deeper, as osu! stable finds sets
inside "pack" folders (Songs/Pack/123 Artist - Title/). Archives are never extracted: members are
read with zipfile, and only through an index of names checked by `safe_member`, so no member path
can reach outside its archive. `__MACOSX/` resource forks and hidden names (`.DS_Store`, kiai's
own `.tmp-*` staging folders) are ignored, not reported.

AudioFilename is matched against the set's files ignoring case, as osu! does on Windows (its
usual home; NTFS is case-insensitive), preferring an exact match when both exist.

Anything unusable is skipped and counted in a `DiscoveryReport`, never fatal. A skip counts one
.osu file (a difficulty), except UNREADABLE and NO_BEATMAPS (one set) and UNSAFE_MEMBER
(one archive member). Discovery reads each map's header only (everything before [HitObjects]),
so it stays cheap on a folder of thousands of maps; the data-set builder parses the whole map.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from core.beatmap.model import Beatmap, Mode
from core.beatmap.parser import BeatmapError, parse_bytes

ARCHIVE_SUFFIXES = (".osz", ".olz")
MAX_PACK_DEPTH = 2  # Songs/Pack/Subpack/Set at most: deeper folders are not osu!'s layout
# Bounds on what one member may decompress to: a zip's header announces the size and zipfile
# never returns more than that, so checking it first caps memory for a hostile archive.
MAX_MAP_BYTES = 32 << 20  # the largest ranked maps are ~2 MB
MAX_AUDIO_BYTES = 512 << 20  # an hour of 320 kbit/s mp3 is 144 MB
MAX_EXAMPLES = 3  # paths kept per skip reason

# Skip reasons: the report's keys.
UNREADABLE = "unreadable set"  # a folder that cannot be listed, an archive that is no zip
UNSAFE_MEMBER = "unsafe archive member"
NO_BEATMAPS = "no beatmaps"
UNPARSABLE = "unparsable map"
UNREADABLE_MAP = "unreadable map"  # an .osu the system refuses (permissions); the rest stay
OTHER_MODE = "other mode"
MISSING_AUDIO = "missing audio"
TOO_LARGE = "file too large"

_DRIVE = re.compile(r"^[A-Za-z]:")


class SongsError(Exception):
    """A Songs folder that cannot be searched at all (missing, not a folder, unreadable)."""


@dataclass
class DiscoveryReport:
    """What was kept and what was skipped, by reason, with a few example paths per reason to
    print and every skip (`entries`: reason, path, detail) to write down."""

    sets: int = 0  # song sets with at least one usable difficulty
    maps: int = 0  # usable difficulties
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    entries: list[tuple[str, str, str]] = field(default_factory=list)

    def skip(self, reason: str, where: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        self.entries.append((reason, where, detail))
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(f"{where} ({detail})" if detail else where)

    def merge(self, other: DiscoveryReport) -> None:
        self.sets += other.sets
        self.maps += other.maps
        self.entries += other.entries
        for reason, count in other.skipped.items():
            self.skipped[reason] += count
            kept = self.examples.setdefault(reason, [])
            kept += other.examples.get(reason, [])[:MAX_EXAMPLES - len(kept)]

    def lines(self) -> list[str]:
        """The skips as printable lines, most frequent reason first."""
        if not self.skipped:
            return ["nothing skipped"]
        width = max(map(len, self.skipped))
        out = [f"skipped {sum(self.skipped.values())}:"]
        for reason, count in self.skipped.most_common():
            out.append(f"  {reason:<{width}}  {count:>5}")
            out += [f"      e.g. {example}" for example in self.examples.get(reason, [])]
        return out

    def to_dict(self) -> dict:
        return {"sets": self.sets, "maps": self.maps, "skipped": dict(self.skipped),
                "examples": self.examples}


@dataclass(frozen=True)
class MapEntry:
    """One osu!standard difficulty of a set: its file and the audio file it names, both as
    '/'-separated paths inside the set (as the set spells them, not as AudioFilename does);
    audio None for a map kept without its audio (discover's `audioless`)."""

    member: str
    audio: str | None


@dataclass(frozen=True)
class SongSet:
    """A folder or archive with its usable difficulties. `fingerprint` changes when the files
    that matter do (sizes and modification times), so a data set can tell a set was edited."""

    path: Path
    is_archive: bool
    maps: tuple[MapEntry, ...]
    fingerprint: str

    @property
    def name(self) -> str:
        return self.path.name

    def where(self, member: str) -> str:
        """A member's path for messages: `archive.osz::member` or `folder/member`."""
        return f"{self.path}::{member}" if self.is_archive else str(self.path / member)

    @contextmanager
    def open(self) -> Iterator[Callable[[str], bytes]]:
        """A reader of the set's members by name (an archive stays open meanwhile).

        Raises KeyError for a name the set's index does not hold (unsafe names included) and
        OSError / zipfile.BadZipFile for files that cannot be read.
        """
        if self.is_archive:
            with zipfile.ZipFile(self.path) as archive:
                index = _archive_index(archive, DiscoveryReport(), str(self.path))
                yield lambda member: archive.read(index[member])
        else:
            index = _folder_index(self.path)

            def read(member: str) -> bytes:
                if member not in index:  # only the set's own files: no "../" gets through
                    raise KeyError(member)
                return (self.path / member).read_bytes()

            yield read

    def read(self, member: str) -> bytes:
        with self.open() as read:
            return read(member)


def discover(songs_dir: str | os.PathLike, *, audioless: bool = False
             ) -> tuple[list[SongSet], DiscoveryReport]:
    """The song sets under `songs_dir`, sorted by path, and what was skipped on the way.

    `songs_dir` is a Songs folder, or a single set's folder (one that holds .osu files itself).
    With `audioless`, maps whose audio file is missing are kept (MapEntry.audio None) instead
    of skipped: trained on silence, they teach placement (DESIGN §7). Raises SongsError only
    when `songs_dir` itself cannot be listed.
    """
    root = Path(songs_dir)
    if not root.is_dir():
        raise SongsError(f"{root}: no such folder" if not root.exists() else
                         f"{root}: not a folder")
    report = DiscoveryReport()
    sets: list[SongSet] = []
    try:
        candidates = list(_candidates(root, depth=0, report=report, top=True, seen=set()))
    except OSError as e:
        raise SongsError(f"{root}: cannot be listed ({e.strerror or e})") from e
    for path in candidates:
        song_set = _read_set(path, report, audioless)
        if song_set is not None:
            sets.append(song_set)
            report.sets += 1
            report.maps += len(song_set.maps)
    return sets, report


def safe_member(name: str) -> str | None:
    """An archive member's name normalised to 'a/b.osu', or None if it could point outside the
    archive when extracted: absolute (`/x`, `\\x`, `C:x`) or `..` after normalisation."""
    name = name.replace("\\", "/")
    if not name or name.startswith("/") or _DRIVE.match(name) or "\x00" in name:
        return None
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../"):
        return None
    return normal


def is_ignored(name: str) -> bool:
    """Resource forks (`__MACOSX/`), hidden files and folders, directory entries."""
    parts = name.rstrip("/").split("/")
    return name.endswith("/") or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def _candidates(folder: Path, depth: int, report: DiscoveryReport, top: bool = False,
                seen: set[str] | None = None) -> Generator[Path, None, int]:
    """Set folders and archives under `folder`, in name order; pack folders are descended.
    Returns how many it found or accounted for (found before through a link, unreadable).

    A folder holding .osu files is a set, and below the top its subfolders are its own
    (storyboard, skin); the top folder's are still searched, so that one stray .osu in a Songs
    folder hides nothing. A folder with nothing in it is reported, the outermost such folder
    (not a storyboard folder inside it: QA round 9), unless the top is a set. A folder or
    archive reached again through a symbolic link (`seen`: real paths) is passed over: a link
    back to Songs found every set three times (QA round 9).
    """
    seen = set() if seen is None else seen
    seen.add(os.path.realpath(folder))
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    is_set = any(_is_map_name(p.name) and p.is_file() for p in entries)
    if is_set:
        yield folder
        if not top:
            return 1
    found, empty = int(is_set), []
    for entry in entries:
        if is_ignored(entry.name):
            continue
        real = os.path.realpath(entry)
        if real in seen:  # found before, through a link: not empty either
            found += entry.is_dir() or entry.suffix.lower() in ARCHIVE_SUFFIXES
            continue
        if entry.is_file() and entry.suffix.lower() in ARCHIVE_SUFFIXES:
            seen.add(real)
            found += 1
            yield entry
        elif entry.is_dir() and depth <= MAX_PACK_DEPTH:
            try:
                inner = yield from _candidates(entry, depth + 1, _Quiet() if is_set else report,
                                               seen=seen)
            except OSError as e:
                report.skip(UNREADABLE, str(entry), e.strerror or str(e))
                found += 1  # reported once, as unreadable, not as empty too
                continue
            found += inner
            if not inner:
                empty.append(entry)
    if (found or top) and not is_set:
        for entry in empty:
            report.skip(NO_BEATMAPS, str(entry))
    return found


class _Quiet(DiscoveryReport):
    """A report that forgets: empty subfolders of a set given as the top folder are expected."""

    def skip(self, reason: str, where: str, detail: str = "") -> None:
        pass


def _read_set(path: Path, report: DiscoveryReport, audioless: bool = False) -> SongSet | None:
    """The set at `path` with its usable maps, or None (reported) when it has none."""
    try:
        if path.is_dir():
            files = _folder_index(path)
            maps = _usable_maps(path, False, files, lambda m: (path / m).read_bytes(), report,
                                audioless)
            fingerprint = _folder_fingerprint(path, maps)
        else:
            with zipfile.ZipFile(path) as archive:
                members = _archive_index(archive, report, str(path))
                maps = _usable_maps(path, True, {m: i.file_size for m, i in members.items()},
                                    lambda m: archive.read(members[m]), report, audioless)
            stat = path.stat()
            fingerprint = f"{stat.st_size}:{stat.st_mtime_ns}"
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError) as e:
        # RuntimeError: an encrypted member; BadZipFile also covers CRC errors.
        report.skip(UNREADABLE, str(path), getattr(e, "strerror", None) or str(e))
        return None
    if maps is None:
        report.skip(NO_BEATMAPS, str(path))
        return None
    if any(m.audio is None for m in maps):  # a build without them is not this set's build
        fingerprint += ":audioless"
    return SongSet(path, not path.is_dir(), maps, fingerprint) if maps else None


def _usable_maps(path: Path, is_archive: bool, files: dict[str, int],
                 read: Callable[[str], bytes], report: DiscoveryReport, audioless: bool = False
                 ) -> tuple[MapEntry, ...] | None:
    """The set's osu!standard maps whose audio is there (or, `audioless`, is not); None when
    the set has no .osu at all.

    `files` maps each member name (as the set spells it) to its size in bytes.
    """
    names = sorted(m for m in files if _is_map_name(m) and (is_archive or "/" not in m))
    if not names:
        return None
    by_lower: dict[str, str] = {}
    for name in sorted(files, reverse=True):  # the first name in order wins a case clash
        by_lower[name.lower()] = name
    kept = []
    for name in names:
        where = f"{path}::{name}" if is_archive else str(path / name)
        if files[name] > MAX_MAP_BYTES:
            report.skip(TOO_LARGE, where, f"{files[name]} bytes")
            continue
        try:
            header = _header(read(name), where)
        except BeatmapError as e:
            report.skip(UNPARSABLE, where, str(e).removeprefix(f"{where}: "))
            continue
        except OSError as e:  # QA round 9: one locked .osu had dropped its whole set
            report.skip(UNREADABLE_MAP, where, e.strerror or str(e))
            continue
        if header.mode is not Mode.OSU:
            report.skip(OTHER_MODE, where, header.mode.name.lower())
            continue
        audio = _audio_member(header, files, by_lower)
        if audio is None:
            if audioless:
                kept.append(MapEntry(name, None))
            else:
                report.skip(MISSING_AUDIO, where,
                            f"AudioFilename {header.audio_filename or ''!r}")
            continue
        if files[audio] > MAX_AUDIO_BYTES:
            report.skip(TOO_LARGE, where, f"{audio}: {files[audio]} bytes")
            continue
        kept.append(MapEntry(name, audio))
    return tuple(kept)


def _header(data: bytes, where: str) -> Beatmap:
    """The map parsed up to [HitObjects]: mode, audio file, metadata, difficulty, timing."""
    cut = data.find(b"[HitObjects]")
    return parse_bytes(data if cut < 0 else data[:cut], where).beatmap


def _audio_member(header: Beatmap, files: dict[str, int],
                  by_lower: dict[str, str]) -> str | None:
    """The member AudioFilename names: exact, else ignoring case; None if absent or unsafe."""
    named = (header.audio_filename or "").strip()
    wanted = safe_member(named) if named else None
    if wanted is None or _is_map_name(wanted):
        return None
    if wanted in files:
        return wanted
    return by_lower.get(wanted.lower())


def _is_map_name(name: str) -> bool:
    return name.lower().endswith(".osu") and not is_ignored(name)


def _archive_index(archive: zipfile.ZipFile, report: DiscoveryReport, where: str
                   ) -> dict[str, zipfile.ZipInfo]:
    """The archive's readable members by normalised name; unsafe names are reported, not kept."""
    index: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = safe_member(info.filename)
        if name is None:
            report.skip(UNSAFE_MEMBER, f"{where}::{info.filename}")
            continue
        if is_ignored(name):  # after normalising: "ok/../a.osu" is a.osu, not hidden
            continue
        index.setdefault(name, info)  # a duplicated name: the first entry, as lazer reads it
    return index


def _folder_index(folder: Path) -> dict[str, int]:
    """Every visible file under a set folder: {'sub/name': size in bytes}.

    Symbolic links to folders are not followed (a link could lead anywhere).
    """
    index = {}
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not is_ignored(d))
        base = Path(current).relative_to(folder).as_posix()
        for name in files:
            relative = name if base == "." else f"{base}/{name}"
            if is_ignored(relative):
                continue
            try:
                size = (Path(current) / name).stat().st_size
            except OSError:
                continue  # a dangling link
            index[relative] = size
    return index


def _folder_fingerprint(folder: Path, maps: tuple[MapEntry, ...] | None) -> str:
    """A digest of (name, size, mtime) of the files a folder set's data depends on."""
    digest = hashlib.sha256()
    for name in sorted({m.member for m in maps or ()}
                       | {m.audio for m in maps or () if m.audio is not None}):
        stat = (folder / name).stat()
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]
