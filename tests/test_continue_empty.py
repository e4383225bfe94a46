"""Continuing a difficulty that is timed but (nearly) empty: nothing of its own to keep to, so
the rules of a new map at the stars its settings are typical of."""

from __future__ import annotations

from companion.continuation import continue_beatmap, continued_version
from companion.mapping import decoding_options
from core.beatmap.model import Beatmap
from core.beatmap.parser import parse_file
from core.difficulty import star_rating, stars_for_settings
from core.spacing import moves, spacing_for_stars
from core.spacing_limit import FLOOR_ROOM, OVERLAP_GAP_MS, circle_diameter


def test_an_empty_easy_is_continued_as_an_easy(starter_generator, timed_song):
    # circles! (AR 5, OD 5, no objects) had been continued at 6 stars with 396 px jumps in
    # 163 ms: no objects, so no spacing or rhythm of its own, and a rating of 0 to condition on
    folder, _ = timed_song
    empty = parse_file(next(folder.glob("*[[]Normal[]].osu"))).beatmap
    empty.hit_objects = []
    empty.difficulty.ar, empty.difficulty.od = 5.0, 5.0
    assert stars_for_settings(empty.difficulty) == 2.0
    made = continue_beatmap(starter_generator, empty, folder / "audio.ogg", 2000.0, None,
                            decoding_options(seed=0))
    assert len(made.hit_objects) > 10
    assert star_rating(made) < 3.0
    # every jump within the ceiling at 2 stars, or the floor's room (a diameter x FLOOR_ROOM)
    # where the gap is long enough for the floor to hold
    room = FLOOR_ROOM * circle_diameter(made.difficulty.cs)
    reach = [max(spacing_for_stars(2.0) * gap, room if gap >= OVERLAP_GAP_MS else 0.0)
             for gap, _ in moves(made)]
    assert all(distance <= r + 8 for (_, distance), r in zip(moves(made), reach))


def test_a_continuation_is_named_after_its_map():
    beatmap = Beatmap()
    beatmap.metadata["Version"] = "Hard"
    assert continued_version(beatmap) == "Hard (kiai)"
    beatmap.metadata["Version"] = ""  # a map without one: not "kiai (kiai)"
    assert continued_version(beatmap) == "kiai"
