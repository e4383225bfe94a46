"""The typed beatmap: what a mapper placed, in the units of the .osu file.

Times are milliseconds, positions osu!pixels (playfield 512x384). Numbers keep the type they had in
the file (an int stays an int, `12.5` stays a float) so that parse -> write -> parse is exact.
Hitsound fields are kept as opaque strings: kiai never edits them, but they must survive a write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

PLAYFIELD_WIDTH = 512
PLAYFIELD_HEIGHT = 384

# Hit object type bits (osu! wiki, "hitObjects" > "Type").
TYPE_CIRCLE = 1
TYPE_SLIDER = 2
TYPE_NEW_COMBO = 4
TYPE_SPINNER = 8
TYPE_COMBO_SKIP = 0b0111_0000  # three bits: how many combo colours to skip
TYPE_HOLD = 128  # osu!mania hold note


class Mode(IntEnum):
    OSU = 0
    TAIKO = 1
    CATCH = 2
    MANIA = 3


class CurveType:
    BEZIER = "B"
    LINEAR = "L"
    PERFECT = "P"
    CATMULL = "C"
    ALL = "BLPC"


@dataclass
class TimingPoint:
    """A line of [TimingPoints]. Uninherited points set the beat; inherited ones set the slider
    velocity."""

    time: float  # ms
    beat_length: float  # ms per beat, or (inherited) -100 / slider velocity multiplier
    meter: int = 4
    sample_set: int = 0
    sample_index: int = 0
    volume: int = 100
    uninherited: bool = True
    effects: int = 0

    @property
    def bpm(self) -> float:
        return 60_000.0 / self.beat_length

    @property
    def kiai(self) -> bool:
        return bool(self.effects & 1)


@dataclass
class HitObject:
    """Fields common to every hit object line: `x,y,time,type,hitSound,...,hitSample`."""

    x: float
    y: float
    time: float  # ms
    new_combo: bool = False
    combo_skip: int = 0  # 0..7 combo colours skipped
    hitsound: int = 0
    hit_sample: str | None = None  # opaque trailing field, e.g. "0:0:0:0:"; None when absent

    @property
    def end_time(self) -> float:
        return self.time

    def type_bits(self) -> int:
        return (TYPE_NEW_COMBO if self.new_combo else 0) | (self.combo_skip << 4)


@dataclass
class Circle(HitObject):
    def type_bits(self) -> int:
        return TYPE_CIRCLE | super().type_bits()


@dataclass
class Slider(HitObject):
    """A slider as written: its head is (x, y); `points` are the following anchors, absolute.

    `segment_types` records explicit type letters placed before a point in the middle of the path
    (lazer's multi-segment sliders, format v128): point index -> curve letter. A repeated point
    (two equal anchors in a row) is a red anchor, as in the file.
    """

    curve_type: str = CurveType.BEZIER
    points: list[tuple[float, float]] = field(default_factory=list)
    segment_types: dict[int, str] = field(default_factory=dict)
    slides: int = 1  # number of spans: 1 = no repeat
    length: float | None = None  # pixel length as written; None when absent; 0: path's length
    edge_sounds: str | None = None
    edge_sets: str | None = None
    # Set by core.beatmap.timing.annotate_sliders when the map is parsed; not part of the file.
    duration: float | None = None  # ms for all spans

    def type_bits(self) -> int:
        return TYPE_SLIDER | super().type_bits()

    @property
    def repeats(self) -> int:
        return self.slides - 1

    @property
    def end_time(self) -> float:
        return self.time + (self.duration or 0.0)


@dataclass
class Spinner(HitObject):
    spinner_end: float = 0.0  # ms, as written

    def type_bits(self) -> int:
        return TYPE_SPINNER | super().type_bits()

    @property
    def end_time(self) -> float:
        return self.spinner_end


@dataclass
class Hold(HitObject):
    """osu!mania hold note; parsed so mania maps load, never tokenized."""

    hold_end: float = 0.0

    def type_bits(self) -> int:
        return TYPE_HOLD | super().type_bits()

    @property
    def end_time(self) -> float:
        return self.hold_end


@dataclass
class Difficulty:
    hp: float = 5.0
    cs: float = 5.0
    od: float = 5.0
    ar: float | None = None  # None: absent from the file, osu! then uses OD
    slider_multiplier: float = 1.4
    slider_tick_rate: float = 1.0

    @property
    def approach_rate(self) -> float:
        return self.od if self.ar is None else self.ar


@dataclass
class Beatmap:
    """One difficulty. Key/value sections keep their order and raw values for a faithful write."""

    format_version: int = 14
    general: dict[str, str] = field(default_factory=dict)
    editor: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    difficulty: Difficulty = field(default_factory=Difficulty)
    events: list[str] = field(default_factory=list)  # raw lines: backgrounds, breaks, storyboard
    timing_points: list[TimingPoint] = field(default_factory=list)
    colours: dict[str, str] = field(default_factory=dict)
    hit_objects: list[HitObject] = field(default_factory=list)

    @property
    def mode(self) -> Mode:
        try:
            return Mode(int(self.general.get("Mode", "0")))
        except ValueError:
            return Mode.OSU

    @property
    def audio_filename(self) -> str | None:
        return self.general.get("AudioFilename") or None

    @property
    def stack_leniency(self) -> float:
        try:
            return float(self.general.get("StackLeniency", "0.7"))
        except ValueError:
            return 0.7

    @property
    def version(self) -> str:
        """The difficulty name, `[Version]` in the file name."""
        return self.metadata.get("Version", "")
