"""A new difficulty's hitsounds, copied from its set's other difficulties as mappers copy them.

A set's difficulties share one hitsounding: a clap is the song's snare whichever difficulty
plays it, so mappers hitsound one difficulty and copy it to the others by time (Mapping Tools'
Hitsound Copier). A new kiai difficulty of a hitsounded set came out with a finish where its
sections start and nothing else, silent where every other difficulty claps. So each sound point
of the new map (a circle, each end of a slider) takes the additions and sample sets of a
sibling's point at the same time (within SAME_MS; the sibling nearest in stars first), and a
point no sibling has takes the sounds that the nearest hitsounded sibling's heads carry at its
place in the bar (core.hitsounds.observed_pattern), with a finish where a section starts if that
sibling's sections start with one. A continuation does the same where its map's set is
hitsounded, with its own map's pattern before the siblings'. A set not yet hitsounded gives
nothing to copy: the caller keeps its rule (a new map's finishes, a continuation's own pattern).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from core.beatmap.model import Beatmap, HitObject, Slider, Spinner
from core.hitsounds import (
    ADDITIONS,
    Pattern,
    Sound,
    apply_sounds,
    map_timing,
    observed_pattern,
    parse_sets,
)

SAME_MS = 5.0  # a sibling's sound point this near is at the same time (its slider ends are
# float ms, the new map's heads whole ms)


def sound_points(obj: HitObject) -> list[tuple[float, Sound]]:
    """(time, sound) of each point where the object plays a hitsound the mapper set: a circle's
    head, each end of a slider (its edge sounds and sets, else its own), a spinner's end."""
    sets = parse_sets(obj.hit_sample)  # a slider's ends read their own edge sets first
    own = (obj.hitsound & ADDITIONS, sets)
    if isinstance(obj, Spinner):
        return [(obj.end_time, own)]
    if not isinstance(obj, Slider) or obj.duration is None:
        return [(obj.time, own)]
    sounds = (obj.edge_sounds or "").split("|")
    edge_sets = (obj.edge_sets or "").split("|")
    span = obj.duration / obj.slides
    points = []
    for i in range(obj.slides + 1):
        text = sounds[i].strip() if i < len(sounds) else ""
        additions = int(text) & ADDITIONS if text.isdigit() else own[0]
        edge = parse_sets(edge_sets[i]) if i < len(edge_sets) and edge_sets[i] else own[1]
        points.append((obj.time + i * span, (additions, edge)))
    return points


def hitsounded(beatmap: Beatmap) -> bool:
    """Whether any of the map's objects carries an addition (whistle, finish, clap): sample
    sets alone are not hitsounding to copy (the new map keeps its finishes then)."""
    return any(sound[0] for obj in beatmap.hit_objects for _, sound in sound_points(obj))


class SetSounds:
    """The sound points of a set's difficulties, nearest in stars first, to look up by time."""

    def __init__(self, siblings: Sequence[Beatmap]) -> None:
        self.layers: list[tuple[list[float], list[Sound]]] = []
        for sibling in siblings:
            points = sorted((p for obj in sibling.hit_objects for p in sound_points(obj)),
                            key=lambda p: p[0])
            self.layers.append(([t for t, _ in points], [s for _, s in points]))

    def at(self, time: float) -> Sound | None:
        """The sound of the first sibling with a point within SAME_MS of `time`, else None."""
        for times, sounds in self.layers:
            i = bisect.bisect_left(times, time - SAME_MS)
            if i < len(times) and times[i] <= time + SAME_MS:
                return sounds[i]
        return None


def copy_set_hitsounds(beatmap: Beatmap, siblings: Sequence[Beatmap],
                       within: tuple[float, float] = (-math.inf, math.inf),
                       own: Pattern | None = None) -> tuple[int, int] | None:
    """Set the sounds of the map's objects starting `within` (from, until) ms, in place, from
    its set's `siblings` (nearest in stars first): by time, else by the place in the bar of
    `own` (a continued map's pattern) or of the nearest hitsounded sibling. Returns (points
    copied by time, points set by place); None, changing nothing, where no sibling is
    hitsounded or the map has no bars."""
    sounded = [s for s in siblings if hitsounded(s)]
    timing = map_timing(beatmap)
    if not sounded or timing is None:
        return None
    library = SetSounds(sounded)
    if own is None:
        own = next((p for s in sounded if (p := observed_pattern(s)) is not None), Pattern())
    counts = [0, 0]

    def sound(time: float, starts_section: bool) -> Sound:
        copied = library.at(time)
        counts[copied is None] += 1
        return copied if copied is not None else own.sound(timing, time, starts_section)

    apply_sounds(beatmap, sound, within, timing)
    return counts[0], counts[1]
