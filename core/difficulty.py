"""Difficulty conditioning: the (AR, CS, OD, HP, stars) vector the model is conditioned on.

Stars come from rosu-pp-py (the community's port of lazer's calculator). When a user asks for a
star rating only, the other settings follow the ranges ranked maps use at that rating (a smooth
interpolation over typical values; the mapper can override each).
"""

from __future__ import annotations

import bisect

import rosu_pp_py

from core.beatmap.model import Beatmap, Difficulty
from core.beatmap.writer import write_text

# stars -> (AR, CS, OD, HP), typical of ranked osu!standard maps at that rating.
_TYPICAL = [
    (1.0, (4.0, 3.0, 3.0, 3.0)),
    (2.0, (5.5, 3.5, 4.5, 4.0)),
    (3.0, (7.0, 4.0, 6.0, 5.0)),
    (4.0, (8.5, 4.0, 7.5, 5.5)),
    (5.0, (9.0, 4.0, 8.0, 6.0)),
    (6.0, (9.3, 4.2, 8.7, 6.0)),
    (7.0, (9.6, 4.3, 9.2, 6.0)),
]


# stars -> SliderMultiplier typical of ranked v14 maps at that rating (the corpus's: 1.0-1.4
# at 2 stars, 1.4 at 3.5, 1.5-1.8 at 4-5, 1.7-2.0 at 5.5-6.5; slower songs go higher).
_SLIDER_MULTIPLIERS = [(1.0, (1.0,)), (2.0, (1.2,)), (3.0, (1.4,)), (4.0, (1.6,)),
                       (5.0, (1.8,)), (6.0, (1.9,)), (7.0, (2.0,))]


def settings_for_stars(stars: float) -> tuple[float, float, float, float]:
    """(AR, CS, OD, HP) typical at `stars`, interpolated and clamped to the table's ends."""
    return tuple(round(v, 1) for v in _interpolated(_TYPICAL, stars))  # type: ignore[return-value]


def slider_multiplier_for_stars(stars: float) -> float:
    """The SliderMultiplier typical at `stars` (a new song's, where no map of it says one)."""
    return round(_interpolated(_SLIDER_MULTIPLIERS, stars)[0], 2)


def _interpolated(table: list[tuple[float, tuple[float, ...]]], stars: float
                  ) -> tuple[float, ...]:
    keys = [s for s, _ in table]
    i = bisect.bisect_left(keys, stars)
    if i == 0:
        return table[0][1]
    if i == len(keys):
        return table[-1][1]
    (s0, a), (s1, b) = table[i - 1], table[i]
    w = (stars - s0) / (s1 - s0)
    return tuple(x + (y - x) * w for x, y in zip(a, b))


def stars_for_settings(difficulty: Difficulty) -> float:
    """The star rating whose typical AR and OD are nearest `difficulty`'s (0.1 steps over the
    table's range): the stars a map's settings say it is for, where it has too few objects to
    rate (a timed, empty difficulty the mapper asks kiai to fill)."""
    low, high = _TYPICAL[0][0], _TYPICAL[-1][0]
    ar, od = float(difficulty.approach_rate), float(difficulty.od)

    def miss(stars: float) -> float:
        typical_ar, _, typical_od, _ = _interpolated(_TYPICAL, stars)
        return (typical_ar - ar) ** 2 + (typical_od - od) ** 2

    return min((low + i / 10 for i in range(round((high - low) * 10) + 1)), key=miss)


def condition_vector(difficulty: Difficulty, stars: float) -> list[float]:
    """The model's conditioning: [AR, CS, OD, HP, stars]."""
    return [float(difficulty.approach_rate), float(difficulty.cs), float(difficulty.od),
            float(difficulty.hp), float(stars)]


def star_rating(beatmap: Beatmap) -> float:
    """osu!standard star rating of `beatmap` (0 for a map without objects)."""
    if not beatmap.hit_objects:
        return 0.0
    parsed = rosu_pp_py.Beatmap(content=write_text(beatmap))
    return float(rosu_pp_py.Difficulty().calculate(parsed).stars)
