"""The token grammar: which category may come next, as a small state machine.

One object is
    TIME_SHIFT* NEW_COMBO? (circle | slider | spinner)
    circle  = PLACE_CIRCLE COORD_X COORD_Y
    slider  = START_SLIDER COORD_X COORD_Y anchor+ TIME_SHIFT* END_SLIDER
    anchor  = START_SLIDER? ADD_SLIDER_ANCHOR COORD_X COORD_Y
    spinner = PLACE_SPINNER (SPINNER_DURATION | TIME_SHIFT+) END_SPINNER
and a sequence is SOS object* EOS PAD*. A slider's TIME_SHIFTs (one or more, when the vocabulary
carries slider ends) measure its duration from its own start; they do not move the time cursor.
A START_SLIDER before an anchor (where the vocabulary allows segments) starts a new curve segment
there, as a type letter in the middle of a lazer (v128) slider path does.

The detokenizer walks it to reject an invalid sequence at its first bad token; decoding turns
`allowed()` into a logit mask (each category is a contiguous id range, so a mask is a few slices).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from core.tokens.vocab import Category, VocabConfig

C = Category


class State(Enum):
    BEGIN = auto()  # before SOS
    OBJECT = auto()  # between objects: a shift, an object or EOS
    NEW_COMBO = auto()  # after NEW_COMBO: an object must follow
    CIRCLE_X = auto()
    CIRCLE_Y = auto()
    HEAD_X = auto()
    HEAD_Y = auto()
    FIRST_ANCHOR = auto()  # a slider needs at least one anchor
    ANCHOR_X = auto()
    ANCHOR_Y = auto()
    SLIDER_BODY = auto()  # more anchors, or the slider's end
    SLIDER_TIME = auto()  # inside the slider's duration shifts
    SPINNER = auto()
    SPINNER_TIME = auto()
    SPINNER_END = auto()
    DONE = auto()  # after EOS: padding only


_OBJECT_STARTS = (C.PLACE_CIRCLE, C.START_SLIDER, C.PLACE_SPINNER)


class GrammarError(ValueError):
    """A token that the grammar does not allow where it stands."""

    def __init__(self, position: int, got: str, expected: tuple[Category, ...]) -> None:
        self.position = position
        self.got = got
        self.expected = expected
        names = ", ".join(c.value for c in expected) or "nothing"
        super().__init__(f"token {position} ({got}) is not allowed here; expected one of: {names}")


@dataclass(frozen=True)
class Grammar:
    """The transition table for one vocabulary config."""

    config: VocabConfig
    max_anchors: int = 64  # a bound for decoding; real maps in the corpus use at most 59

    def allowed(self, state: State, anchors: int = 0) -> tuple[Category, ...]:
        """Categories that may follow in `state` (`anchors`: anchors placed in this slider)."""
        if state is State.BEGIN:
            return (C.SOS,)
        if state is State.OBJECT:
            return (C.TIME_SHIFT, C.NEW_COMBO, *_OBJECT_STARTS, C.EOS)
        if state is State.NEW_COMBO:
            return _OBJECT_STARTS
        if state in (State.CIRCLE_X, State.HEAD_X, State.ANCHOR_X):
            return (C.COORD_X,)
        if state in (State.CIRCLE_Y, State.HEAD_Y, State.ANCHOR_Y):
            return (C.COORD_Y,)
        if state is State.FIRST_ANCHOR:
            return (C.ADD_SLIDER_ANCHOR,)
        if state is State.SLIDER_BODY:
            more: tuple[Category, ...] = ()
            if anchors < self.max_anchors:
                more = (C.ADD_SLIDER_ANCHOR,)
                if self.config.slider_segments:
                    more += (C.START_SLIDER,)
            end = (C.TIME_SHIFT,) if self.config.slider_end_time else (C.END_SLIDER,)
            return (*more, *end)
        if state is State.SLIDER_TIME:
            return (C.TIME_SHIFT, C.END_SLIDER)
        if state is State.SPINNER:
            return (C.SPINNER_DURATION,) if self.config.spinner_duration_bins else (C.TIME_SHIFT,)
        if state is State.SPINNER_TIME:
            return (C.TIME_SHIFT, C.END_SPINNER)
        if state is State.SPINNER_END:
            return (C.END_SPINNER,)
        return (C.PAD,)  # DONE

    def next_state(self, state: State, category: Category) -> State:
        """The state after `category`; the caller has checked it is allowed."""
        return _NEXT.get((state, category)) or _NEXT_ANY[category]


# Transitions that depend on where the token stands ...
_NEXT: dict[tuple[State, Category], State] = {
    (State.CIRCLE_X, C.COORD_X): State.CIRCLE_Y,
    (State.CIRCLE_Y, C.COORD_Y): State.OBJECT,
    (State.HEAD_X, C.COORD_X): State.HEAD_Y,
    (State.HEAD_Y, C.COORD_Y): State.FIRST_ANCHOR,
    (State.ANCHOR_X, C.COORD_X): State.ANCHOR_Y,
    (State.ANCHOR_Y, C.COORD_Y): State.SLIDER_BODY,
    (State.SLIDER_BODY, C.START_SLIDER): State.FIRST_ANCHOR,  # a new segment
    (State.OBJECT, C.TIME_SHIFT): State.OBJECT,
    (State.SLIDER_BODY, C.TIME_SHIFT): State.SLIDER_TIME,
    (State.SLIDER_TIME, C.TIME_SHIFT): State.SLIDER_TIME,
    (State.SPINNER, C.TIME_SHIFT): State.SPINNER_TIME,
    (State.SPINNER_TIME, C.TIME_SHIFT): State.SPINNER_TIME,
}
# ... and those that don't.
_NEXT_ANY: dict[Category, State] = {
    C.SOS: State.OBJECT,
    C.EOS: State.DONE,
    C.PAD: State.DONE,
    C.NEW_COMBO: State.NEW_COMBO,
    C.PLACE_CIRCLE: State.CIRCLE_X,
    C.START_SLIDER: State.HEAD_X,
    C.ADD_SLIDER_ANCHOR: State.ANCHOR_X,
    C.END_SLIDER: State.OBJECT,
    C.PLACE_SPINNER: State.SPINNER,
    C.SPINNER_DURATION: State.SPINNER_END,
    C.END_SPINNER: State.OBJECT,
}


class GrammarWalker:
    """Incremental grammar state for one sequence: O(1) per token, as decoding needs."""

    def __init__(self, grammar: Grammar, state: State = State.BEGIN) -> None:
        self.grammar = grammar
        self.state = state
        self.anchors = 0
        self.position = 0

    def allowed(self) -> tuple[Category, ...]:
        return self.grammar.allowed(self.state, self.anchors)

    def step(self, category: Category, name: str | None = None) -> None:
        """Advance over one token; raises `GrammarError` if it is not allowed."""
        allowed = self.allowed()
        if category not in allowed:
            raise GrammarError(self.position, name or category.value, allowed)
        if category is C.START_SLIDER and self.state is not State.SLIDER_BODY:
            self.anchors = 0
        elif category is C.ADD_SLIDER_ANCHOR:
            self.anchors += 1
        self.state = self.grammar.next_state(self.state, category)
        self.position += 1

    @property
    def at_object_boundary(self) -> bool:
        """True between objects: the sequence so far is a whole number of objects."""
        return self.state in (State.OBJECT, State.DONE)
