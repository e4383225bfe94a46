"""Write a `Beatmap` as an osu! file format v14 text, and save it without risking the user's file.

Section order and key spellings follow what osu! stable writes. Numbers are written back in the form
they were read (see `numbers.format_number`), so parse -> write -> parse is exact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from core.beatmap.model import Beatmap, Circle, HitObject, Hold, Slider, Spinner, TimingPoint
from core.beatmap.numbers import format_number as fmt

WRITTEN_VERSION = 14  # what osu! stable reads
LAZER_VERSION = 128  # lazer's own files keep their version: v14 would lose fractional positions
FIRST_UNSHIFTED_VERSION = 5  # below, osu! plays every time 24 ms later (the parser adds it)


def written_version(version: int) -> int:
    """The format version a map read as `version` is written as: its own, so osu! reads it by
    the same rules (before v8 a slider's ticks follow its slider velocity, before v6 objects
    stack by the old rules: an old map written as v14 changed the ticks and stacking of
    objects a continuation kept; QA round 10); v5 for v3 and v4, whose times the parser
    shifted by 24 ms as osu! plays them (v5 is the first without the shift and keeps the other
    old rules); v14 for a version osu! never wrote; lazer's v128 and later as v128."""
    if version >= LAZER_VERSION:
        return LAZER_VERSION
    if version > WRITTEN_VERSION:
        return WRITTEN_VERSION
    return max(version, FIRST_UNSHIFTED_VERSION)


def write_text(beatmap: Beatmap) -> str:
    """The .osu text of `beatmap`, CRLF line endings as osu! writes them, in the format version
    `written_version` gives (a new map is v14)."""
    out = [f"osu file format v{written_version(beatmap.format_version)}", ""]
    out += _key_values("General", beatmap.general, ": ")
    out += _key_values("Editor", beatmap.editor, ": ")
    out += _key_values("Metadata", beatmap.metadata, ":")
    out += ["[Difficulty]", *_difficulty_lines(beatmap), ""]
    out += ["[Events]", *beatmap.events, ""]
    out += ["[TimingPoints]", *(timing_point_line(p) for p in beatmap.timing_points), ""]
    if beatmap.colours:
        out += _key_values("Colours", beatmap.colours, " : ")
    out += ["[HitObjects]", *(hit_object_line(o) for o in beatmap.hit_objects)]
    return "\r\n".join(out) + "\r\n"


def save(beatmap: Beatmap, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write atomically: a temp file in the same folder, fsync, then rename over `path`.

    Refuses to replace an existing file unless `overwrite` is set; no partial file is left behind
    on error or KeyboardInterrupt.
    """
    return write_file_atomic(path, write_text(beatmap).encode("utf-8"), overwrite=overwrite)


def write_file_atomic(path: str | Path, data: bytes, *, overwrite: bool = False) -> Path:
    """`data` into `path` as `save` writes a map: whole or not at all, never replacing an
    existing file unless `overwrite` (and then keeping its permissions)."""
    path = Path(path)
    if (path.is_symlink() or path.exists()) and not overwrite:  # a dangling link too
        raise FileExistsError(f"{path}: already exists; refusing to overwrite")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; a map in the Songs folder is an ordinary file (0644), and
        # a replaced file keeps its own permissions.
        os.chmod(tmp, path.stat().st_mode & 0o777 if overwrite and path.exists() else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            move_new(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def move_new(tmp: Path, path: Path) -> None:
    """Give the finished temp file `tmp` the name `path`, which must not exist (FileExistsError
    if it appeared meanwhile: rename() would silently replace it). A hard link does that in
    one step; FAT and exFAT drives (a Songs folder on a USB stick) and some network shares
    have none, and there the name is claimed first (created exclusively, empty) and the temp
    file renamed over the claim (Windows' rename never replaces at all). That way has two
    windows a hard link has not: a crash between the claim and the rename leaves an empty
    file under the name, and a failed rename removes the claim (another writer's file, should
    one have replaced it meanwhile)."""
    try:
        os.link(tmp, path)
    except FileExistsError:  # named for the user: the temp file's name means nothing to them
        raise FileExistsError(f"{path}: already exists; refusing to overwrite") from None
    except OSError:  # no hard links on this file system
        if os.name == "nt":
            os.rename(tmp, path)
            return
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        try:
            os.replace(tmp, path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return
    tmp.unlink(missing_ok=True)


def _key_values(section: str, values: dict[str, str], separator: str) -> list[str]:
    return [f"[{section}]", *(f"{k}{separator}{v}" for k, v in values.items()), ""]


def _difficulty_lines(beatmap: Beatmap) -> list[str]:
    d = beatmap.difficulty
    lines = [f"HPDrainRate:{fmt(d.hp)}", f"CircleSize:{fmt(d.cs)}",
             f"OverallDifficulty:{fmt(d.od)}"]
    if d.ar is not None:
        lines.append(f"ApproachRate:{fmt(d.ar)}")
    lines += [f"SliderMultiplier:{fmt(d.slider_multiplier)}",
              f"SliderTickRate:{fmt(d.slider_tick_rate)}"]
    return lines


def timing_point_line(p: TimingPoint) -> str:
    """One [TimingPoints] line."""
    fields = (p.time, p.beat_length, p.meter, p.sample_set, p.sample_index, p.volume,
              int(p.uninherited), p.effects)
    return ",".join(fmt(v) for v in fields)


def hit_object_line(obj: HitObject) -> str:
    """One [HitObjects] line."""
    head = [fmt(obj.x), fmt(obj.y), fmt(obj.time), str(obj.type_bits()), str(obj.hitsound)]
    if isinstance(obj, Circle):
        tail = [obj.hit_sample]
    elif isinstance(obj, Slider):
        tail = [_curve_text(obj), str(obj.slides),
                None if obj.length is None else fmt(obj.length),
                obj.edge_sounds, obj.edge_sets, obj.hit_sample]
    elif isinstance(obj, Spinner):
        tail = [fmt(obj.spinner_end), obj.hit_sample]
    elif isinstance(obj, Hold):
        tail = [f"{fmt(obj.hold_end)}:{obj.hit_sample or ''}"]
    else:
        raise TypeError(f"cannot write {type(obj).__name__}")
    # Trailing optional fields are dropped; a missing one before a present one is written empty.
    while tail and tail[-1] is None:
        tail.pop()
    if isinstance(obj, Slider) and len(tail) > 2 and tail[2] is None:
        tail[2] = "0"  # pixel length 0 reads back as "use the path's length"
    return ",".join(head + ["" if t is None else t for t in tail])


def _curve_text(slider: Slider) -> str:
    parts = [slider.curve_type]
    for index, (x, y) in enumerate(slider.points):
        letter = slider.segment_types.get(index)
        if letter:
            parts.append(letter)
        parts.append(f"{fmt(x)}:{fmt(y)}")
    return "|".join(parts)
