"""A picture of a map on its music (`kiai preview`): rows of a timeline, each the audio's log-mel
spectrogram with the timing's ticks over it and the map's objects beneath, so a mapper sees at a
glance whether a map sits on the beat.

At the default scale one pixel is one feature frame (5 ms), so an object 10 ms off its onset is
two pixels off the bright vertical line a drum hit makes. Objects not on a tick of the map's
timing (1/1 ... 1/16, within 1 ms) are drawn red. Pillow draws; it is the usual small imaging
library and writes PNG, which is all this needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.audio import FRAME_MS, LATENCY_MS
from core.beatmap.model import Beatmap, HitObject, Hold, Slider, Spinner, TimingPoint
from core.beatmap.ticks import TickGrid, beat_divisor_of

MARGIN, HEADER_H, LABEL_H, LANE_H, ROW_GAP = 12, 38, 14, 30, 12
NO_AUDIO_H = 40  # a row's height where the spectrogram would be, without audio
MAX_ROWS = 120

BACKGROUND = (18, 18, 24)
TEXT = (220, 220, 230)
DOWNBEAT, BEAT, HALF, QUARTER = (255, 255, 255), (200, 200, 210), (150, 150, 165), (95, 95, 110)
THIRD, FINER = (170, 120, 200), (80, 80, 90)  # 1/3 ticks violet, as in the editor; 1/6 and finer
TICK_COLOURS = {2: HALF, 3: THIRD, 4: QUARTER}  # by the coarsest divisor a tick belongs to
CIRCLE, SLIDER, SPINNER, OFF_TICK = (80, 200, 255), (255, 170, 60), (190, 120, 255), (255, 60, 60)
# An inferno-like ramp: dark for quiet, bright yellow for loud.
_RAMP = np.array([(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66),
                  (245, 125, 21), (250, 193, 39), (252, 255, 164)], dtype=np.float32)


@dataclass(frozen=True)
class PreviewOptions:
    start_ms: float | None = None  # default: the song's start (or the first object)
    end_ms: float | None = None  # default: the song's end (or the last object's end)
    row_ms: float = 8000.0  # timeline per row
    px_per_ms: float = 0.2  # 0.2: one pixel per 5 ms feature frame


def render_preview(beatmap: Beatmap, mel: np.ndarray | None,
                   options: PreviewOptions = PreviewOptions()) -> Image.Image:
    """The picture: `mel` is the song's log-mel (n_mels, frames) in [-1, 1], FRAME_MS apart
    (core.audio.audio_features), or None to draw the map without audio."""
    if options.row_ms <= 0 or options.px_per_ms <= 0:
        raise ValueError("row_ms and px_per_ms must be positive")
    objects = sorted(beatmap.hit_objects, key=lambda o: o.time)
    start, end = _span(objects, mel, options)
    rows = math.ceil((end - start) / options.row_ms)
    if rows > MAX_ROWS:
        raise ValueError(f"{(end - start) / 1000:.0f} s at {options.row_ms / 1000:g} s per row "
                         f"is {rows} rows (at most {MAX_ROWS}): give a start and end, or "
                         "longer rows")
    width = round(options.row_ms * options.px_per_ms)
    spec_h = mel.shape[0] if mel is not None else NO_AUDIO_H
    row_h = LABEL_H + spec_h + LANE_H + ROW_GAP
    image = Image.new("RGB", (width + 2 * MARGIN, HEADER_H + rows * row_h), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    grid = TickGrid(beatmap.timing_points)
    off = [o for o in objects if grid and grid.snap(o.time, 1.0) is None]
    _header(draw, font, beatmap, objects, off, bool(grid))
    lut = _lut()
    for row in range(rows):
        row_start = start + row * options.row_ms
        top = HEADER_H + row * row_h
        view = _View(row_start, options.px_per_ms, MARGIN, width, row_start + options.row_ms)
        spec_top = top + LABEL_H
        if mel is not None:
            image.paste(_spectrogram(mel, view, lut), (MARGIN, spec_top))
        _labels(draw, font, view, top)
        _ticks(draw, beatmap.timing_points, beat_divisor_of(beatmap.editor), view, spec_top,
               spec_h, LANE_H)
        off_ids = {id(o) for o in off}
        for obj in objects:
            if obj.end_time >= row_start and obj.time < row_start + options.row_ms:
                _object(draw, obj, view, spec_top + spec_h, id(obj) in off_ids)
    return image


@dataclass(frozen=True)
class _View:
    """One row: ms -> x pixel."""

    start_ms: float
    px_per_ms: float
    left: int
    width: int
    end_ms: float

    def x(self, ms: float) -> float:
        return self.left + (ms - self.start_ms) * self.px_per_ms

    def visible(self, ms: float) -> bool:
        """Whether `ms` is in this row: by time, as the rows share out the objects (a width
        rounded down had dropped the last ms of a row)."""
        return self.start_ms <= ms < self.end_ms


def _span(objects: Sequence[HitObject], mel: np.ndarray | None,
          options: PreviewOptions) -> tuple[float, float]:
    if mel is not None:
        start, end = 0.0, mel.shape[-1] * FRAME_MS
    elif objects:
        start, end = max(0.0, objects[0].time - 1000), max(o.end_time for o in objects) + 1000
    else:
        start, end = 0.0, options.row_ms
    if mel is not None and options.start_ms is not None and options.start_ms >= end:
        raise ValueError(f"the song ends at {_clock(end)}: the start ({_clock(options.start_ms)})"
                         " is after it")
    start = options.start_ms if options.start_ms is not None else start
    # an end past the song's draws to the song's end (no rows of silence)
    if options.end_ms is not None:  # with audio, no later than the song
        end = min(options.end_ms, end) if mel is not None else options.end_ms
    if end <= start:
        raise ValueError(f"nothing to draw: the end ({end:.0f} ms) is not after the start "
                         f"({start:.0f} ms)")
    return start, end


def _clock(ms: float) -> str:
    return f"{int(ms // 60000)}:{ms % 60000 / 1000:06.3f}"


def _lut() -> np.ndarray:
    """256 RGB colours along _RAMP."""
    at = np.linspace(0, len(_RAMP) - 1, 256)
    low = np.floor(at).astype(int).clip(0, len(_RAMP) - 2)
    w = (at - low)[:, None]
    return (_RAMP[low] * (1 - w) + _RAMP[low + 1] * w).astype(np.uint8)


def _spectrogram(mel: np.ndarray, view: _View, lut: np.ndarray) -> Image.Image:
    """The row's columns of `mel` (low bands at the bottom); silence past the song's end."""
    ms = view.start_ms + (np.arange(view.width) + 0.5) / view.px_per_ms
    # the sound heard at beatmap time t is the file's at t + LATENCY_MS (lazer's editor shifts
    # its waveform alike), so a well-timed object sits on its onset in the picture
    frames = np.floor((ms + LATENCY_MS) / FRAME_MS).astype(int)
    inside = (frames >= 0) & (frames < mel.shape[1])
    columns = np.full((mel.shape[0], view.width), -1.0, dtype=np.float32)
    columns[:, inside] = mel[:, frames[inside]]
    levels = np.clip((columns[::-1] + 1) * 127.5, 0, 255).astype(np.uint8)
    return Image.fromarray(lut[levels], "RGB")


def _header(draw: ImageDraw.ImageDraw, font, beatmap: Beatmap, objects: Sequence[HitObject],
            off: Sequence[HitObject], timed: bool) -> None:
    meta = beatmap.metadata
    title = f"{meta.get('Artist', '')} - {meta.get('Title', '')} [{meta.get('Version', '')}]"
    red = [p for p in beatmap.timing_points if p.uninherited and p.beat_length > 0]
    bpm = ", ".join(f"{60000 / p.beat_length:.2f}" for p in red[:3]) + \
        (f" +{len(red) - 3}" if len(red) > 3 else "")
    share = ("no timing: no ticks" if not timed else "no objects" if not objects
             else f"{1 - len(off) / len(objects):.1%} on ticks ({len(off)} off, in red)")
    count = f"{len(objects)} object{'' if len(objects) == 1 else 's'}"
    line = f"{bpm or 'no'} BPM · {count} · {share}"
    draw.text((MARGIN, 6), title, fill=TEXT, font=font)
    draw.text((MARGIN, 20), line, fill=TEXT, font=font)


def _labels(draw: ImageDraw.ImageDraw, font, view: _View, top: int) -> None:
    first = math.ceil(view.start_ms / 1000) * 1000
    for ms in range(int(first), int(view.start_ms + view.width / view.px_per_ms), 1000):
        x = view.x(ms)
        draw.line([(x, top + LABEL_H - 4), (x, top + LABEL_H - 1)], fill=TEXT)
        seconds = ms // 1000
        draw.text((x + 2, top), f"{seconds // 60}:{seconds % 60:02d}", fill=TEXT, font=font)


def _ticks(draw: ImageDraw.ImageDraw, points: Sequence[TimingPoint], divisor: int, view: _View,
           spec_top: int, spec_h: int, lane_h: int) -> None:
    """Bar lines and beats across the spectrogram; the ticks of the map's beat snap divisor
    (1/2 and 1/4 at 1/4, 1/3 at 1/3, ...) as short marks at its edges and across the object
    lane, where they are far enough apart to see."""
    red = sorted((p for p in points if p.uninherited and math.isfinite(p.beat_length)
                  and p.beat_length > 0), key=lambda p: p.time)
    row_end = view.start_ms + view.width / view.px_per_ms
    bottom, lane_bottom = spec_top + spec_h, spec_top + spec_h + lane_h
    for i, point in enumerate(red):
        section_end = red[i + 1].time if i + 1 < len(red) else math.inf
        lo, hi = max(view.start_ms, point.time), min(row_end, section_end)
        if i == 0:
            lo = view.start_ms  # ticks run back from the first point, as in the editor
        if hi <= lo:
            continue
        step = point.beat_length / divisor
        first = math.ceil((lo - point.time) / step - 1e-9)
        for k in range(first, math.floor((hi - point.time) / step) + 1):
            x = view.x(point.time + k * step)
            if k % (divisor * max(point.meter, 1)) == 0:
                draw.line([(x, spec_top), (x, lane_bottom)], fill=DOWNBEAT, width=2)
            elif k % divisor == 0:
                draw.line([(x, spec_top), (x, lane_bottom)], fill=BEAT)
            else:  # each level (1/2, 1/3, ...) drawn where its own ticks are 4 px apart
                level = divisor // math.gcd(k, divisor)
                if point.beat_length / level * view.px_per_ms >= 4:
                    colour = TICK_COLOURS.get(level, FINER)
                    draw.line([(x, spec_top), (x, spec_top + 5)], fill=colour)
                    draw.line([(x, bottom - 5), (x, lane_bottom)], fill=colour)


def _object(draw: ImageDraw.ImageDraw, obj: HitObject, view: _View, lane_top: int,
            off_tick: bool) -> None:
    """One object in its row's lane; a body crossing the row's start or end is cut there (it
    goes on in the next row), not drawn into the margin."""
    y = lane_top + LANE_H // 2
    x = view.x(obj.time)
    colour = OFF_TICK if off_tick else None

    def cut(a: float) -> float:
        return min(max(a, view.left), view.left + view.width)
    if isinstance(obj, (Spinner, Slider, Hold)):  # a mania hold: its length, as a slider's
        half = 8 if isinstance(obj, Spinner) else 4
        left, right = cut(x), cut(max(view.x(obj.end_time), x + 2))
        if right > left:
            draw.rounded_rectangle([left, y - half, right, y + half], radius=4,
                                   fill=colour or (SPINNER if isinstance(obj, Spinner) else SLIDER))
        if isinstance(obj, Spinner):
            return
    if isinstance(obj, Slider):
        span = obj.duration / max(obj.slides, 1)
        for repeat in range(1, obj.slides):
            if view.visible(obj.time + repeat * span):
                rx = view.x(obj.time + repeat * span)
                draw.ellipse([rx - 2, y - 2, rx + 2, y + 2], fill=TEXT)
    if view.visible(obj.time):
        draw.ellipse([x - 5, y - 5, x + 5, y + 5], fill=colour or CIRCLE, outline=BACKGROUND)
        draw.line([(x, lane_top - 4), (x, lane_top)], fill=colour or CIRCLE)  # at the spectrogram
