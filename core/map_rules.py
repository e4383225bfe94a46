"""The rules a generated map keeps, as DecodingOptions: from the stars asked for when writing a
new map, from the map itself when continuing one. Whatever the caller gave stays as given.

- jumps no wider than a ceiling (core.spacing), the last one's circle kept clear (a diameter
  apart) and moves of one rhythm of one spacing (core.spacing_limit): the last two not under a
  given ceiling, a mapper's --spacing, whose jumps are the mapper's, overlaps and all;
- short gaps no more frequent than caps (core.rhythm);
- sliders no rarer, no shorter and no fewer of them long than a floor (core.object_mix);
- streams that step no further than a limit and do not turn back (core.streams);
- 1/4 doubles and triples stacked on their circle, no rarer than a floor (core.stacks);
- in a new map, soft passages (an intro, a breakdown) calmer: sparser, smaller jumps
  (core.music_presence.soft_passages; SOFT_BIAS, SOFT_SPACING).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from core.accents import ACCENT_MARGIN_BEATS
from core.beatmap.model import Beatmap
from core.decoding import DecodingOptions
from core.object_mix import (
    long_share_for_stars,
    observed_long_share,
    observed_min_slider_length,
    observed_reverse_share,
    observed_slider_share,
    reverse_share_for_stars,
    slider_share_for_stars,
)
from core.rhythm import gap_shares_for_stars, observed_gap_shares
from core.spacing import (
    observed_min_distance,
    observed_snap_distances,
    observed_spacing,
    observed_spread,
    spacing_for_stars,
    spread_for_stars,
)
from core.spacing_limit import circle_diameter
from core.stacks import observed_stack_share, stack_share_for_stars
from core.streams import (
    observed_stream_step,
    observed_stream_turns,
    stream_step_for_stars,
    stream_turns_for_stars,
)

QUIET_EFFORT = 0.5  # a retry with this much effort leaves quiet quarter ticks unpenalised
# (and soft passages as the rest)
SOFT_BIAS = -1.5  # a new map's density bias in soft passages (nats per octave of gap) ...
SOFT_SPACING = 0.6  # ... and its spacing ceiling there, times this
# stars -> distance snap across rhythms in a new map: each move over up to a beat keeps at least
# this share of the ceiling's reach for its time (QA: a 2-star map spaced 1/1 gaps 95 px, 1/2
# gaps 90). Ranked maps space a beat's moves 1.4-2x a half beat's up to 5.5 stars
# (benchmarks/map_style.py, beat/half), at 0.55-1.06 of the ceiling (median 0.72 at 3-5
# stars); 0.8 at 3.5 stars had made them 229 px. None from SNAP_STARS: jumps, not snap.
_SNAP_FLOOR = [(3.0, 0.8), (4.0, 0.6), (5.0, 0.45)]
SNAP_STARS = 5.5
# A retry's ceiling stays within that of a map HEADROOM_STARS harder: exp(effort) alone had
# taken a 4.5-star map's to 3.7x its own (2.69 px/ms, 490 px zigzags on half beats; QA round
# 5), buying the stars with jumps no map of them has. At 1.5 stars of headroom, 2 of the star
# sweep's 35 maps missed by over 0.5; at 2, 1 (say_what 4.5*: half beats a median 152 px,
# ranked maps of 4.4-4.7 stars 91-184 px)
HEADROOM_STARS = 2.0
MIN_HEADROOM = 1.3  # ... or this much over its own (the table stops rising at 10 stars)


# stars -> beats after a spinner before the next object: an Easy 4, a Normal 2, a Hard 1 (the
# ranking criteria; a new 2-star map had left one beat, QA)
_RECOVERY_BEATS = [(2.0, 4.0), (2.7, 2.0), (4.0, 1.0)]


def recovery_beats_for_stars(stars: float) -> float:
    """DecodingOptions.spinner_recovery_beats for a new map of `stars` (0 from 4 stars: the
    400 ms alone)."""
    return next((beats for below, beats in _RECOVERY_BEATS if stars < below), 0.0)


def snap_floor_for_stars(stars: float) -> float | None:
    """DecodingOptions.snap_floor for a new map of `stars` (None from SNAP_STARS)."""
    if stars >= SNAP_STARS:
        return None
    return float(np.interp(stars, [s for s, _ in _SNAP_FLOOR], [v for _, v in _SNAP_FLOOR]))


def retry_ceiling(stars: float, effort: float) -> float:
    """The spacing ceiling of an attempt at a new map of `stars`: the typical one scaled by
    exp(effort), up to a map HEADROOM_STARS harder's (or MIN_HEADROOM x its own)."""
    own = spacing_for_stars(stars)
    return min(own * math.exp(effort),
               max(spacing_for_stars(stars + HEADROOM_STARS), MIN_HEADROOM * own))


def _given(value, default):
    return default if value is None else value


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def new_map_rules(options: DecodingOptions, cs: float, stars: float, effort: float = 0.0,
                  density_per_effort: float = 0.5, effort_per_star: float = 0.4
                  ) -> DecodingOptions:
    """`options` with the rules of a new map of `stars` at circle size `cs`, for an attempt of
    `effort` (a retry's lever: the ceiling scaled by exp(effort) up to HEADROOM_STARS', the
    stream step and turns by as much as the ceiling (by exp(effort) alone, a 4-star map's
    third attempt could step 2.2 diameters), the density bias moved by `density_per_effort` *
    effort, the caps taken at effort / `effort_per_star` more stars, and quiet ticks' penalty
    and soft passages' calm lowered to none at QUIET_EFFORT: a song of plain eighths asked
    for 6.5 stars came out at 4.8-5.3 with the penalty on every retry, QA; circles, its first
    minute soft, at 5.1 for 6 with the calm)."""
    diameter = circle_diameter(cs)
    calm = min(1.0, max(0.0, 1.0 - effort / QUIET_EFFORT))  # quiet ticks' and soft passages'
    ceiling = retry_ceiling(stars, effort)
    scale = ceiling / spacing_for_stars(stars)  # the ceiling's, as capped (streams follow it)
    return dataclasses.replace(
        options,
        spacing=options.spacing or ceiling,
        min_distance=_given(options.min_distance, None if options.spacing else diameter),
        spacing_spread=_given(options.spacing_spread,
                              None if options.spacing else spread_for_stars(stars)),
        gap_shares=_given(options.gap_shares,
                          gap_shares_for_stars(stars + effort / effort_per_star)),
        slider_share=_given(options.slider_share, slider_share_for_stars(stars)),
        reverse_share=_given(options.reverse_share, reverse_share_for_stars(stars)),
        long_share=_given(options.long_share, long_share_for_stars(stars)),
        spinner_recovery_beats=options.spinner_recovery_beats or recovery_beats_for_stars(stars),
        stack_share=_given(options.stack_share, stack_share_for_stars(stars)),
        min_slider_length=_given(options.min_slider_length, diameter / 2),
        stream_step=_given(options.stream_step, None if options.spacing
                           else _scaled(stream_step_for_stars(stars, diameter), scale)),
        stream_turns=_given(options.stream_turns, None if options.spacing
                            else min(1.0, stream_turns_for_stars(stars) * scale)),
        density_bias=options.density_bias + density_per_effort * effort,
        snap_floor=_given(options.snap_floor,
                          None if options.spacing else snap_floor_for_stars(stars)),
        soft_bias=_given(options.soft_bias, SOFT_BIAS * calm),
        soft_spacing=_given(options.soft_spacing, 1.0 - (1.0 - SOFT_SPACING) * calm),
        accent_margin_beats=_given(options.accent_margin_beats, ACCENT_MARGIN_BEATS),
        quiet_nats=options.quiet_nats * calm)


def continuation_rules(options: DecodingOptions, beatmap: Beatmap, from_ms: float
                       ) -> DecodingOptions:
    """`options` with the rules `beatmap` keeps before `from_ms` (each None where it has too
    little to tell, and the floor only where the ceiling is the map's own)."""
    floor, spread = options.min_distance, options.spacing_spread
    if options.spacing is None:
        floor = _given(floor, observed_min_distance(beatmap, from_ms))
        spread = _given(spread, observed_spread(beatmap, from_ms))
    return dataclasses.replace(
        options,
        spacing=_given(options.spacing, observed_spacing(beatmap, from_ms)),
        min_distance=floor,
        spacing_spread=spread,
        snap_distances=_given(options.snap_distances, None if options.spacing
                              else observed_snap_distances(beatmap, from_ms) or None),
        gap_shares=_given(options.gap_shares, observed_gap_shares(beatmap, from_ms)),
        slider_share=_given(options.slider_share, observed_slider_share(beatmap, from_ms)),
        reverse_share=_given(options.reverse_share, observed_reverse_share(beatmap, from_ms)),
        long_share=_given(options.long_share, observed_long_share(beatmap, from_ms)),
        stack_share=_given(options.stack_share, observed_stack_share(beatmap, from_ms)),
        min_slider_length=_given(options.min_slider_length,
                                 observed_min_slider_length(beatmap, from_ms)),
        stream_step=_given(options.stream_step, None if options.spacing
                           else observed_stream_step(beatmap, from_ms)),
        stream_turns=_given(options.stream_turns, None if options.spacing
                            else observed_stream_turns(beatmap, from_ms)))
