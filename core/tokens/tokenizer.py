"""Beatmap -> token ids in the token language (DESIGN §4); `detokenizer` reads them back.

`tokenize` writes each hit object as its time shifts, an optional NEW_COMBO and the object's own
tokens (see `grammar`). Times are quantized against the time the reader will write (error
feedback, the reader's tick snapping included), so they never drift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from core.beatmap.model import Beatmap, Circle, HitObject, Mode, Slider, Spinner
from core.beatmap.path_string import control_points
from core.beatmap.ticks import TickGrid
from core.beatmap.timing import ControlPoints, slider_velocity
from core.tokens.anchor_fit import AnchorFit
from core.tokens.grammar import Grammar
from core.tokens.vocab import Category, Vocab

C = Category


class UnsupportedModeError(ValueError):
    """Only osu!standard maps have a token language."""


def tokenize(beatmap: Beatmap, vocab: Vocab, *, sos: bool = True, eos: bool = True,
             snap: bool = True) -> list[int]:
    """The token ids of every hit object of an osu!standard map, from time 0.

    With `snap`, times are quantized knowing that detokenizing snaps them to the map's beat ticks,
    so that the snapped time read back is the map's own (see `_Writer.time_target`).
    """
    if beatmap.mode is not Mode.OSU:
        raise UnsupportedModeError(
            f"unsupported mode: {beatmap.mode.name.lower()}; kiai maps osu!standard only")
    ticks = TickGrid(beatmap.timing_points) if snap else None
    ids = [vocab.id(C.SOS)] if sos else []
    ids += tokenize_objects(beatmap.hit_objects, vocab, beatmap, ticks=ticks)
    if eos:
        ids.append(vocab.id(C.EOS))
    return ids


def tokenize_objects(objects: Sequence[HitObject], vocab: Vocab, beatmap: Beatmap,
                     origin_ms: float = 0.0, ticks: TickGrid | None = None) -> list[int]:
    """Token ids of `objects` (sorted by time), with times counted from `origin_ms`.

    `beatmap` supplies the format version, difficulty and timing that slider shapes depend on.
    """
    writer = _Writer(vocab, beatmap, origin_ms, ticks)
    for obj in objects:
        writer.object(obj)
    return writer.ids


@dataclass(frozen=True)
class WindowTokens:
    """A training or generation window: SOS, the prefix objects' tokens, then the target's.

    Times count from the window's start. `prefix_length` counts SOS and the prefix, so the loss
    covers `ids[prefix_length:]` (DESIGN §8).
    """

    ids: list[int]
    prefix_length: int
    objects: int  # target objects in the window


def tokenize_window(beatmap: Beatmap, vocab: Vocab, start_ms: float, split_ms: float,
                    end_ms: float, *, eos: bool = True, snap: bool = True) -> WindowTokens:
    """Tokens of the objects in [start_ms, end_ms): those before `split_ms` as the prefix.

    `eos` ends the sequence with EOS (a window whose map goes on past `end_ms` ends the same way:
    EOS means "nothing more in this window").
    """
    if beatmap.mode is not Mode.OSU:
        raise UnsupportedModeError(
            f"unsupported mode: {beatmap.mode.name.lower()}; kiai maps osu!standard only")
    if not start_ms <= split_ms <= end_ms:
        raise ValueError(f"window bounds out of order: {start_ms}, {split_ms}, {end_ms}")
    objects = [o for o in beatmap.hit_objects if start_ms <= o.time < end_ms]
    writer = _Writer(vocab, beatmap, start_ms, TickGrid(beatmap.timing_points) if snap else None)
    writer.ids.append(vocab.id(C.SOS))
    prefix = [o for o in objects if o.time < split_ms]
    for obj in prefix:
        writer.object(obj)
    prefix_length = len(writer.ids)
    for obj in objects[len(prefix):]:
        writer.object(obj)
    if eos:
        writer.ids.append(vocab.id(C.EOS))
    return WindowTokens(writer.ids, prefix_length, len(objects) - len(prefix))


def snap_tolerance(vocab: Vocab, tolerance_ms: float | None = None) -> float:
    """How far a decoded time may move to a beat tick: half a time step plus 1 ms by default."""
    return vocab.config.time_step_ms / 2 + 1 if tolerance_ms is None else tolerance_ms


class _Writer:
    def __init__(self, vocab: Vocab, beatmap: Beatmap, origin_ms: float,
                 ticks: TickGrid | None) -> None:
        self.vocab = vocab
        self.config = vocab.config
        self.beatmap = beatmap
        self.format_version = beatmap.format_version
        self.control_points = ControlPoints(beatmap.timing_points)
        self.ticks = ticks
        self.tolerance = snap_tolerance(vocab)
        self.ids: list[int] = []
        self.cursor = origin_ms  # the decoded time of the last object
        self.true_cursor = origin_ms  # the seed's shifts are taken between true times
        self.max_anchors = Grammar(self.config).max_anchors
        self._decoded: dict[float, float] = {}
        self.x_start = vocab.spans[C.COORD_X].start
        self.y_start = vocab.spans[C.COORD_Y].start

    def object(self, obj: HitObject) -> None:
        self.time_to(obj.time)
        if obj.new_combo:
            self.ids.append(self.vocab.id(C.NEW_COMBO))
        if isinstance(obj, Circle):
            self.ids.append(self.vocab.id(C.PLACE_CIRCLE))
            self.position(obj.x, obj.y)
        elif isinstance(obj, Slider):
            self.slider(obj)
        elif isinstance(obj, Spinner):
            self.spinner(obj)
        else:
            raise UnsupportedModeError(f"cannot tokenize {type(obj).__name__} objects")

    # -- time ------------------------------------------------------------------------------
    def time_to(self, time: float) -> None:
        if self.config.time_mode == "log":
            # The seed: one shift per object, binned from the true gap, no error feedback.
            gap = time - self.true_cursor
            self.true_cursor = time
            if gap >= 0.5:
                index = self.vocab.nearest_shift(gap)
                self.ids.append(self.vocab.id(C.TIME_SHIFT, index))
                self.cursor += self.vocab.shift_values_ms[index]
            return
        target = self.time_target(time, self.cursor, minimum=self.cursor)
        self.shifts(target - self.cursor)
        self.cursor = target

    def time_target(self, time: float, base: float, minimum: float) -> float:
        """The grid time (base + k steps, >= minimum) that reads back nearest to `time`.

        Error feedback: quantizing against the decoded time keeps the error within half a step
        however many objects come before; trying the neighbouring steps too, against the
        reader's own snapping, keeps an off-beat object from snapping onto the wrong tick.
        """
        step = self.config.time_step_ms
        nearest = base + round((time - base) / step) * step
        if nearest >= minimum and abs(self.decoded(nearest) - time) < 1:
            return nearest  # the common case: it already reads back to the map's own time
        candidates = [c for c in (nearest, nearest - step, nearest + step) if c >= minimum]
        if not candidates:
            return minimum
        return min(candidates, key=lambda c: (abs(self.decoded(c) - time), abs(c - time)))

    def decoded(self, t: float) -> float:
        """The time the reader writes for grid time `t` (mirrors `_Reader.time`); memoised, as
        each object asks about the same few grid times several times."""
        value = self._decoded.get(t)
        if value is None:
            value = self.ticks.snap_ms(t, self.tolerance) if self.ticks else math.floor(t + 0.5)
            self._decoded[t] = value
        return value

    def shifts(self, span: float) -> None:
        """Emit chained TIME_SHIFTs covering `span` ms, a whole number of steps."""
        values = self.vocab.shift_values_ms
        fine_top = values[self.config.fine_shift_bins - 1]
        step = self.config.time_step_ms
        remaining = span
        while remaining > fine_top + step / 2:
            index = max(i for i, v in enumerate(values) if v <= remaining)
            self.ids.append(self.vocab.id(C.TIME_SHIFT, index))
            remaining -= values[index]
        if remaining >= step / 2:
            self.ids.append(self.vocab.id(C.TIME_SHIFT, self.vocab.nearest_shift(remaining)))

    def end_target(self, end: float) -> float:
        """The grid time of a slider's or spinner's end: at least one step after its start."""
        step = self.config.time_step_ms
        return self.time_target(end, self.cursor, minimum=self.cursor + step)

    # -- positions and objects --------------------------------------------------------------
    def position(self, x: float, y: float) -> None:
        self.cell((self.vocab.x_index(x), self.vocab.y_index(y)))

    def cell(self, cell: tuple[int, int]) -> None:
        self.ids += [self.x_start + cell[0], self.y_start + cell[1]]  # cells are in range

    def anchor_cells(self, head: tuple[float, float],
                     points: Sequence[tuple[float, float]]) -> list[tuple[int, int]]:
        """Grid cells of a slider's anchors that keep equal anchors equal (red anchors) and
        distinct ones distinct: two close anchors merged into one cell would become a red anchor
        and change the curve, so the second moves one cell along their real offset."""
        vocab = self.vocab
        cells = []
        previous, previous_cell = head, (vocab.x_index(head[0]), vocab.y_index(head[1]))
        for point in points:
            cell = (vocab.x_index(point[0]), vocab.y_index(point[1]))
            if point != previous and cell == previous_cell:
                dx, dy = point[0] - previous[0], point[1] - previous[1]
                if abs(dx) >= abs(dy):
                    cell = (_clamp_cell(cell[0] + (1 if dx > 0 else -1), self.config.x_bins),
                            cell[1])
                else:
                    cell = (cell[0],
                            _clamp_cell(cell[1] + (1 if dy > 0 else -1), self.config.y_bins))
            elif point == previous:
                cell = previous_cell
            cells.append(cell)
            previous, previous_cell = point, cell
        return cells

    def slider(self, slider: Slider) -> None:
        curves = self.config.slider_curves
        letter = self.curve_letter(slider)
        self.ids.append(self.vocab.id(C.START_SLIDER, curves.index(letter)))
        head = (self.vocab.x_index(slider.x), self.vocab.y_index(slider.y))
        self.cell(head)
        points = (slider.points or [(slider.x, slider.y)])[: self.max_anchors]
        segments = slider.segment_types if self.config.slider_segments else {}
        cells = self.anchor_cells((slider.x, slider.y), points)
        end = self.end_target(slider.end_time) if self.config.slider_end_time else None
        if end is not None and letter == slider.curve_type[0]:
            cells = self.fit_anchors(slider, head, points, cells, end)
        for index, cell in enumerate(cells):
            if index in segments:
                segment = segments[index][0]
                segment = segment if segment in curves else "B"
                self.ids.append(self.vocab.id(C.START_SLIDER, curves.index(segment)))
            self.ids.append(self.vocab.id(C.ADD_SLIDER_ANCHOR))
            self.cell(cell)
        if end is not None:
            self.shifts(end - self.cursor)
        repeats = min(slider.slides - 1, self.config.max_repeats)
        self.ids.append(self.vocab.id(C.END_SLIDER, repeats))

    def fit_anchors(self, slider: Slider, head: tuple[int, int],
                    points: list[tuple[float, float]], cells: list[tuple[int, int]],
                    end: float) -> list[tuple[int, int]]:
        """Cells whose path ends where the original's does, under the length the reader will
        compute from the decoded start and end times (see `anchor_fit`)."""
        start = self.decoded(self.cursor)
        if start == slider.time and slider.length and slider.duration:
            velocity = slider.slides * slider.length / slider.duration  # as parsed
        else:
            probe = Slider(0, 0, start)
            velocity = slider_velocity(probe, self.beatmap.difficulty, self.control_points)
        length = velocity * (max(self.decoded(end), start + 1) - start) / max(slider.slides, 1)
        xs, ys = self.rounded_cells

        def cell_point(cell: tuple[int, int]) -> tuple[float, float]:
            return xs[cell[0]], ys[cell[1]]

        # On the grid already (a map made with grid snap) and the same length: nothing to fit.
        if (cell_point(head) == (slider.x, slider.y)
                and all(cell_point(c) == p for c, p in zip(cells, points))
                and abs(length - (slider.length or 0.0)) < 0.5):
            return cells

        fit = AnchorFit((float(slider.x), float(slider.y)),
                        [(float(x), float(y)) for x, y in points], slider.length or None,
                        cell_point(head), cells, slider.curve_type, slider.segment_types,
                        length, cell_point, (self.config.x_bins, self.config.y_bins))
        return fit.refine()

    @cached_property
    def rounded_cells(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Cell centres as the reader writes them (whole osu!pixels)."""
        return (tuple(float(round(x)) for x in self.vocab.x_values),
                tuple(float(round(y)) for y in self.vocab.y_values))

    def curve_letter(self, slider: Slider) -> str:
        """The curve osu! actually draws, where the vocabulary has it.

        A perfect circle through three colinear points is drawn as a line (stable's rule, kept
        by lazer); after quantization the points may no longer be colinear, so say L outright.
        """
        letter = slider.curve_type[0]
        if letter == "P" and len(slider.points) == 2 and not slider.segment_types:
            _, types = control_points(slider, self.format_version)
            letter = types[0][0] if types and types[0] else letter
        if letter not in self.config.slider_curves:
            letter = "B"  # the seed has no Catmull; a Bezier through the same anchors is close
        return letter

    def spinner(self, spinner: Spinner) -> None:
        self.ids.append(self.vocab.id(C.PLACE_SPINNER))
        if self.config.spinner_duration_bins:
            index = self.vocab.spinner_duration_index(spinner.end_time - spinner.time)
            self.ids.append(self.vocab.id(C.SPINNER_DURATION, index))
        else:
            self.shifts(self.end_target(spinner.end_time) - self.cursor)
        self.ids.append(self.vocab.id(C.END_SPINNER))


def _clamp_cell(index: int, size: int) -> int:
    return min(max(index, 0), size - 1)
