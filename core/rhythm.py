"""Rhythm density: how often a map's objects follow each other closely (streams, 1/2 rhythms).

Speed is the other half of an osu!standard star rating (jumps are the first, core.spacing), and
it follows how soon each object starts after the previous one. A model trained on synthetic
songs maps every onset real music offers, and real music offers 1/4 hi-hats everywhere: asked
for 4 stars on osu-resources' circles (184 BPM), the starter wrote two thirds of the song as
1/4 streams, 5.7 stars. So decoding caps the share of gaps under each of GAP_LEVELS_MS
(DecodingOptions.gap_shares), as a mapper of a Hard keeps 1/4 rhythms to the odd triplet and
one of a Normal mostly waits a beat: from the stars asked for when writing a new map, from the
map's own shares before the cursor when continuing one.

The caps per star rating lie within what the ranked maps in the test corpus do (25
osu!standard maps of 100+ objects, 2.5-6.6 stars), near its top from 4 stars on, where the
first attempts of benchmarks/generated_maps.py's star sweep came out 0.4-0.7 stars short with
the middle of it (real and synthetic songs alike; the spacing table, core.spacing, was set
before the caps and kept). Gaps under 125 ms (1/4 notes above
120 BPM): 0-2% of a map's gaps up to 3 stars, 1-20% at 3.5-4, 0-38% at 4.5-5, 2-41% at 5-5.5,
0-56% above 6. Under 250 ms (also 1/2 notes above 120 BPM): 0-43% at 2.5-3 stars, 0-52% at
3-4, 24-80% at 4.5-5, 39-84% above 5. Under 340 ms (2/3 of a beat at 160 BPM, a beat above 176
BPM): 10-66% at 2-3 stars, where the clear spacing (core.spacing_limit) made a Normal of 1/1 and
2/3-beat circles 2.8 stars: a Normal of a fast song waits longer, or slides. Under 600 ms (a
beat up to 100 BPM): 38-73% of the gaps of ranked 2.2-2.9 star maps; capped at 50% at 2 stars
and 20% at 1, it lets an Easy of a 160 BPM song wait two beats (1.5 stars asked: 2.07 ->
1.87), where 1/1 circles a diameter apart rate about 2.2 stars. In ms, not beats: a
slow song's 1/4 notes are a fast song's 1/2 ones to play, and osu!'s speed strain follows ms too.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from core.beatmap.model import Beatmap, Spinner

GAP_LEVELS_MS = (125.0, 250.0, 340.0, 600.0)  # start-to-start gaps shorter than these are counted
# stars -> the share of gaps that may be shorter than each level; 1.0 is no limit
# (0 stars: none at all, where a retry of an Easy asks for less than 1 star's caps)
_SHARES = [(0.0, (0.0, 0.0, 0.0, 0.0)), (1.0, (0.0, 0.05, 0.1, 0.2)),
           (2.0, (0.0, 0.15, 0.3, 0.5)), (3.0, (0.03, 0.35, 0.6, 1.0)),
           (4.0, (0.18, 0.72, 0.9, 1.0)), (5.0, (0.36, 0.92, 1.0, 1.0)),
           (6.0, (0.52, 1.0, 1.0, 1.0)), (7.0, (0.7, 1.0, 1.0, 1.0)), (8.0, (1.0, 1.0, 1.0, 1.0))]
MAX_GAP_MS = 2000.0  # longer gaps are pauses, not rhythm
GAP_SLACK = 0.02  # a continuation's caps over its map's shares (observed_gap_shares)


def gap_shares_for_stars(stars: float) -> tuple[float, ...]:
    """The share of gaps under each level a map of `stars` may have (interpolated, clamped at
    the table's ends)."""
    keys = [s for s, _ in _SHARES]
    return tuple(float(np.interp(stars, keys, [v[i] for _, v in _SHARES]))
                 for i in range(len(GAP_LEVELS_MS)))


def start_gaps(beatmap: Beatmap, until_ms: float = math.inf) -> list[float]:
    """ms from each object's start to the next one's, for the objects (not spinners) that
    start before `until_ms`; pauses over MAX_GAP_MS are left out."""
    times = [o.time for o in beatmap.hit_objects
             if o.time < until_ms and not isinstance(o, Spinner)]
    return [b - a for a, b in itertools.pairwise(times) if 0 < b - a <= MAX_GAP_MS]


def gap_shares(beatmap: Beatmap, until_ms: float = math.inf) -> tuple[float, ...] | None:
    """The share of the map's gaps (before `until_ms`) under each level; None without gaps."""
    gaps = np.array(start_gaps(beatmap, until_ms))
    if not len(gaps):
        return None
    return tuple(float(np.mean(gaps < level)) for level in GAP_LEVELS_MS)


def observed_gap_shares(beatmap: Beatmap, until_ms: float = math.inf,
                        minimum_gaps: int = 16) -> tuple[float, ...] | None:
    """The map's own shares before `until_ms`, the caps for continuing it, each GAP_SLACK over,
    or twice the share where that is less (a level the map goes under once in a while stays
    near it, one it never goes under stays closed); None when it has fewer than
    `minimum_gaps` gaps to tell. Held to the exact share, a level near 1 closed at once after a
    dense prefix: the 600 ms level at the 99% of a map that pauses now and then made the
    continuation pause first (0.5-1.2 s after --from, QA session 25)."""
    if len(start_gaps(beatmap, until_ms)) < minimum_gaps:
        return None
    return tuple(min(1.0, share + min(GAP_SLACK, share))
                 for share in gap_shares(beatmap, until_ms))
