"""Token ids -> hit objects: reading a sequence back onto a template beatmap (DESIGN §4).

The template supplies metadata, difficulty and timing. A slider's length comes from its end time
and the template's slider velocity, so it ends where its duration says, as in the osu! editor;
times snap to the template's beat ticks when one is within tolerance. The grammar rejects an
invalid sequence at its first bad token.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.beatmap.model import Beatmap, Circle, HitObject, Slider, Spinner
from core.beatmap.ticks import TickGrid
from core.beatmap.timing import ControlPoints, annotate_sliders, slider_velocity
from core.tokens.grammar import Grammar, GrammarError, GrammarWalker
from core.tokens.tokenizer import snap_tolerance
from core.tokens.vocab import Category, Vocab

C = Category


@dataclass(frozen=True)
class DetokenizeOptions:
    origin_ms: float = 0.0  # the time that the first TIME_SHIFT counts from
    snap: bool = True  # move times to the template's beat ticks when within tolerance
    snap_tolerance_ms: float | None = None  # None: half a time step plus 1 ms


class DetokenizeError(ValueError):
    """An invalid token sequence; names the position of the first bad token."""

    def __init__(self, message: str, position: int) -> None:
        self.position = position
        super().__init__(message)


def detokenize(ids: Sequence[int], template: Beatmap, vocab: Vocab,
               options: DetokenizeOptions = DetokenizeOptions()) -> Beatmap:
    """A copy of `template` whose hit objects are those the tokens describe."""
    beatmap = copy.deepcopy(template)  # its format version too (core.beatmap.writer)
    beatmap.hit_objects = decode_objects(ids, template, vocab, options)
    annotate_sliders(beatmap)
    return beatmap


def decode_objects(ids: Sequence[int], template: Beatmap, vocab: Vocab,
                   options: DetokenizeOptions = DetokenizeOptions()) -> list[HitObject]:
    """The hit objects of a token sequence, timed and shaped with the template's timing."""
    reader = _Reader(vocab, template, options)
    walker = GrammarWalker(Grammar(vocab.config))
    if ids and 0 <= ids[0] < len(vocab) and vocab.category(ids[0]) is not C.SOS:
        walker.step(C.SOS)  # a bare object sequence is read as if SOS came first
        walker.position = 0
    for position, token in enumerate(ids):
        if not 0 <= token < len(vocab):
            raise DetokenizeError(f"token {position} ({token}) is outside the vocabulary "
                                  f"of size {len(vocab)}", position)
        category, index = vocab.split(token)
        try:
            walker.step(category, vocab.name(token))
        except GrammarError as e:
            raise DetokenizeError(str(e), position) from e
        reader.token(category, index)
    if not ids:
        raise DetokenizeError("the sequence is empty: no token to read", 0)
    if not walker.at_object_boundary:
        raise DetokenizeError(f"the sequence ends inside an object (after token {len(ids) - 1})",
                              len(ids))
    annotate_sliders(dataclasses.replace(template, hit_objects=reader.objects))  # durations
    return reader.objects


class _Reader:
    def __init__(self, vocab: Vocab, template: Beatmap, options: DetokenizeOptions) -> None:
        self.vocab = vocab
        self.template = template
        self.control_points = ControlPoints(template.timing_points)
        self.ticks = TickGrid(template.timing_points) if options.snap else None
        self.tolerance = snap_tolerance(vocab, options.snap_tolerance_ms)
        self.cursor = options.origin_ms
        self.objects: list[HitObject] = []
        self.new_combo = False
        self.pending: HitObject | None = None
        self.coords: list[float] = []
        self.head_placed = False  # a slider's first position is its head, the rest anchors
        self.segment: str | None = None  # a segment letter waiting for its anchor
        self.end = 0.0  # a slider's or spinner's end, from its own shifts

    def token(self, category: Category, index: int) -> None:
        vocab = self.vocab
        if category is C.TIME_SHIFT:
            if self.pending is None:
                self.cursor += vocab.shift_values_ms[index]
            else:
                self.end += vocab.shift_values_ms[index]
        elif category is C.NEW_COMBO:
            self.new_combo = True
        elif category is C.PLACE_CIRCLE:
            self.begin(Circle(0, 0, self.time(self.cursor)))
        elif category is C.START_SLIDER and isinstance(self.pending, Slider):
            self.segment = vocab.config.slider_curves[index]  # for the next anchor
        elif category is C.START_SLIDER:
            curve = vocab.config.slider_curves[index]
            self.begin(Slider(0, 0, self.time(self.cursor), curve_type=curve))
        elif category is C.PLACE_SPINNER:
            self.begin(Spinner(256, 192, self.time(self.cursor)))
        elif category is C.COORD_X:
            self.coords.append(vocab.x_value(index))
        elif category is C.COORD_Y:
            self.coords.append(vocab.y_value(index))
            self.place(round(self.coords[0]), round(self.coords[1]))
            self.coords.clear()
        elif category is C.SPINNER_DURATION:
            self.end += vocab.spinner_durations_ms[index]
        elif category is C.END_SLIDER:
            self.finish_slider(index)
        elif category is C.END_SPINNER:
            spinner = self.pending
            spinner.spinner_end = max(self.time(self.end), spinner.time)
            self.complete()

    def time(self, t: float) -> float:
        if self.ticks:
            return self.ticks.snap_ms(t, self.tolerance)
        return math.floor(t + 0.5)

    def begin(self, obj: HitObject) -> None:
        obj.new_combo = self.new_combo
        self.new_combo = False
        self.pending = obj
        self.head_placed = False
        self.end = self.cursor

    def place(self, x: int, y: int) -> None:
        obj = self.pending
        if isinstance(obj, Slider) and self.head_placed:
            if self.segment:
                obj.segment_types[len(obj.points)] = self.segment
                self.segment = None
            obj.points.append((x, y))
            return
        obj.x, obj.y = x, y
        self.head_placed = True
        if isinstance(obj, Circle):
            self.complete()

    def finish_slider(self, repeats: int) -> None:
        slider = self.pending
        slider.slides = repeats + 1
        if self.vocab.config.slider_end_time:
            end = max(self.time(self.end), slider.time + 1)
            velocity = slider_velocity(slider, self.template.difficulty, self.control_points)
            slider.length = round(velocity * (end - slider.time) / slider.slides, 4)
        self.complete()

    def complete(self) -> None:
        self.objects.append(self.pending)
        self.pending = None
