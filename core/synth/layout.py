"""Where a synthetic map's objects go: a cursor that walks the playfield, spacing set by rhythm.

As a mapper with distance snap on: the distance between two objects grows with the time between
them (osu!pixels per beat), streams are packed tight, and harder maps jump further. The cursor
bounces off the edges, so every head, anchor and slider path stays inside the 512x384 playfield.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.beatmap.model import PLAYFIELD_HEIGHT, PLAYFIELD_WIDTH, CurveType
from core.spacing import SPINNER_POSITION

MARGIN = 24  # heads stay this far from the edges; slider bodies may use the whole playfield
MAX_SPAN_PX = 250  # a straight span fits from any head inside the margin (>= 256 px of room)
MAX_DISTANCE_PX = 300
STREAM_BEATS = 0.5  # gaps shorter than this are stream spacing
REST_BEATS = 1.5  # a longer gap is a rest, not a reason to jump further


@dataclass(frozen=True)
class Spacing:
    """How one difficulty spaces its objects."""

    px_per_beat: float  # distance between objects one beat apart (distance snap x 100 x SM)
    stream_px: float  # distance inside a stream
    jump: float  # spacing factor for a jump
    jump_chance: float  # chance that a strong beat after a half-beat gap or more is a jump
    turn: float  # std. dev. of the direction change between objects, radians


@dataclass
class SliderShape:
    curve_type: str
    points: list[tuple[int, int]]


class Layout:
    """Places objects one after another, keeping the cursor (the last object's end)."""

    def __init__(self, rng: np.random.Generator, spacing: Spacing) -> None:
        self.rng = rng
        self.spacing = spacing
        self.cursor = np.array([PLAYFIELD_WIDTH / 2, PLAYFIELD_HEIGHT / 2])
        self.angle = float(rng.uniform(0, 2 * math.pi))
        self.bend = 0.3  # a stream's steady curvature, radians per object

    def spinner(self) -> None:
        """A spinner leaves the cursor at the centre (core.spacing.SPINNER_POSITION)."""
        self.cursor = np.array(SPINNER_POSITION, dtype=float)

    def circle(self, gap_beats: float, strong: bool) -> tuple[int, int]:
        """The next head `gap_beats` after the previous object's end (a strong beat may jump)."""
        s = self.spacing
        if gap_beats < STREAM_BEATS:
            distance = s.stream_px
            self.angle += self.bend
        else:
            distance = s.px_per_beat * min(gap_beats, REST_BEATS)
            if strong and self.rng.random() < s.jump_chance:
                distance *= s.jump
                self.angle += math.pi + float(self.rng.normal(0, 0.5))  # back across the screen
            else:
                self.angle += float(self.rng.normal(0, s.turn))
            self.bend = float(self.rng.choice((-0.3, 0.3)))
        distance = min(distance, MAX_DISTANCE_PX)
        head = self._step(self.cursor, distance)
        self.cursor = head
        return round(float(head[0])), round(float(head[1]))

    def slider(self, gap_beats: float, strong: bool, span_px: float,
               slides: int) -> tuple[tuple[int, int], SliderShape]:
        """Head and path of a slider whose spans are `span_px` long (at most `MAX_SPAN_PX`)."""
        if span_px > MAX_SPAN_PX:
            raise ValueError(f"slider span {span_px:.0f} px over {MAX_SPAN_PX}: add repeats")
        head = self.circle(gap_beats, strong)
        start = np.array(head, dtype=float)
        curved = span_px >= 60 and self.rng.random() < 0.6
        bend = float(self.rng.uniform(0.6, 1.6) * self.rng.choice((-1, 1))) if curved else 0.0
        turns = (0.0, 0.8, -0.8, 1.6, -1.6, 2.4, -2.4, math.pi)
        for turn in turns:
            path = _path(start, self.angle + turn, bend, span_px)
            if _inside(path):
                break
        else:
            # Straight towards the farther side, which is at least 256 px away.
            toward = 0.0 if head[0] < PLAYFIELD_WIDTH / 2 else math.pi
            path = _path(start, toward, 0.0, span_px)
        shape, end, direction = path.shape(), path.point(span_px), path.direction(span_px)
        if slides % 2 == 0:  # an even number of spans ends back on the head
            end, direction = start, direction + math.pi
        self.cursor, self.angle = end, direction
        return head, shape

    def _step(self, origin: np.ndarray, distance: float) -> np.ndarray:
        low = np.array([MARGIN, MARGIN])
        high = np.array([PLAYFIELD_WIDTH - MARGIN, PLAYFIELD_HEIGHT - MARGIN])
        point = origin + distance * np.array([math.cos(self.angle), math.sin(self.angle)])
        # Bounce off an edge: mirror the direction on the axis that left the box.
        if not low[0] <= point[0] <= high[0]:
            self.angle = math.pi - self.angle
        if not low[1] <= point[1] <= high[1]:
            self.angle = -self.angle
        point = origin + distance * np.array([math.cos(self.angle), math.sin(self.angle)])
        return np.clip(point, low, high)


@dataclass
class _Path:
    """A straight line (bend 0) or a circular arc that turns by `bend` radians over `length`."""

    start: np.ndarray
    angle: float
    bend: float
    length: float  # a few px past the slider's length: osu! cuts a path, never stretches it here

    def point(self, s: float) -> np.ndarray:
        if self.bend == 0:
            return self.start + s * np.array([math.cos(self.angle), math.sin(self.angle)])
        radius = self.length / abs(self.bend)
        sign = math.copysign(1.0, self.bend)
        normal = sign * np.array([-math.sin(self.angle), math.cos(self.angle)])
        centre = self.start + radius * normal
        a0 = math.atan2(-normal[1], -normal[0])
        a = a0 + sign * s / radius
        return centre + radius * np.array([math.cos(a), math.sin(a)])

    def direction(self, s: float) -> float:
        return self.angle + self.bend * s / self.length

    def shape(self) -> SliderShape:
        if self.bend == 0:
            return SliderShape(CurveType.LINEAR, [_int_point(self.point(self.length))])
        anchors = [self.point(self.length / 2), self.point(self.length)]
        return SliderShape(CurveType.PERFECT, [_int_point(p) for p in anchors])


def _path(start: np.ndarray, angle: float, bend: float, span_px: float) -> _Path:
    return _Path(start, angle, bend, span_px + 4)


def _inside(path: _Path) -> bool:
    points = np.array([path.point(s) for s in np.linspace(0, path.length, 16)])
    return bool(np.all(points >= 1) and np.all(points[:, 0] <= PLAYFIELD_WIDTH - 1)
                and np.all(points[:, 1] <= PLAYFIELD_HEIGHT - 1))


def _int_point(p: np.ndarray) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))
