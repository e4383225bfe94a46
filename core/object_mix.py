"""How many of a map's objects are sliders, and the floor decoding keeps their share above.

Ranked maps in the test corpus (25 osu!standard maps of 100+ objects) make 27-79% of their
objects sliders, most in the easiest (the two Normals: 75% and 79%). The starter model made 5%
at 2 stars and 19% at 3 (benchmarks/map_style.py): a Normal of nothing but circles, dense enough
to be a Hard. So decoding keeps a floor under the share (DecodingOptions.slider_share): from the
stars asked for when writing a new map, from the map's own share when continuing one. Where the
share so far (the window's prefix and output) falls short, a slider's logit is raised against a
circle's by SLIDER_GAIN nats per slider missing, their total probability kept: when an object
comes is still the model's choice, and the sliders come where it finds them least unlikely.

Pushed to slide, the model ended sliders within a 1/4 beat: 9-11% of the sliders of 5-6 star
maps were shorter than a circle's radius (the corpus's: 0-3%), a slider that reads as a circle.
So a span of a slider is at least DecodingOptions.min_slider_length long: a circle's radius for
a new map, and for a continuation too unless the map's own sliders are that short (over
MAX_TINY_SHARE of them). And a slider ends on a tick of the map's timing, as its head starts on
one (`limit_slider_ends`).

Ranked maps send 14-27% of their sliders back at least once (reverse arrows) up to 5.5 stars,
4% above (map_style's medians); kiai's sliders never went back: the starter learned from
synthetic maps that reverse only a slider too long for one span. So decoding keeps a floor
under that share too (DecodingOptions.reverse_share), the same way: where the sliders so far
fall short, the ends that go back are raised against the one that does not, by REVERSE_GAIN
nats per reverse missing (whether the slider ends there stays the model's choice), and only
those whose spans stay 1.5 min_slider_lengths long (core.constraints.REVERSE_SPAN): a 1/4-beat
kick is not sent back.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from core.beatmap.model import Beatmap, Slider, Spinner
from core.beatmap.timing import ControlPoints
from core.spacing_limit import circle_diameter

# stars -> the least share of sliders: under the corpus's median at each level (43% at 2-3
# stars, 46% at 3-4, 33% at 4-5, 50% at 5-5.5, 30% above 6)
_SHARES = [(1.0, 0.5), (2.0, 0.45), (3.0, 0.4), (4.0, 0.33), (5.0, 0.3), (6.0, 0.25),
           (8.0, 0.2)]
NEG_INF = float("-inf")
SLIDER_GAIN = 2.5  # nats a slider's logit is raised per slider the share is short
MAX_TILT = 6.0  # ... at most: the model's strong preference for a circle stands
MAX_TINY_SHARE = 0.1
# stars -> the least share of sliders that go back: under the ranked medians (14% at 2 stars,
# 27% at 2.5-3.5, 17-18% at 3.5-5.5, 4% above)
_REVERSE_SHARES = [(2.0, 0.12), (3.0, 0.15), (5.0, 0.15), (6.0, 0.04), (8.0, 0.0)]
# nats the ends that go back are raised per reverse the share is short, at most REVERSE_TILT:
# the starter finds going back ~11 nats less likely than not (median; it never saw a reason to),
# so the floor, not the model, decides how many go back, and the model which of them
REVERSE_GAIN = 10.0
REVERSE_TILT = 14.0
# A slider is long where each span lasts LONG_SPAN_BEATS of a beat or more. Ranked maps' share of
# them (medians): 35% at 2.5-3.5 stars, 38% at 3.5-4.5, 8% at 4.5-5.5 (0-61%), 25% above; the
# starter's 2-3%: 83-97% of its sliders spanned half a beat, a slider-circle loop (QA, session
# 26). stars -> the least share, under those medians:
LONG_SPAN_BEATS = 0.9
_LONG_SHARES = [(2.0, 0.3), (4.0, 0.25), (5.0, 0.1), (8.0, 0.1)]
LONG_GAIN = 3.0  # nats the ends of a short span are lowered per long slider missing ...
LONG_TILT = 6.0  # ... at most: the body goes on where it may, the model ends it where it will


def slider_share_for_stars(stars: float) -> float:
    """The least share of sliders for a map of `stars` (interpolated, clamped at the ends)."""
    return float(np.interp(stars, [s for s, _ in _SHARES], [v for _, v in _SHARES]))


def reverse_share_for_stars(stars: float) -> float:
    """The least share of sliders that go back, for a map of `stars`."""
    return float(np.interp(stars, [s for s, _ in _REVERSE_SHARES],
                           [v for _, v in _REVERSE_SHARES]))


def observed_reverse_share(beatmap: Beatmap, until_ms: float = math.inf,
                           minimum_sliders: int = 8) -> float | None:
    """The share of the map's sliders before `until_ms` that go back, the floor for continuing
    it; None when it has fewer than `minimum_sliders` to tell."""
    reverses = [o.slides > 1 for o in beatmap.hit_objects
                if isinstance(o, Slider) and o.time < until_ms]
    return float(np.mean(reverses)) if len(reverses) >= minimum_sliders else None


def observed_slider_share(beatmap: Beatmap, until_ms: float = math.inf,
                          minimum_objects: int = 16) -> float | None:
    """The share of sliders among the map's circles and sliders before `until_ms`, the floor
    for continuing it; None when it has fewer than `minimum_objects` to tell."""
    kinds = [isinstance(o, Slider) for o in beatmap.hit_objects
             if o.time < until_ms and not isinstance(o, Spinner)]
    return float(np.mean(kinds)) if len(kinds) >= minimum_objects else None


def observed_min_slider_length(beatmap: Beatmap, until_ms: float = math.inf,
                               minimum_sliders: int = 8) -> float | None:
    """The least span a continuation's sliders get: a circle's radius where the map's own
    sliders before `until_ms` are that long (all but MAX_TINY_SHARE); None where they are not,
    or where it has fewer than `minimum_sliders` to tell."""
    radius = circle_diameter(beatmap.difficulty.cs) / 2
    spans = [(o.length or 0.0) for o in beatmap.hit_objects
             if isinstance(o, Slider) and o.time < until_ms]
    if len(spans) < minimum_sliders or float(np.mean(np.array(spans) < radius)) > MAX_TINY_SHARE:
        return None
    return radius


def tilt_to_sliders(logits: Tensor, circle: slice, slider: slice, share: float, objects: int,
                    sliders: int) -> None:
    """Raise the slider tokens' logits (V,) against the circle's, in place, by how many
    sliders `sliders` of `objects` are short of `share` once one more object is placed."""
    missing = share * (objects + 1) - sliders
    if missing <= 0:
        return
    cells = torch.cat([logits[circle], logits[slider]])
    allowed = torch.isfinite(cells)
    if not bool(allowed[: circle.stop - circle.start].any()) or \
            not bool(allowed[circle.stop - circle.start:].any()):
        return  # only one kind may come: nothing to weigh
    mass = torch.logsumexp(cells[allowed], 0)
    logits[slider] += min(SLIDER_GAIN * missing, MAX_TILT)
    cells = torch.cat([logits[circle], logits[slider]])
    shift = mass - torch.logsumexp(cells[allowed], 0)
    logits[circle] += shift
    logits[slider] += shift


def circle_not_slider(logits: Tensor, circle: slice, slider: slice) -> None:
    """Close the slider tokens, in place, their probability going to the circles' (so the
    choice between placing an object and moving on stays the model's); where no circle is
    open, only where something else is."""
    sliders, circles = logits[slider], logits[circle]
    if not bool(torch.isfinite(sliders).any()):
        return
    if bool(torch.isfinite(circles).any()):
        mass = torch.logsumexp(circles, 0)
        circles += torch.logaddexp(mass, torch.logsumexp(sliders, 0)) - mass
    else:
        rest = logits.clone()
        rest[slider] = -math.inf
        if not bool(torch.isfinite(rest).any()):
            return
    sliders.fill_(-math.inf)


def end_shorter_sliders(logits: Tensor, ends: slice, min_length: float, travelled: float) -> None:
    """Close the slider ends (END_SLIDER with 1, 2, ... spans) that would leave each span
    shorter than `min_length` osu!pixels after `travelled` px of body, in place; where every
    end is closed and no shift is left either, they stay open (the slider must end)."""
    cells = logits[ends]
    spans = torch.arange(1, cells.numel() + 1, dtype=cells.dtype)
    limited = cells.masked_fill(travelled / spans < min_length, NEG_INF)
    others = torch.cat([logits[: ends.start], logits[ends.stop:]])
    if bool(torch.isfinite(limited).any()) or bool(torch.isfinite(others).any()):
        cells.copy_(limited)


def limit_slider_ends(logits: Tensor, ends: slice, on_tick: bool, min_length: float | None,
                      travelled: float | None) -> None:
    """Close the slider ends (in place) that would end off the map's ticks (`on_tick` False:
    ends had missed the beat divisor by 25-62 ms in a third of the sliders of 1/3 and 1/4
    maps) or leave a span shorter than `min_length` after `travelled` px; where that leaves
    nothing to choose, the slider may end."""
    kept = logits[ends].clone()
    if not on_tick:
        logits[ends] = NEG_INF
    elif min_length and travelled is not None:
        end_shorter_sliders(logits, ends, min_length, travelled)
    if not bool(torch.isfinite(logits).any()):
        logits[ends] = kept


def land_slider_body(shifts: Tensor, on_tick: Tensor) -> None:
    """Close the time shifts (logits `shifts`) that would take a slider's body off the map's
    ticks (`on_tick`: whether each lands on one), in place: its end is chosen among the ticks
    (an end merely closed off them had the model take its likeliest long shift instead).
    Where none lands on one, all stay."""
    if bool(on_tick.any()):
        shifts.masked_fill_(~on_tick, NEG_INF)


def long_share_for_stars(stars: float) -> float:
    """The least share of long sliders (spans of LONG_SPAN_BEATS or more) for a new map."""
    return float(np.interp(stars, [s for s, _ in _LONG_SHARES], [v for _, v in _LONG_SHARES]))


def observed_long_share(beatmap: Beatmap, until_ms: float = math.inf,
                        minimum_sliders: int = 8) -> float | None:
    """The map's share of long sliders before `until_ms`; None with too few sliders."""
    timing = ControlPoints(beatmap.timing_points)
    longs = [is_long(o.duration / o.slides, timing.beat_length_at(o.time))
             for o in beatmap.hit_objects
             if o.time < until_ms and isinstance(o, Slider) and o.duration]
    return float(np.mean(longs)) if len(longs) >= minimum_sliders else None


def is_long(span_ms: float | Tensor, beat_ms: float) -> bool | Tensor:
    """Whether a slider span of `span_ms` (or each of a tensor of them) lasts LONG_SPAN_BEATS
    of a beat or more."""
    return span_ms >= LONG_SPAN_BEATS * beat_ms - 1.0


def tilt_to_long(logits: Tensor, ends: slice, share: float, sliders: int, longs: int,
                 body_ms: float, beat_ms: float) -> None:
    """Lower, in place, the slider ends (END_SLIDER with 1-5 spans) whose spans would last
    under LONG_SPAN_BEATS of a beat at `body_ms`, by how many long sliders `longs` of `sliders`
    (the one being placed included) are short of `share`: its body goes on where it may."""
    missing = share * sliders - longs
    if missing <= 0:
        return
    cells = logits[ends]
    spans = torch.arange(1, cells.numel() + 1, dtype=torch.float64)
    cells[~is_long(body_ms / spans, beat_ms)] -= min(LONG_GAIN * missing, LONG_TILT)


def tilt_body_to_long(shifts: Tensor, values: Tensor, body_ms: float, share: float,
                      sliders: int, longs: int, beat_ms: float) -> None:
    """Lower, in place, a slider body's time shifts (`values` ms each) that would leave it
    under LONG_SPAN_BEATS of a beat, as tilt_to_long lowers its short ends: the body's first
    shift is most of its length, so the floor acts there too."""
    missing = share * sliders - longs
    if missing <= 0:
        return
    shifts[~is_long(body_ms + values, beat_ms)] -= min(LONG_GAIN * missing, LONG_TILT)


def tilt_to_reverses(logits: Tensor, ends: slice, share: float, sliders: int,
                     reverses: int, travelled: float | None = None,
                     min_span: float = 0.0) -> None:
    """Raise the slider ends that go back (END_SLIDER with 2+ spans) against the one that does
    not, in place, by how many reverses `reverses` of `sliders` (the one ending included) are
    short of `share`; their total probability kept (ending now or going on stays the model's).
    Only ends whose spans are each `min_span` px of the `travelled` body or longer are raised:
    raised wherever allowed, 74% of a 3.5-star map's reverses were 1/4-beat kicks a radius
    long (QA, session 25), where ranked maps send back 1/2- and 1-beat sliders."""
    missing = share * sliders - reverses
    cells = logits[ends]
    allowed = torch.isfinite(cells)
    raised = allowed.clone()
    raised[0] = False
    if travelled is not None:
        spans = torch.arange(1, cells.numel() + 1, dtype=cells.dtype)
        raised &= travelled / spans >= min_span
    if missing <= 0 or not bool(allowed[0]) or not bool(raised.any()):
        return
    mass = torch.logsumexp(cells[allowed], 0)
    cells[raised] += min(REVERSE_GAIN * missing, REVERSE_TILT)
    cells[allowed] += mass - torch.logsumexp(cells[allowed], 0)
