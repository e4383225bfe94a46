"""Generate: the work behind `kiai generate` and the daemon's map.generate and new-song jobs
(continuing a map: companion.continuation).

The CLI and the daemon call these same functions; they differ only in where the inputs come
from (arguments or requests), how progress is shown and how errors are reported. Errors are
core's own (BeatmapError, AudioError, CheckpointError, JobCancelled) plus NoModelError.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from core.audio import FRAME_MS, audio_features
from core.backbeat import clap_test
from core.beat_feel import new_map_divisor
from core.beatmap.breaks import update_breaks
from core.beatmap.model import Beatmap, Difficulty, TimingPoint
from core.beatmap.ticks import DEFAULT_BEAT_DIVISOR
from core.beatmap.timing import DEFAULT_BEAT_LENGTH
from core.checkpoint import CheckpointError, read_meta
from core.combos import set_new_combos
from core.decoding import DecodingOptions
from core.difficulty import condition_vector, settings_for_stars, star_rating
from core.generate import Generator
from core.hitsound_copy import copy_set_hitsounds
from core.hitsounds import Pattern, apply_pattern
from core.kiai_time import mark_kiai
from core.map_rules import new_map_rules
from core.song_input import SongInput, check_audio_name
from core.song_timing import SongTiming, estimate_song_timing
from core.starter import default_model_path
from core.tempo import TimingError

Progress = Callable[[float], None]  # fraction done, 0..1
ShouldStop = Callable[[], bool]
Features = Callable[[Path], Tensor]  # an audio file's log-mel features (core.audio)

DEFAULT_STARS = 4.0


class NoModelError(Exception):
    """No checkpoint given and no starter model in this checkout."""

    def __init__(self) -> None:
        super().__init__("no model: pass a checkpoint directory (--model, or `model` in the "
                         "daemon's config.toml) or build the starter model (see README)")


def model_path(explicit: Path | None) -> Path:
    """The checkpoint to use: `explicit`, else the shipped starter model."""
    path = explicit or default_model_path()
    if path is None:
        raise NoModelError()
    return path


def load_generator(explicit: Path | None) -> Generator:
    """The model, loaded once, decoding with the window length it was trained on;
    CheckpointError or NoModelError when there is none to load."""
    return Generator.from_checkpoint(model_path(explicit))


@dataclass(frozen=True)
class ModelSummary:
    name: str
    vocab: str
    preset: str | None


def describe_model(explicit: Path | None) -> ModelSummary | None:
    """What the checkpoint is, from its JSON alone (cheap); None when there is no model."""
    try:
        path = model_path(explicit)
        meta = read_meta(path)
    except (NoModelError, CheckpointError):  # a job that loads it reports why
        return None
    vocab = meta.get("vocab", {}).get("name", "unknown") if isinstance(meta.get("vocab"),
                                                                       dict) else "unknown"
    train = meta.get("train")
    preset = train.get("model") if isinstance(train, dict) else None
    name = "starter" if path == default_model_path() else path.name
    return ModelSummary(name[:128] or "model", str(vocab)[:128] or "unknown",
                        str(preset)[:128] if preset else None)


def decoding_options(method: str | None = None, temperature: float | None = None,
                     top_k: int | None = None, top_p: float | None = None,
                     beam_size: int | None = None, seed: int | None = None,
                     draw_gaps: bool | None = None) -> DecodingOptions:
    """DecodingOptions with core's defaults for every argument left None (ValueError if bad)."""
    given = {"method": method, "temperature": temperature, "top_k": top_k, "top_p": top_p,
             "beam_size": beam_size, "seed": seed, "draw_gaps": draw_gaps}
    return DecodingOptions(**{k: v for k, v in given.items() if v is not None})


@dataclass(frozen=True)
class Target:
    """The difficulty asked for: a star rating, and settings that override its typical ones."""

    stars: float | None = None
    ar: float | None = None
    cs: float | None = None
    od: float | None = None
    hp: float | None = None

    @property
    def star_rating(self) -> float:
        return DEFAULT_STARS if self.stars is None else self.stars

    def difficulty(self, template: Difficulty, slider_multiplier: float) -> Difficulty:
        """The settings asked for, the rest typical at the stars; the template's tick rate."""
        typical = settings_for_stars(self.star_rating)  # (AR, CS, OD, HP)
        ar, cs, od, hp = (typical[i] if v is None else v
                          for i, v in enumerate((self.ar, self.cs, self.od, self.hp)))
        return Difficulty(hp=hp, cs=cs, od=od, ar=ar,
                          slider_multiplier=slider_multiplier,
                          slider_tick_rate=template.slider_tick_rate)


# A map with fewer objects is rated by its settings (core.difficulty.stars_for_settings), and
# one with fewer before the start is continued by a new map's rules
MIN_OWN_OBJECTS = 16
STAR_TOLERANCE = 0.5  # a map further than this from the requested stars is generated again
# Attempts at most: a third that lands between an undershoot and an overshoot can still miss
# (stars do not follow the effort smoothly: chuggachugga at 6.5 made 5.15, 8.64, 5.92, then 6.33)
MAX_ATTEMPTS = 4
# The retries' one lever, `effort`: the spacing ceiling is scaled by exp(effort) (wider jumps:
# more aim), the density bias moved by DENSITY_PER_EFFORT * effort (shorter gaps: more speed)
# and the caps on short gaps taken from core.rhythm's table at the stars asked for plus
# effort / EFFORT_PER_STAR (streams: speed), so that both halves of the star rating follow it.
DENSITY_PER_EFFORT = 0.5
EFFORT_PER_STAR = 0.4  # first guess of the effort a missed star needs
MAX_EFFORT_STEP, MAX_EFFORT = 1.0, 2.0


@dataclass(frozen=True)
class Generated:
    """A generated map and how it came about (reported by the CLI and in job.finished)."""

    beatmap: Beatmap
    stars: float  # its star rating (rosu-pp-py)
    attempts: int  # generations run to get near the requested stars
    timing: str  # "map" (the song's own), "estimated" (from the audio) or "none"
    spacing: float | None = None  # the spacing ceiling (px/ms) of the attempt kept ...
    density_bias: float = 0.0  # ... its density bias (core.decoding.DecodingOptions) ...
    gap_shares: tuple[float, ...] | None = None  # ... and its caps on short gaps (core.rhythm)
    # estimated timing: the tempo the octave rule ranked next (core.tempo.tempo_alternative),
    # the likeliest fix where the estimate is a factor 2 or 3/2 off
    alternative_bpm: float | None = None
    bpm_tag: float | None = None  # estimated timing: the tempo the audio file's tags name
    tempo_from: str | None = None  # estimated timing: given, tag or audio (core.song_timing)


def song_timing(template: Beatmap, mel: Tensor, audio: Path, bpm: float | None = None,
                meter: int | None = None) -> tuple[list[TimingPoint], str, SongTiming | None]:
    """The template's timing points when it has uninherited ones, else timing estimated from
    the audio (core.song_timing: the audio file's BPM tag settles its octave where the beats
    allow it), with the estimate itself; only its green lines when the audio has no beat to
    time. A kiai map's placeholder red line (placeholder_red_line) is no timing: it is
    estimated again. A `bpm` the mapper gives replaces the template's red lines: the audio is
    timed at that tempo (a folder's earlier kiai difficulty may carry an estimate an octave
    off); so does a `meter` (beats per bar: the estimate reads only 4 or 3)."""
    if has_placeholder_timing(template) or bpm is not None or meter is not None:
        template = untimed(template)
    if any(p.uninherited for p in template.timing_points):
        return template.timing_points, "map", None
    try:
        estimate = estimate_song_timing(audio, mel, bpm=bpm, meter=meter)
    except TimingError:  # generation goes on unsnapped: nothing to snap to
        return list(template.timing_points), "none", None
    # green lines the template has (slider velocity, kiai) stay
    points = sorted([*estimate.points, *template.timing_points], key=lambda p: p.time)
    return points, "estimated", estimate


def generate_beatmap(generator: Generator, source: SongInput, target: Target,
                     options: DecodingOptions, progress: Progress | None = None,
                     should_stop: ShouldStop | None = None,
                     features: Features = audio_features,
                     on_retry: Callable[[int, float], None] | None = None,
                     max_attempts: int = MAX_ATTEMPTS, bpm: float | None = None,
                     meter: int | None = None) -> Generated:
    """A whole new map for a song: its template's timing (estimated when it has none) and
    metadata, the target difficulty, and a Version (`kiai 4.5`) to be made unique when written.

    The model is conditioned on the target, its jumps are bounded by the spacing that gives
    the target's stars (core.spacing), its objects kept clear of each other (a circle's
    diameter apart, core.spacing_limit; not under a given `options.spacing`), its short gaps
    bounded by the shares typical of the stars (core.rhythm) and its sliders' share and length
    by theirs (core.object_mix), or by the options given, which stay as given.
    When the map's star rating misses the target by more than STAR_TOLERANCE, the map is
    generated again with more or less effort (wider jumps, shorter gaps and more of them fast,
    or the reverse; only what is not given) by the miss, then along the secant of the attempts so
    far or between the nearest that fell short and overshot (next_effort), up to
    `max_attempts`; the nearest attempt is returned. `on_retry(n, stars)` is told before
    attempt n (2, 3, ...), with the stars attempt n - 1 made; `progress` restarts at 0 for each
    attempt. A `bpm` or `meter` given times the audio with it (song_timing).
    """
    check_audio_name(source.audio)
    template = copy.deepcopy(source.template_for(target.star_rating))
    template.format_version = 14  # what is written: one curve type per slider, as stable reads
    template.difficulty = target.difficulty(
        template.difficulty, source.slider_multiplier_for(target.star_rating))
    mel = features(source.audio)
    template.timing_points, timing, estimate = song_timing(template, mel, source.audio, bpm,
                                                           meter)
    if timing == "estimated" and not source.siblings:  # a song with no map of its own: kiai
        mark_kiai(template, mel)  # time on its loud sections
    template.editor["BeatDivisor"] = str(DEFAULT_BEAT_DIVISOR if timing == "none" else (
        new_map_divisor(template.timing_points, mel,
                        source.sibling_for(target.star_rating) if timing == "map" else None,
                        own_timing=timing == "map")))
    song_ms = mel.shape[-1] * FRAME_MS
    wanted = target.star_rating
    condition = condition_vector(template.difficulty, wanted)
    tried: list[tuple[float, float]] = []  # (effort, stars)
    best: tuple[float, Beatmap, DecodingOptions] | None = None  # (stars, map, options)
    effort = 0.0
    for attempt in range(1, max(1, max_attempts) + 1):
        if attempt > 1:
            if on_retry is not None:
                on_retry(attempt, tried[-1][1])
            effort = next_effort(tried, wanted)
        tried_options = new_map_rules(options, template.difficulty.cs, wanted, effort,
                                      DENSITY_PER_EFFORT, EFFORT_PER_STAR)
        objects = generator.generate(mel, template, condition, 0.0, song_ms,
                                     options=tried_options, progress=progress,
                                     should_stop=should_stop)
        beatmap = copy.deepcopy(template)
        beatmap.hit_objects = objects
        stars = star_rating(beatmap)
        tried.append((effort, stars))
        if best is None or abs(stars - wanted) < abs(best[0] - wanted):
            best = (stars, beatmap, tried_options)
        if abs(stars - wanted) <= STAR_TOLERANCE:
            break
    stars, beatmap, kept = best
    if timing == "none":
        beatmap.timing_points = [placeholder_red_line(beatmap.timing_points),
                                 *beatmap.timing_points]
    update_breaks(beatmap)  # the sliders' durations: decoding set them
    if timing != "none":  # combos on the bars (a placeholder red line has none), and
        # the set's hitsounds, or finishes where sections start (after breaks, just written)
        set_new_combos(beatmap)
        if copy_set_hitsounds(beatmap, source.siblings_by_stars(wanted)) is None:
            # a bare song: claps where its snare plays the backbeat (core.backbeat)
            claps = clap_test(mel, beatmap.timing_points) if not source.siblings else None
            apply_pattern(beatmap, Pattern(finishes=True, claps=claps), (-math.inf, math.inf))
    beatmap.format_version = 14
    beatmap.metadata["Version"] = f"kiai {wanted:.1f}"
    return Generated(as_new_difficulty(beatmap), stars, len(tried), timing, kept.spacing,
                     kept.density_bias, kept.gap_shares,
                     estimate.alternative_bpm if estimate else None,
                     estimate.bpm_tag if estimate else None,
                     estimate.tempo_from if estimate else None)


def placeholder_red_line(points: list[TimingPoint]) -> TimingPoint:
    """The red line a map of beatless audio is written with: osu! stable needs one to load a
    map, and its 60 BPM (lazer's default, DEFAULT_BEAT_LENGTH) is what the sliders' durations
    were generated against, so they keep them. The mapper times the song over it."""
    start = min([0.0, *(p.time for p in points)])
    return TimingPoint(time=start, beat_length=DEFAULT_BEAT_LENGTH, meter=4)


def has_placeholder_timing(beatmap: Beatmap) -> bool:
    """Whether the map's only red line is the placeholder a kiai map of beatless audio got:
    generating for its folder again, or continuing it, must not snap to that 60 BPM grid."""
    red = [p for p in beatmap.timing_points if p.uninherited]
    return ("kiai" in beatmap.version.lower() and len(red) == 1
            and red[0].beat_length == DEFAULT_BEAT_LENGTH and red[0].time <= 0)


def untimed(beatmap: Beatmap) -> Beatmap:
    """A copy without red lines (green ones stay)."""
    bare = copy.deepcopy(beatmap)
    bare.timing_points = [p for p in beatmap.timing_points if not p.uninherited]
    return bare


def next_effort(tried: list[tuple[float, float]], wanted: float) -> float:
    """The effort of the next attempt: between the attempts that fell short and overshot
    where some did each, else the last one moved by its miss (EFFORT_PER_STAR), or along the
    secant of the last two where the stars rose with the effort; a step is at most
    MAX_EFFORT_STEP and the effort stays within +-MAX_EFFORT.

    Between two, the log of the stars is interpolated: they grow faster than the effort (its
    ceiling is exp(effort) x the typical), and a straight line through 5.15 stars at 0 and
    8.61 at 0.54 had landed the last attempt of a 6.5-star request at 5.93 (QA round 6)."""
    short = [(e, g) for e, g in tried if 0 < g < wanted]
    over = [(e, g) for e, g in tried if g > wanted]
    if short and over:
        (e0, g0), (e1, g1) = max(short), min(over)  # the nearest efforts either side
        if e0 < e1:
            return e0 + (e1 - e0) * math.log(wanted / g0) / math.log(g1 / g0)
    effort, got = tried[-1]
    step = (wanted - got) * EFFORT_PER_STAR
    if len(tried) >= 2:
        (e0, g0), (e1, g1) = tried[-2], tried[-1]
        if e1 != e0 and (g1 - g0) / (e1 - e0) > 0.5:  # a usable, rising slope
            step = (wanted - g1) * (e1 - e0) / (g1 - g0)
    step = min(max(step, -MAX_EFFORT_STEP), MAX_EFFORT_STEP)
    return min(max(effort + step, -MAX_EFFORT), MAX_EFFORT)


def as_new_difficulty(beatmap: Beatmap) -> Beatmap:
    """Forget the online id of the difficulty it came from: osu! would otherwise take the new
    file for that (ranked) difficulty with an update pending."""
    if "BeatmapID" in beatmap.metadata:
        beatmap.metadata["BeatmapID"] = "0"
    return beatmap
