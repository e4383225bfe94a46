"""What the decoding rules know of one sequence, token by token (core.constraints' state).

`SequenceState.step` updates it per token, never rescanning the history: the cursor and the
bodies of sliders and spinners, the last object's end, start, position and move, the counts the
rhythm and slider-share rules need, and the window's tests (ticks, the music's pull, the join).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from core.beatmap.curves import slider_path
from core.beatmap.model import Slider
from core.object_mix import is_long
from core.playfield import keep_arc_inside
from core.rhythm import GAP_LEVELS_MS, MAX_GAP_MS
from core.spacing import SPINNER_POSITION, end_position
from core.spacing_limit import STACK_PX, STREAM_GAP_MS, streaming
from core.tokens.grammar import GrammarWalker, State
from core.tokens.vocab import Category, Vocab

C = Category
EARLIER_KEPT = 4  # objects before the last whose ends the state remembers


@dataclass
class SequenceState:
    """What the constraints know about one sequence; times in ms from the window's start."""

    walker: GrammarWalker
    vocab: Vocab
    min_start: float = 0.0  # new objects start at or after this (this window's start)
    window_end: float = math.inf  # ... and before this
    cursor: float = 0.0  # the current object's start
    body: float = 0.0  # shifts inside a slider or spinner (its duration so far)
    last_end: float = -math.inf  # the end of the last placed object
    after_spinner: bool = False  # whether that object is a spinner (SPINNER_RECOVERY_MS)
    last_start: float = -math.inf  # ... and its start
    objects: int = 0
    circles: int = 0  # ... of them circles, and sliders (DecodingOptions.slider_share)
    sliders: int = 0
    reverses: int = 0  # ... and of those, sliders that go back (DecodingOptions.reverse_share)
    longs: int = 0  # ... and long ones (DecodingOptions.long_share)
    # Gaps from one object's start to the next one's so far, and how many of them were shorter
    # than each of core.rhythm.GAP_LEVELS_MS (DecodingOptions.gap_shares).
    gaps: int = 0
    short_gaps: tuple[int, ...] = (0,) * len(GAP_LEVELS_MS)
    finished: bool = False
    # Where the last placed object ends (osu!pixels; None before the first) and the x of the
    # object being placed, for the spacing limit.
    last_position: tuple[float, float] | None = None
    path: tuple[tuple[float, float], ...] = ()  # the slider being placed: head and anchors,
    curve: str = "B"  # its curve letter,
    segments: tuple[tuple[int, str], ...] = ()  # and (anchor index, letter) of later segments
    pending_x: float = 0.0
    last_move: tuple[float, float] | None = None  # (gap ms, distance px) to the last head
    last_heading: tuple[float, float] | None = None  # (dx, dy) of that move, circle to circle
    after_circle: bool = False  # whether the object before the one being placed is a circle
    last_was_circle: bool = False  # ... and whether that one is
    last_head: tuple[float, float] | None = None  # where the last object started
    # (x, y, end ms) of up to EARLIER_KEPT objects before the last, where they ended, oldest
    # first (core.spacing_limit keeps the next head clear of those still on screen too) ...
    earlier: tuple[tuple[float, float, float], ...] = ()
    # ... and of the last one, which joins them when the next object starts
    last_ended: tuple[float, float, float] | None = None
    # Runs of 1/4 notes (core.stacks): how many started, how many of those stacked, the notes
    # of the current one (0: the head being placed steps from no run yet) and whether it stacks
    run_starts: int = 0
    stacked_starts: int = 0
    run_notes: int = 0
    run_stacked: bool = False
    # Stream steps that followed a step so far, and how many of them turned back from it
    # (DecodingOptions.stream_turns; counted as core.streams.stream_steps does)
    turnable: int = 0
    stream_turns: int = 0
    gap: float = math.inf  # from the last object's end to the start of the one being placed
    start_gap: float = math.inf  # ... and from its start
    # osu!pixels per ms a slider starting at a window time travels (the map's slider velocity),
    # to know where a slider ends; None: at its last anchor.
    slider_speed: Callable[[float], float] | None = None
    # ms per beat at a window time (the map's timing), for long sliders; None: unknown
    beat_ms: Callable[[float], float] | None = None
    # Whether an object may start at a cursor time: on a tick where the map's timing is known (it
    # will be snapped onto it there), and not in silence; None: anywhere.
    on_tick: Callable[[float], bool] | None = None
    # Whether a slider may end at a cursor time: on a tick where the map's timing is known
    # (silence or not); None: anywhere
    end_on_tick: Callable[[float], bool] | None = None
    # The music's pull (nats) per time step of the window (core.music_pull); None: none
    pull: Tensor | None = None
    # Whether a window time is in a soft passage of the song (core.music_presence.soft_passages:
    # DecodingOptions.soft_bias and soft_spacing); None: none known
    soft: Callable[[float], bool] | None = None
    # The window time of the song's next accent after a window time (core.accents: a slider
    # neither ends on it nor runs over it); None: no accents known
    next_accent: Callable[[float], float] | None = None
    # (window ms, x, y) of the kept object the new ones lead into (core.spacing_limit's join)
    join: tuple[float, float, float] | None = None
    # The latest start (window ms) the next object may have after an object ending at a window
    # time (or, before any, after the generation start): where the music goes on, a gap may not
    # leave it unmapped for long (core.generate's fill); None: any gap
    fill: Callable[[float], float] | None = None
    # Where the generation started (window ms; None: min_start). A later window's min_start is
    # where the last one stopped, and its prefix's last object is a new one: the fill counts
    # from that object's end (measured from min_start, a gap across a window's seam had run a
    # bar and a quarter where the fill allows 0.95 bar; QA round 5)
    generation_start: float | None = None
    # No spinner starts before this (core.generate asks a window again without one it took back)
    spinners_from: float = -math.inf
    # Whether a spinner may start at a window time (core.spinner_rules: where the music holds);
    # None: anywhere
    spinner_ok: Callable[[float], bool] | None = None
    # ... and the latest window time one starting at a window time may end; None: any
    spinner_until: Callable[[float], float] | None = None
    # Whether a slider's path may change curve type midway (a START_SLIDER inside it): lazer's
    # v128 files hold such paths; osu! stable's v14 has one type per slider and reads another
    # shape, so a map written as v14 gets none
    segments_allowed: bool = True

    def step(self, token: int) -> None:
        category, index = self.vocab.split(token)
        state = self.walker.state
        self.walker.step(category)
        if category is C.TIME_SHIFT:
            if state is State.OBJECT:
                self.cursor += self.vocab.shift_values_ms[index]
            else:
                self.body += self.vocab.shift_values_ms[index]
        elif category is C.SPINNER_DURATION:
            self.body += self.vocab.spinner_durations_ms[index]
        elif category in (C.PLACE_CIRCLE, C.START_SLIDER, C.PLACE_SPINNER) and \
                state in (State.OBJECT, State.NEW_COMBO):
            if category is C.START_SLIDER:
                self.curve, self.segments = self.vocab.config.slider_curves[index], ()
            self.body = 0.0
            self.objects += 1
            self.after_circle = self.last_was_circle
            self.last_was_circle = category is C.PLACE_CIRCLE
            self.circles += category is C.PLACE_CIRCLE
            self.sliders += category is C.START_SLIDER
            gap = self.cursor - self.last_start
            if gap <= MAX_GAP_MS:  # not the first object, nor one after a pause
                self.gaps += 1
                self.short_gaps = tuple(n + (gap < level)
                                        for n, level in zip(self.short_gaps, GAP_LEVELS_MS))
            self.gap, self.start_gap = self.cursor - self.last_end, gap
            if self.last_ended is not None:
                self.earlier = (*self.earlier, self.last_ended)[-EARLIER_KEPT:]
            self.last_ended = None if self.last_position is None or self.after_spinner \
                else (*self.last_position, self.last_end)
            self.last_end = self.last_start = self.cursor
            self.after_spinner = False
        elif category is C.START_SLIDER:  # a new segment from the next anchor on
            letter = self.vocab.config.slider_curves[index]
            self.segments = (*self.segments, (len(self.path) - 1, letter))
        elif category in (C.END_SLIDER, C.END_SPINNER):
            self.last_end = self.cursor + self.body
            if category is C.END_SPINNER:
                self.last_position = SPINNER_POSITION
                self.after_spinner = True
            else:
                self.reverses += index > 0
                if self.beat_ms is not None:
                    self.longs += is_long(self.body / (index + 1), self.beat_ms(self.cursor))
                if self.path:
                    self._end_slider(spans=index + 1)
        elif category is C.COORD_X:
            self.pending_x = self.vocab.x_values[index]
        elif category is C.COORD_Y:
            point = (self.pending_x, self.vocab.y_values[index])
            if state in (State.CIRCLE_Y, State.HEAD_Y):
                self._count_run(point)
                self._count_turn(point)
            if state in (State.CIRCLE_Y, State.HEAD_Y) and self.last_position is not None:
                self.last_move = (self.gap, math.dist(self.last_position, point))
                self.last_heading = (point[0] - self.last_position[0],
                                     point[1] - self.last_position[1]) \
                    if state is State.CIRCLE_Y and self.after_circle else None
            if state is State.CIRCLE_Y:
                self.last_position = self.last_head = point
            elif state is State.HEAD_Y:
                self.path, self.last_head = (point,), point
            else:
                self.path = (*self.path, point)
        elif category is C.EOS:
            self.finished = True

    def stream_heading(self) -> tuple[float, float] | None:
        """The last step's (dx, dy) where the head being placed and the last one are both a
        stream's steps (the last one not a stack): what the next may turn back from."""
        heading, last = self.last_heading, self.last_move
        if heading is None or last is None or last[0] >= STREAM_GAP_MS \
                or not streaming(self) or math.hypot(*heading) < STACK_PX:
            return None
        return heading

    def _count_turn(self, head: tuple[float, float]) -> None:
        """Count the head just placed as a stream step after a step, and whether it turns back
        from that step (DecodingOptions.stream_turns)."""
        heading = self.stream_heading()
        if heading is None:
            return
        dx, dy = head[0] - self.last_position[0], head[1] - self.last_position[1]
        if math.hypot(dx, dy) >= STACK_PX:
            self.turnable += 1
            self.stream_turns += heading[0] * dx + heading[1] * dy < 0

    def _count_run(self, head: tuple[float, float]) -> None:
        """Count the head just placed into its run of 1/4 notes (core.stacks): a step under
        STREAM_GAP_MS after a circle goes on the run (its first starts one), any other head
        ends it."""
        if not streaming(self):
            self.run_notes = 0
            return
        stacked = math.dist(self.last_position, head) < STACK_PX
        if self.run_notes == 0:
            self.run_starts += 1
            self.stacked_starts += stacked
            self.run_notes, self.run_stacked = 2, stacked
        else:
            self.run_notes += 1
            self.run_stacked = self.run_stacked and stacked

    def slider(self, length: float | None = None) -> Slider:
        """The slider being placed, as osu! will draw it (an arc that would leave the playfield
        is a Bezier, see keep_arc_inside); `length` None: its whole curve."""
        (x, y), *anchors = self.path
        slider = Slider(x=x, y=y, time=0.0, curve_type=self.curve, points=list(anchors),
                        segment_types=dict(self.segments), length=length)
        keep_arc_inside(slider)
        return slider

    def _end_slider(self, spans: int) -> None:
        """Where (and, without end times in the tokens, when) the slider just placed ends
        (core.spacing.end_position): as far along its path as its velocity carries it in one
        span, back at its head after an even number of spans; at its last anchor when the
        velocity is unknown."""
        if self.slider_speed is None or len(self.path) < 2:
            self.last_position = self.path[0] if spans % 2 == 0 else self.path[-1]
            return
        speed = self.slider_speed(self.cursor)
        length = None  # the `seed` language has no end times: a slider runs its whole curve
        if self.body or self.vocab.config.slider_end_time:
            length = speed * self.body / spans
        slider = self.slider(length)
        slider.slides = spans
        if length is None:
            try:
                distance = slider_path(slider, 14).distance
            except (ValueError, ArithmeticError):
                distance = 0.0
            self.last_end = self.cursor + spans * distance / max(speed, 1e-6)
        self.last_position = end_position(slider, 14)

    def clone(self) -> SequenceState:
        walker = GrammarWalker(self.walker.grammar, self.walker.state)
        walker.anchors, walker.position = self.walker.anchors, self.walker.position
        copy = SequenceState(**{k: v for k, v in vars(self).items() if k != "walker"},
                             walker=walker)
        return copy
