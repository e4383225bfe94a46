"""A window's decoded objects fitted to the map before they are placed: ends on the map's
ticks, and ends by the song's end or the mapper's next kept object (decoding bounds where
objects start, not where their bodies end)."""

from __future__ import annotations

import copy
import math

from core.beatmap.model import Circle, HitObject, Slider, Spinner
from core.beatmap.ticks import TickGrid

MIN_SPINNER_MS = 500.0  # a spinner shorter than this cannot be spun: dropped
# After a spinner the player needs time to find the cursor again: objects had followed within
# 8 ms. About a beat at 150 BPM (the ranking criteria ask a beat or more, by difficulty).
# Decoding keeps it (core.constraints), and a spinner's end snapped later keeps it too.
SPINNER_RECOVERY_MS = 400.0
END_SNAP_MS = 20.0  # a slider's end this near a tick is moved onto it
# ... and a spinner's onto the coarsest tick this near (a beat, else half a beat, else the
# nearest): QA, session 27, found spinner ends off the map's divisor or on 1/6 and 1/12 ticks
SPINNER_SNAP_MS = 150.0


def end_on_a_tick(obj: HitObject, ticks: TickGrid, next_start: float,
                  recovery_ms: float = SPINNER_RECOVERY_MS) -> None:
    """Move a slider's end onto the nearest tick within END_SNAP_MS (by its length, the same
    path), and a spinner's within SPINNER_SNAP_MS, as a mapper's snapped ends are, if still
    before `next_start` (and, moving a spinner's later, `recovery_ms` before it: decoding's
    recovery, DecodingOptions.spinner_recovery_beats): the decoder places ends by time shifts,
    and 3% of slider ends had missed the ticks (AiMod flags unsnapped ends)."""
    if not isinstance(obj, (Slider, Spinner)):
        return
    end = obj.end_time
    tolerances = (1.0, 4.0, 10.0, END_SNAP_MS)
    if isinstance(obj, Spinner):  # its length is free: on the beat where one is near
        tolerances = (SPINNER_SNAP_MS,)
    hit = next((h for tolerance in tolerances
                if (h := ticks.snap(end, tolerance)) is not None), None)
    if hit is None or abs(hit[0] - end) < 1.0:
        return
    tick = math.floor(hit[0] + 1e-6)  # as osu! writes a tick's time
    if tick >= next_start - 1:  # it would end on (or in) the next object
        return
    if isinstance(obj, Spinner):
        # later only where the player keeps the recovery before the next object
        if tick - obj.time >= MIN_SPINNER_MS and (
                tick <= end or tick <= next_start - recovery_ms):
            obj.spinner_end = tick
        return
    if obj.duration and obj.length and tick > obj.time:
        scale = (tick - obj.time) / obj.duration
        if 0.5 <= scale <= 2.0:  # a short slider is not squeezed to a point, nor doubled
            obj.length = round(obj.length * scale, 4)  # as a mapper's file writes it
            obj.duration = tick - obj.time


def ending_by(obj: HitObject, end_ms: float) -> HitObject | None:
    """`obj`, made to end by `end_ms` (the song's end, or the mapper's next kept object):
    a slider with fewer repeats, or a circle at its head where even one span runs past; a
    spinner cut short, or dropped where under MIN_SPINNER_MS would be left (or is: no one can
    spin it). Decoding bounds where objects start, not where their bodies end."""
    if isinstance(obj, Spinner) and min(obj.end_time, end_ms) - obj.time < MIN_SPINNER_MS:
        return None
    if obj.end_time <= end_ms:
        return obj
    if isinstance(obj, Slider) and obj.duration:
        span = obj.duration / obj.slides
        slides = int((end_ms - obj.time) // span) if span > 0 else 0
        if slides >= 1:
            fitted = copy.deepcopy(obj)
            fitted.slides, fitted.duration = slides, span * slides
            for edges in ("edge_sounds", "edge_sets"):  # one per edge: slides + 1
                if getattr(fitted, edges):
                    setattr(fitted, edges, "|".join(getattr(fitted, edges).split("|")
                                                    [:slides + 1]))
            return fitted
    if isinstance(obj, Spinner):  # (one left under MIN_SPINNER_MS was dropped above)
        fitted = copy.deepcopy(obj)
        fitted.spinner_end = math.floor(end_ms)
        return fitted
    return Circle(obj.x, obj.y, obj.time, obj.new_combo, obj.combo_skip, obj.hitsound,
                  obj.hit_sample)
