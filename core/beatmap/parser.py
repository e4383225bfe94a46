"""A tolerant .osu parser that reports every line it skips or repairs.

Two stages, as lazer's `LegacyDecoder`/`LegacyBeatmapDecoder`: lines are sorted into sections,
then each section's lines become typed fields. A bad line never fails the map: it is skipped or
repaired and comes back as a `ParseIssue` naming file, line, section and reason. Only a file that
cannot be a beatmap at all (binary, empty, no header and no section) raises `BeatmapError`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.beatmap.model import (
    TYPE_CIRCLE,
    TYPE_HOLD,
    TYPE_NEW_COMBO,
    TYPE_SLIDER,
    TYPE_SPINNER,
    Beatmap,
    Circle,
    CurveType,
    HitObject,
    Hold,
    Slider,
    Spinner,
    TimingPoint,
)
from core.beatmap.numbers import MAX_COORDINATE_VALUE, format_number, parse_int, parse_number
from core.beatmap.timing import annotate_sliders, first_disorder, in_time_order

LATEST_VERSION = 14  # lazer's LegacyDecoder fallback for a missing or corrupted header
FIRST_LAZER_VERSION = 128  # lazer keeps fractional coordinates from this version on
OLD_VERSION_OFFSET_MS = 24  # versions < 5 shift every time by +24 ms (LegacyBeatmapDecoder)
MAX_SLIDES = 9000  # ConvertHitObjectParser: "Repeat count is way too high"

_HEADER = re.compile(r"osu file format v(\d+)")
_KNOWN_SECTIONS = {
    "General", "Editor", "Metadata", "Difficulty", "Events", "TimingPoints", "Colours",
    "HitObjects", "Variables", "Fonts", "CatchTheBeat", "Mania",
}
_KEY_VALUE_SECTIONS = {"General": "general", "Editor": "editor", "Metadata": "metadata",
                       "Colours": "colours"}
# lazer's ApplyDifficultyRestrictions and handleDifficulty clamps.
_DIFFICULTY_FIELDS = {
    "HPDrainRate": ("hp", 0.0, 10.0),
    "CircleSize": ("cs", 0.0, 10.0),
    "OverallDifficulty": ("od", 0.0, 10.0),
    "ApproachRate": ("ar", 0.0, 10.0),
    "SliderMultiplier": ("slider_multiplier", 0.4, 3.6),
    "SliderTickRate": ("slider_tick_rate", 0.5, 8.0),
}


@dataclass(frozen=True)
class ParseIssue:
    """A line that was skipped or repaired. `line_no` is 1-based; 0 means the whole file."""

    file: str
    line_no: int
    section: str
    text: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line_no}" if self.line_no else self.file
        section = f" [{self.section}]" if self.section else ""
        text = f": {self.text!r}" if self.text else ""  # a whole-file issue quotes no line
        return f"{where}:{section} {self.reason}{text}"


class BeatmapError(Exception):
    """The input cannot be read as a beatmap at all. Names the file and, where known, the line."""

    def __init__(self, message: str, file: str, line_no: int | None = None) -> None:
        self.file = file
        self.line_no = line_no
        where = f"{file}:{line_no}" if line_no else file
        super().__init__(f"{where}: {message}")


@dataclass
class ParseResult:
    beatmap: Beatmap
    issues: list[ParseIssue] = field(default_factory=list)


def parse_file(path: str | Path) -> ParseResult:
    """Parse a .osu file; unreadable files raise `BeatmapError` naming the path."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BeatmapError(f"cannot read file: {e.strerror or e}", str(path)) from e
    return parse_bytes(data, str(path))


def parse_bytes(data: bytes, source: str = "<bytes>") -> ParseResult:
    """Parse raw bytes (UTF-8, BOM allowed; invalid bytes, NULs too, are replaced and reported).
    A NUL on the first line or in 1% of the first 64 KB means binary (an image, a zip, UTF-16)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with its BOM, as .NET's reader takes it
        data = data.decode("utf-16", errors="replace").encode("utf-8")
    head = data[:1 << 16]
    nul = head.find(b"\x00")
    if nul >= 0 and (b"\n" not in head[:nul] or head.count(b"\x00") * 100 >= len(head)):
        line_no = data.count(b"\n", 0, nul) + 1
        raise BeatmapError("not a text file (NUL byte)", source, line_no)
    text = data.decode("utf-8-sig", errors="replace").replace("\x00", "\ufffd")
    return parse_text(text, source)


def parse_text(text: str, source: str = "<string>") -> ParseResult:
    """Parse the text of a .osu file."""
    return _Parser(source).parse(text)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.issues: list[ParseIssue] = []
        self.beatmap = Beatmap()
        self.offset = 0.0
        self.section = ""
        self.line_no = 0
        self.line = ""

    # -- stage 1: lines into sections -------------------------------------------------------
    def parse(self, text: str) -> ParseResult:
        text = text.removeprefix("\ufeff")
        lines = text.splitlines()
        if not text.strip():
            raise BeatmapError("empty file, not a beatmap", self.source, 1)
        start = self._read_header(lines)
        saw_section = start > 0
        for index in range(start, len(lines)):
            raw = lines[index]
            self.line_no = index + 1
            if "\ufffd" in raw:
                self._issue(raw, "invalid bytes (not UTF-8, or NUL) replaced")
            # LegacyDecoder.ShouldSkipLine: blank lines and whole-line comments.
            stripped = raw.strip()
            if not stripped or stripped.startswith("//"):
                continue
            line = raw
            # Comments are not stripped in [Metadata]: titles may contain "//" (LegacyDecoder).
            if self.section != "Metadata":
                cut = line.find("//")
                if cut > 0:
                    line = line[:cut]
            line = line.rstrip()
            if line.startswith("[") and line.endswith("]"):
                self._begin_section(line)
                saw_section = True
                continue
            self.line = line
            self._parse_line(line)
        if not saw_section:
            raise BeatmapError("not an osu! beatmap: no 'osu file format' header and no [Section]",
                               self.source, 1)
        self._finish()
        return ParseResult(self.beatmap, self.issues)

    def _read_header(self, lines: list[str]) -> int:
        """Sets the format version; returns the index of the first line after the header."""
        for index, raw in enumerate(lines):
            line = raw.strip()
            if not line:
                continue
            match = _HEADER.match(line)
            if match is None:
                # lazer falls back to the latest version and reads the line as content.
                self.line_no = index + 1
                self._issue(line, f"no 'osu file format vN' header; read as v{LATEST_VERSION}")
                self._set_version(LATEST_VERSION)
                return 0
            self._set_version(int(match.group(1)))
            if line[match.end():].strip():
                self.line_no = index + 1
                self._issue(line, "text after the format header ignored")
            return index + 1
        return len(lines)

    def _set_version(self, version: int) -> None:
        self.beatmap.format_version = version
        self.offset = OLD_VERSION_OFFSET_MS if version < 5 else 0

    def _begin_section(self, line: str) -> None:
        name = line[1:-1]
        if name not in _KNOWN_SECTIONS:
            self._issue(line, "unknown section; its lines are ignored")
        self.section = name

    def _issue(self, text: str, reason: str) -> None:
        self.issues.append(ParseIssue(self.source, self.line_no, self.section, text, reason))

    # -- stage 2: sections into fields ------------------------------------------------------
    def _parse_line(self, line: str) -> None:
        section = self.section
        try:
            if section in _KEY_VALUE_SECTIONS:
                self._key_value(line, getattr(self.beatmap, _KEY_VALUE_SECTIONS[section]))
            elif section == "Difficulty":
                self._difficulty(line)
            elif section == "Events":
                self._event(line)
            elif section == "TimingPoints":
                self._timing_point(line)
            elif section == "HitObjects":
                self._hit_object(line)
            elif section == "":
                self._issue(line, "line outside any section ignored")
            # Anything else: [Variables], [Fonts], [CatchTheBeat], [Mania] (storyboard and skin
            # data kiai ignores) or an unknown section, reported once at its header.
        except (ValueError, IndexError, OverflowError) as e:
            self._issue(line, f"line skipped: {e}")

    def _key_value(self, line: str, target: dict[str, str]) -> None:
        key, sep, value = line.partition(":")
        if not sep:
            self._issue(line, "not a 'key: value' line; skipped")
            return
        key, value = key.strip(), value.strip()
        if self.section == "General" and key == "PreviewTime" and self.offset:
            preview = parse_int(value)
            value = str(preview if preview == -1 else preview + int(self.offset))
        target[key] = value

    def _difficulty(self, line: str) -> None:
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or key not in _DIFFICULTY_FIELDS:
            self._issue(line, "unknown difficulty setting ignored")
            return
        name, low, high = _DIFFICULTY_FIELDS[key]
        number = parse_number(value)
        if self.beatmap.mode == 3 and name == "cs":
            low, high = 1.0, 18.0  # mania's key count (ApplyDifficultyRestrictions)
        if not low <= number <= high:
            clamped = min(max(number, low), high)
            self._issue(line, f"{key} out of range, clamped to {clamped:g}")
            number = clamped
        setattr(self.beatmap.difficulty, name, number)

    def _event(self, line: str) -> None:
        if self.offset and (line.startswith("2,") or line.startswith("Break,")):
            kind, start, end, *rest = line.split(",")
            start = parse_number(start) + self.offset
            end = parse_number(end) + self.offset
            line = ",".join([kind, format_number(start), format_number(end), *rest])
        self.beatmap.events.append(line)

    def _timing_point(self, line: str) -> None:
        # LegacyBeatmapDecoder.handleTimingPoint: fields after the second are optional.
        parts = line.split(",")
        if len(parts) < 2:
            raise ValueError("a timing point needs at least time and beat length")
        point = TimingPoint(time=parse_number(parts[0]) + self.offset,
                            beat_length=parse_number(parts[1], allow_nan=True))
        if len(parts) >= 3 and parts[2].strip() and parts[2].strip()[0] != "0":
            point.meter = parse_int(parts[2])
            if point.meter < 1:
                raise ValueError(f"meter must be positive: {parts[2]!r}")
        if len(parts) >= 4:
            point.sample_set = parse_int(parts[3])
        if len(parts) >= 5:
            point.sample_index = parse_int(parts[4])
        if len(parts) >= 6:
            point.volume = parse_int(parts[5])
        if len(parts) >= 7:
            point.uninherited = parts[6].strip()[:1] == "1"
        if len(parts) >= 8:
            point.effects = parse_int(parts[7])
        if point.uninherited and not point.beat_length > 0:
            self._issue(line, "uninherited timing point without a positive beat length")
        self.beatmap.timing_points.append(point)

    def _hit_object(self, line: str) -> None:
        parts = line.split(",")
        if len(parts) < 5:
            raise ValueError("a hit object needs x,y,time,type,hitSound")
        x = self._coordinate(parts[0])
        y = self._coordinate(parts[1])
        time = parse_number(parts[2]) + self.offset
        type_bits = parse_int(parts[3])
        common = dict(x=x, y=y, time=time, new_combo=bool(type_bits & TYPE_NEW_COMBO),
                      combo_skip=(type_bits >> 4) & 7, hitsound=parse_int(parts[4]))
        obj: HitObject
        # ConvertHitObjectParser checks the type bits in this order.
        if type_bits & TYPE_CIRCLE:
            obj = Circle(**common, hit_sample=_optional(parts, 5))
        elif type_bits & TYPE_SLIDER:
            obj = self._slider(parts, common)
        elif type_bits & TYPE_SPINNER:
            end = parse_number(parts[5]) + self.offset
            if end < time:
                self._issue(line, "spinner ends before it starts; end set to its start")
                end = time
            obj = Spinner(**common, spinner_end=end, hit_sample=_optional(parts, 6))
        elif type_bits & TYPE_HOLD:
            end_text, _, sample = (parts[5] if len(parts) > 5 else "").partition(":")
            end = parse_number(end_text) + self.offset if end_text.strip() else time
            obj = Hold(**common, hold_end=max(end, time), hit_sample=sample or None)
        else:
            raise ValueError(f"unknown hit object type {parts[3].strip()!r}")
        self.beatmap.hit_objects.append(obj)

    def _slider(self, parts: list[str], common: dict) -> Slider:
        if len(parts) < 7:
            raise ValueError("a slider needs a curve and a slide count")
        slides = parse_int(parts[6])
        if slides > MAX_SLIDES:
            raise ValueError(f"slide count {slides} is way too high")
        if slides < 1:
            self._issue(self.line, "slide count below 1, read as 1")
            slides = 1
        length = None
        if len(parts) > 7:
            length = parse_number(parts[7], MAX_COORDINATE_VALUE)
            if length < 0:
                self._issue(self.line, "negative pixel length, path length used instead")
                length = None
            # A length of 0 (kept as written) means the same to osu!: the path's own length.
        curve_type, points, segment_types = self._curve(parts[5])
        return Slider(**common, curve_type=curve_type, points=points,
                      segment_types=segment_types, slides=slides, length=length,
                      edge_sounds=_optional(parts, 8), edge_sets=_optional(parts, 9),
                      hit_sample=_optional(parts, 10))

    def _curve(self, text: str) -> tuple[str, list[tuple[float, float]], dict[int, str]]:
        tokens = text.split("|")
        curve_type = ""
        points: list[tuple[float, float]] = []
        segment_types: dict[int, str] = {}
        for token in tokens:
            token = token.strip()
            if token and token[0].isalpha():
                letter = self._curve_letter(token)
                if not curve_type and not points:
                    curve_type = letter
                else:
                    segment_types[len(points)] = letter
                continue
            x_text, sep, y_text = token.partition(":")
            if not sep:
                raise ValueError(f"slider anchor {token!r} is not x:y")
            points.append((self._coordinate(x_text), self._coordinate(y_text)))
        if not curve_type:
            self._issue(self.line, "slider curve without a type letter, read as Catmull")
            curve_type = CurveType.CATMULL
        # A letter after the last point starts no segment.
        segment_types.pop(len(points), None)
        return curve_type, points, segment_types

    def _curve_letter(self, token: str) -> str:
        if token[0] in CurveType.ALL and (len(token) == 1 or token[1:].isdigit()):
            return token  # "B3": lazer's B-spline of degree 3 (v128)
        self._issue(self.line, f"unknown curve type {token!r}, read as Catmull as lazer does")
        return CurveType.CATMULL

    def _coordinate(self, text: str) -> float:
        value = parse_number(text, MAX_COORDINATE_VALUE)
        if self.beatmap.format_version < FIRST_LAZER_VERSION and isinstance(value, float):
            # Stable and lazer's legacy decoder truncate coordinates to integers.
            self._issue(self.line, f"fractional coordinate {text.strip()} truncated as osu! does")
            value = int(value)
        return value

    def _finish(self) -> None:
        beatmap = self.beatmap
        objects = beatmap.hit_objects
        if any(b.time < a.time for a, b in itertools.pairwise(objects)):
            self.line_no = 0
            self.section = "HitObjects"
            self._issue("", f"hit objects out of time order ({first_disorder(objects)}); "
                            "sorted by time as osu! does")
            objects.sort(key=lambda o: o.time)
        points = beatmap.timing_points
        if any(b.time < a.time for a, b in itertools.pairwise(points)):
            self.line_no = 0
            self.section = "TimingPoints"
            self._issue("", f"timing points out of time order ({first_disorder(points)}); "
                            "sorted by time")
            beatmap.timing_points, replaced = in_time_order(points)
            for time in replaced:
                self._issue("", f"lines at {format_number(time)} ms again, out of order: "
                                "they replace the earlier ones there, as osu! does")
        annotate_sliders(beatmap)


def _optional(parts: list[str], index: int) -> str | None:
    """An optional trailing field; empty and absent are the same to osu!."""
    if len(parts) > index and parts[index] != "":
        return parts[index]
    return None


