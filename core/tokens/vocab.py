"""The token vocabulary: contiguous id ranges per category, built from a frozen `VocabConfig`.

Each category is one contiguous range so that a decoding constraint is a slice of the logits
(whisper's tokenizer does the same). Every checkpoint stores the config it was trained with.

Two presets (DESIGN §4):
- `seed`: exactly the seed's sizes. 64 log-scaled relative TIME_SHIFT bins decoded at the bin
  centre, 32x32 coordinates over the playfield, 16 spinner-duration bins, repeats 0..4. ~160 ids.
- `default`: the same categories sized to be faithful. TIME_SHIFT in 10 ms steps up to 2 s plus
  coarse shifts for breaks, chained and quantized against the *decoded* time (error feedback, so
  time never drifts); coordinates on a 4 px grid that reaches off-playfield anchors; a Catmull
  curve token; repeats 0..63; slider and spinner ends carried by time tokens.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from functools import cached_property


class Category(str, Enum):
    PAD = "PAD"
    SOS = "SOS"
    EOS = "EOS"
    NEW_COMBO = "NEW_COMBO"
    PLACE_CIRCLE = "PLACE_CIRCLE"
    START_SLIDER = "START_SLIDER"
    ADD_SLIDER_ANCHOR = "ADD_SLIDER_ANCHOR"
    END_SLIDER = "END_SLIDER"
    PLACE_SPINNER = "PLACE_SPINNER"
    END_SPINNER = "END_SPINNER"
    TIME_SHIFT = "TIME_SHIFT"
    SPINNER_DURATION = "SPINNER_DURATION"
    COORD_X = "COORD_X"
    COORD_Y = "COORD_Y"


@dataclass(frozen=True)
class VocabConfig:
    """Everything that decides token ids. Frozen: a trained model is tied to it."""

    name: str
    # Time. "log": each shift binned on a log scale, decoded at the bin centre (the seed).
    # "chained": shifts of `time_step_ms` up to `fine_shift_bins` steps, plus `coarse_shifts_ms`,
    # several in a row for a long gap; quantized against the decoded time.
    time_mode: str = "chained"
    time_step_ms: float = 10.0
    fine_shift_bins: int = 200
    coarse_shifts_ms: tuple[float, ...] = (2500, 3000, 4000, 5000, 6000, 8000, 10_000,
                                           15_000, 20_000, 30_000, 60_000)
    log_shift_bins: int = 64  # "log" mode only
    log_shift_max_ms: float = 20_000.0
    # Positions: `x_bins` x `y_bins` cells over [min, max) osu!pixels, read back at the cell
    # centre. Default: 4 px cells centred on multiples of 4, so maps placed on osu!'s 4/8/16/32 px
    # grids come back exactly; the range reaches anchors ~190 px off the playfield.
    x_range: tuple[float, float] = (-194.0, 702.0)
    y_range: tuple[float, float] = (-194.0, 574.0)
    x_bins: int = 224
    y_bins: int = 192
    # Sliders and spinners.
    slider_curves: str = "LBPC"
    # lazer's multi-segment paths (v128): a START_SLIDER inside a slider starts a new segment.
    slider_segments: bool = True
    max_repeats: int = 63
    slider_end_time: bool = True  # slider ends carried by TIME_SHIFT tokens in the slider's body
    spinner_duration_bins: int = 0  # >0: spinner length as log bins (the seed) instead of shifts
    spinner_duration_max_ms: float = 20_000.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VocabConfig:
        data = dict(data)
        for key in ("coarse_shifts_ms", "x_range", "y_range"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


SEED = VocabConfig(
    name="seed",
    time_mode="log",
    fine_shift_bins=0,
    coarse_shifts_ms=(),
    log_shift_bins=64,
    x_range=(0.0, 512.0),
    y_range=(0.0, 384.0),
    x_bins=32,
    y_bins=32,
    slider_curves="LBP",
    slider_segments=False,
    max_repeats=4,
    slider_end_time=False,
    spinner_duration_bins=16,
)
DEFAULT = VocabConfig(name="default")
PRESETS = {"seed": SEED, "default": DEFAULT}


def preset(name: str) -> VocabConfig:
    try:
        return PRESETS[name]
    except KeyError:
        choices = sorted(PRESETS)
        raise ValueError(f"unknown vocabulary preset {name!r}; choose from {choices}") from None


@dataclass(frozen=True)
class Span:
    """One category's ids: [start, start + size)."""

    start: int
    size: int

    @property
    def stop(self) -> int:
        return self.start + self.size

    def __contains__(self, token: int) -> bool:
        return self.start <= token < self.stop


@dataclass(frozen=True)
class Vocab:
    """Token ids and names for one `VocabConfig`."""

    config: VocabConfig
    spans: dict[Category, Span] = field(init=False)

    def __post_init__(self) -> None:
        sizes = {
            Category.PAD: 1, Category.SOS: 1, Category.EOS: 1,
            Category.NEW_COMBO: 1, Category.PLACE_CIRCLE: 1,
            Category.START_SLIDER: len(self.config.slider_curves),
            Category.ADD_SLIDER_ANCHOR: 1,
            Category.END_SLIDER: self.config.max_repeats + 1,
            Category.PLACE_SPINNER: 1, Category.END_SPINNER: 1,
            Category.TIME_SHIFT: len(self.shift_values_ms),
            Category.SPINNER_DURATION: self.config.spinner_duration_bins,
            Category.COORD_X: self.config.x_bins, Category.COORD_Y: self.config.y_bins,
        }
        spans, start = {}, 0
        for category, size in sizes.items():
            spans[category] = Span(start, size)
            start += size
        object.__setattr__(self, "spans", spans)

    # -- sizes ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return max(span.stop for span in self.spans.values())

    @cached_property
    def x_step(self) -> float:
        low, high = self.config.x_range
        return (high - low) / self.config.x_bins

    @cached_property
    def y_step(self) -> float:
        low, high = self.config.y_range
        return (high - low) / self.config.y_bins

    @cached_property
    def x_values(self) -> tuple[float, ...]:
        """The centre of each COORD_X cell, in osu!pixels."""
        low = self.config.x_range[0]
        return tuple(low + (i + 0.5) * self.x_step for i in range(self.config.x_bins))

    @cached_property
    def y_values(self) -> tuple[float, ...]:
        low = self.config.y_range[0]
        return tuple(low + (i + 0.5) * self.y_step for i in range(self.config.y_bins))

    @cached_property
    def shift_values_ms(self) -> tuple[float, ...]:
        """The time each TIME_SHIFT token stands for, ascending."""
        c = self.config
        if c.time_mode == "log":
            return tuple(_log_centres(c.log_shift_bins, c.log_shift_max_ms))
        fine = [c.time_step_ms * (i + 1) for i in range(c.fine_shift_bins)]
        return tuple(fine + [s for s in c.coarse_shifts_ms if s > fine[-1]])

    @cached_property
    def spinner_durations_ms(self) -> tuple[float, ...]:
        c = self.config
        return tuple(_log_centres(c.spinner_duration_bins, c.spinner_duration_max_ms))

    # -- ids and names ----------------------------------------------------------------------
    def id(self, category: Category, index: int = 0) -> int:
        span = self.spans[category]
        if not 0 <= index < span.size:
            raise ValueError(f"{category.value} index {index} outside 0..{span.size - 1}")
        return span.start + index

    def category(self, token: int) -> Category:
        for category, span in self.spans.items():
            if token in span:
                return category
        raise ValueError(f"token id {token} outside the vocabulary (size {len(self)})")

    def split(self, token: int) -> tuple[Category, int]:
        category = self.category(token)
        return category, token - self.spans[category].start

    @cached_property
    def names(self) -> tuple[str, ...]:
        names = []
        for category, span in self.spans.items():
            for index in range(span.size):
                names.append(self._name(category, index, span.size))
        return tuple(names)

    @cached_property
    def _ids_by_name(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def name(self, token: int) -> str:
        return self.names[token]

    def token(self, name: str) -> int:
        try:
            return self._ids_by_name[name]
        except KeyError:
            vocabulary = self.config.name
            raise ValueError(f"unknown token {name!r} for vocabulary {vocabulary!r}") from None

    def _name(self, category: Category, index: int, size: int) -> str:
        if category == Category.START_SLIDER:
            return f"START_SLIDER_{self.config.slider_curves[index]}"
        if category == Category.END_SLIDER:
            return f"END_SLIDER_{index}R"
        if size == 1:
            return category.value
        return f"{category.value}_{index}"

    # -- quantization -----------------------------------------------------------------------
    def x_index(self, x: float) -> int:
        return _clamp(math.floor((x - self.config.x_range[0]) / self.x_step), self.config.x_bins)

    def y_index(self, y: float) -> int:
        return _clamp(math.floor((y - self.config.y_range[0]) / self.y_step), self.config.y_bins)

    def x_value(self, index: int) -> float:
        """The centre of a COORD_X cell."""
        return self.x_values[index]

    def y_value(self, index: int) -> float:
        return self.y_values[index]

    def nearest_shift(self, ms: float) -> int:
        """Index of the TIME_SHIFT whose value is nearest `ms` (log bins: the bin holding it)."""
        values = self.shift_values_ms
        if self.config.time_mode == "log":
            return _log_bin(ms, len(values), self.config.log_shift_max_ms)
        step = self.config.time_step_ms
        if ms <= values[self.config.fine_shift_bins - 1] + step / 2:
            return _clamp(round(ms / step) - 1, self.config.fine_shift_bins)
        return min(range(len(values)), key=lambda i: abs(values[i] - ms))

    def spinner_duration_index(self, ms: float) -> int:
        c = self.config
        return _log_bin(ms, c.spinner_duration_bins, c.spinner_duration_max_ms)


def _clamp(index: int, size: int) -> int:
    return min(max(index, 0), size - 1)


def _log_edges(bins: int, max_ms: float) -> list[float]:
    """Bin edges from 1 ms to `max_ms`, geometric; bin 0 also holds everything below 1 ms."""
    return [max_ms ** (i / bins) for i in range(bins + 1)]


def _log_centres(bins: int, max_ms: float) -> list[float]:
    edges = _log_edges(bins, max_ms)
    return [math.sqrt(edges[i] * edges[i + 1]) for i in range(bins)]


def _log_bin(ms: float, bins: int, max_ms: float) -> int:
    if ms <= 1.0:
        return 0
    return _clamp(int(math.log(ms) / math.log(max_ms) * bins), bins)
