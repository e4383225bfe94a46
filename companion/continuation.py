"""Continue: the work behind `kiai continue` and the daemon's map.continue jobs: a mapper's map
with new objects from a timestamp (to another), under the rules of the map itself.

The CLI and the daemon call these same functions (companion.mapping has the new-map side).
Errors are core's own (BeatmapError, AudioError, UnsupportedModeError) plus
UnusableTimingError.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

from companion.mapping import (
    MIN_OWN_OBJECTS,
    Features,
    Progress,
    ShouldStop,
    has_placeholder_timing,
    untimed,
)
from core.audio import FRAME_MS, LATENCY_MS, AudioError, audio_features
from core.beat_feel import joint_divisor, objects_divisor
from core.beatmap.breaks import update_breaks
from core.beatmap.model import Beatmap, Mode
from core.beatmap.ticks import beat_divisor_of
from core.combos import combo_style, set_new_combos
from core.decoding import DecodingOptions
from core.difficulty import condition_vector, star_rating, stars_for_settings
from core.generate import Generator, continue_map
from core.hitsound_copy import copy_set_hitsounds
from core.hitsounds import apply_pattern, observed_pattern
from core.map_rules import continuation_rules, new_map_rules
from core.song_input import find_file, set_siblings
from core.tokens.tokenizer import UnsupportedModeError


def audio_of(beatmap: Beatmap, folder: Path) -> Path:
    """The audio file a map names, found in its folder as osu! finds it (AudioError if not)."""
    name = (beatmap.audio_filename or "").strip()
    if not name:
        raise AudioError(folder, "the map names no audio file ([General] AudioFilename is "
                                 "empty or absent): set it to the song's file in this folder")
    audio = find_file(folder, name)
    if audio is None:
        raise AudioError(folder / name, "missing: the map's AudioFilename is not in its folder")
    return audio


def continue_beatmap(generator: Generator, beatmap: Beatmap, audio: Path, from_ms: float,
                     until_ms: float | None, options: DecodingOptions,
                     progress: Progress | None = None,
                     should_stop: ShouldStop | None = None,
                     features: Features = audio_features) -> Beatmap:
    """The map with new objects from `from_ms` (to `until_ms`); objects before `from_ms` and
    after `until_ms` kept exactly, new jumps no wider, short gaps no more frequent, neighbours
    no closer (where it keeps them apart) and sliders no rarer or shorter than the map's before
    `from_ms`. Its Version is the original's (the caller names a new difficulty with
    continued_version)."""
    check_continuable(beatmap)
    mel = features(audio)
    audio_ms = mel.shape[-1] * FRAME_MS - LATENCY_MS  # its end in beatmap time
    if from_ms >= audio_ms:  # else a "continuation" of silence: a map with nothing new
        raise AudioError(audio, f"the audio ends at {audio_ms / 1000:.3f} s, before the "
                                f"continuation's start at {from_ms / 1000:.3f} s: nothing to map")
    # a map too empty to rate (an empty Hard had been filled at 6 stars, AR 5): the stars its
    # settings are typical of; too few objects before `from_ms` to read rules from: a new map's
    rated = len(beatmap.hit_objects) >= MIN_OWN_OBJECTS
    stars = star_rating(beatmap) if rated else stars_for_settings(beatmap.difficulty)
    if sum(o.time < from_ms for o in beatmap.hit_objects) < MIN_OWN_OBJECTS:
        options = new_map_rules(options, beatmap.difficulty.cs, stars)
    cond = condition_vector(beatmap.difficulty, stars)
    siblings = set_siblings(audio, beatmap, stars)  # read before decoding: its sounds to copy
    options = continuation_rules(options, beatmap, from_ms)  # its own spacing, rhythm, sliders
    placeholder = has_placeholder_timing(beatmap)  # nothing to snap to; the slider speed
    snapped = untimed(beatmap) if placeholder else continuation_snap(beatmap)
    result = continue_map(generator, snapped, mel, from_ms, until_ms, cond, options,
                          progress=progress, should_stop=should_stop)
    result.editor = dict(beatmap.editor)  # the mapper's editor, as they left it
    if placeholder:  # ... without it is the placeholder's (lazer's default beat)
        result.timing_points = copy.deepcopy(beatmap.timing_points)
    kept = sum(o.time < from_ms or (until_ms is not None and o.time >= until_ms)
               for o in beatmap.hit_objects)
    if len(result.hit_objects) == kept:  # nothing new: writing it would only add clutter
        span = f"from {from_ms / 1000:.3f} s" + (
            "" if until_ms is None else f" to {until_ms / 1000:.3f} s")
        raise AudioError(audio, f"nothing to place {span}: the audio there is silent, or the "
                                f"span holds no tick free of the map's own objects")
    # no break where the new objects are, one in each long gap they leave (continue_map set the
    # sliders' durations)
    written = (from_ms, math.inf if until_ms is None else until_ms)
    update_breaks(result, within=written)
    if not placeholder:  # the new objects' combos on the bars, and the map's hitsounds (a
        # break just written starts a section)
        set_new_combos(result, within=written, style=combo_style(beatmap, from_ms))
        own = observed_pattern(beatmap, from_ms)
        if copy_set_hitsounds(result, siblings, written, own) is None and own is not None:
            apply_pattern(result, own, written)
    # the map keeps its format version, and with it the rules osu! reads it by (old ticks and
    # stacking, v128's fractional positions): core.beatmap.writer.written_version
    return result


def continuation_snap(beatmap: Beatmap) -> Beatmap:
    """A copy whose editor snap offers the ticks of the mapper's snap and those their map's
    objects use (a map of halves left at 1/3 for a triplet: 1/12), for continue_map."""
    snapped = copy.copy(beatmap)
    snapped.editor = {**beatmap.editor, "BeatDivisor": str(joint_divisor(
        beat_divisor_of(beatmap.editor), objects_divisor(beatmap)))}
    return snapped


class UnusableTimingError(ValueError):
    """A map to continue whose timing nothing can be placed on (no red line, or one whose beat
    length is not a positive number): osu! stable does not load what would be written."""


def check_continuable(beatmap: Beatmap) -> None:
    """UnsupportedModeError unless an osu!standard map; UnusableTimingError unless it has red
    lines, each of a positive beat length. Cheap: asked before the model or audio is loaded."""
    if beatmap.mode is not Mode.OSU:
        raise UnsupportedModeError(f"only osu!standard maps can be continued, not mode "
                                   f"{int(beatmap.mode)} ({beatmap.mode.name.lower()})")
    red = [p for p in beatmap.timing_points if p.uninherited]
    if not red:
        raise UnusableTimingError(
            "the map has no red line (uninherited timing point) to place objects on: time it "
            "first (`kiai timing` prints red lines for its audio)")
    for point in red:
        if not (math.isfinite(point.beat_length) and point.beat_length > 0):
            raise UnusableTimingError(
                f"the red line at {point.time:g} ms has a beat length of {point.beat_length:g} "
                "ms: fix it in the editor's timing panel first")


def continued_version(beatmap: Beatmap) -> str:
    """The Version of a continuation written as a new difficulty: `Hard (kiai)`, or `kiai` for
    a map with none."""
    return f"{beatmap.version} (kiai)" if beatmap.version else "kiai"
