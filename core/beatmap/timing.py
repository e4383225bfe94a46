"""Control point lookups and slider durations as osu!lazer computes them.

Why not "the last timing point before t": lazer's decoder merges a map's timing lines into
control points with its own rules (lines at the same time, NaN slider velocities, redundant
points, clamped beat lengths), and a slider's velocity goes through a float32 round trip that
osu!stable introduced. Durations must match the game's to the millisecond, because a slider's
end time is what the token language carries. Sources (ppy/osu):

- `osu.Game/Beatmaps/Formats/LegacyBeatmapDecoder.cs`: `handleTimingPoint`, `addControlPoint`,
  `flushPendingPoints`, `applyDefaults`, `handleDifficulty`.
- `osu.Game/Beatmaps/ControlPoints/`: `ControlPointInfo` (`TimingPointAt`, `BinarySearch`),
  `TimingControlPoint` (beat length bindable 6..60000), `DifficultyControlPoint` (0.1..10).
- `osu.Game/Rulesets/Objects/Legacy/LegacyRulesetExtensions.cs`: `GetPrecisionAdjustedBeatLength`.
- `osu.Game.Rulesets.Osu/Objects/Slider.cs`: `ApplyDefaultsToSelf`, `EndTime`.

A duration needs the path's distance; `path_distance` knows it without approximating the curve
for most sliders (the pixel length, exactly), so parsing a map stays cheap.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence

from core.beatmap.approximator import round_f32
from core.beatmap.curves import expected_distance, slider_path, slider_paths
from core.beatmap.model import Beatmap, Difficulty, HitObject, Mode, Slider, TimingPoint
from core.beatmap.numbers import format_number
from core.beatmap.path_string import FIRST_LAZER_VERSION, path_type

DEFAULT_BEAT_LENGTH = 1000.0  # TimingControlPoint.DEFAULT (60 BPM) when a map has no timing
MIN_BEAT_LENGTH = 6.0  # TimingControlPoint.BeatLengthBindable.MinValue
MAX_BEAT_LENGTH = 60_000.0  # TimingControlPoint.BeatLengthBindable.MaxValue
MIN_SLIDER_VELOCITY = 0.1  # DifficultyControlPoint.SliderVelocityBindable / Slider's bindable
MAX_SLIDER_VELOCITY = 10.0
MAX_PARSE_VALUE = 2_147_483_647  # Parsing.MAX_PARSE_VALUE: larger numbers reject the line
BASE_SCORING_DISTANCE = 100.0  # OsuHitObject.BASE_SCORING_DISTANCE
# LegacyBeatmapDecoder.handleDifficulty clamps (the model keeps the file's values).
SLIDER_MULTIPLIER_RANGE = (0.4, 3.6)
SLIDER_TICK_RATE_RANGE = (0.5, 8.0)


def _clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def _speed_multiplier(beat_length: float) -> float:
    """handleTimingPoint: `beatLength < 0 ? 100.0 / -beatLength : 1` (NaN compares false)."""
    return 100.0 / -beat_length if beat_length < 0 else 1.0


def first_disorder(items: Sequence[TimingPoint | HitObject]) -> str:
    """Where a list of timed things first goes back in time, to name it in a warning."""
    a, b = next((a, b) for a, b in itertools.pairwise(items) if b.time < a.time)
    return f"{format_number(b.time)} ms comes after {format_number(a.time)} ms"


def in_time_order(points: Sequence[TimingPoint]) -> tuple[list[TimingPoint], list[float]]:
    """Timing lines sorted by time (stable) with what lazer's decoder does to lines out of
    order kept: it reads them in file order, one group per run of lines at one time, and a
    later group at a time already seen replaces the earlier group's points of each kind it
    has (`ControlPointGroup.Add`). So a later run with a red line replaces everything at that
    time, one with only green lines replaces the earlier green lines; the replaced lines are
    dropped and the rest merge into one group, whose ControlPoints match lazer's. Returns the
    sorted lines and the times where lines were dropped."""
    kept: dict[float, list[TimingPoint]] = {}
    replaced: list[float] = []
    for time, group in itertools.groupby(points, key=lambda p: p.time):
        run = list(group)
        earlier = kept.get(time)
        if earlier is not None:
            red = [p for p in earlier if p.uninherited]
            merged = run if any(p.uninherited for p in run) else red + run
            if len(merged) < len(earlier) + len(run):
                replaced.append(time)
            run = merged
        kept[time] = run
    ordered = [p for time in sorted(kept) for p in kept[time]]
    return ordered, replaced


class ControlPoints:
    """The timing and difficulty (slider velocity) control points lazer builds from a map.

    Lines are merged as `LegacyBeatmapDecoder.addControlPoint`/`flushPendingPoints` do: lines at
    the same time (in a row) form one group in which an inherited line's slider velocity wins over
    the uninherited line's reset to 1, and the group's first uninherited line is its timing point.
    A difficulty point equal to the one already in effect is dropped as redundant
    (`ControlPointInfo.Add`). Lines lazer rejects (an uninherited NaN beat length, a time or beat
    length beyond int.MaxValue, NaN times) are ignored here; the parser reports them.
    """

    def __init__(self, timing_points: Iterable[TimingPoint]) -> None:
        self._timing_times: list[float] = []
        self._timing: list[TimingPoint] = []
        self._sv_times: list[float] = []
        self._sv: list[tuple[float, bool]] = []  # (slider velocity, generate ticks)
        pending_time = 0.0  # lazer's pendingControlPointsTime starts at 0
        group_timing: TimingPoint | None = None
        group_sv: tuple[float, bool] | None = None
        group_inherited = False
        for point in timing_points:
            time = float(point.time)
            beat = float(point.beat_length)
            if not (math.isfinite(time) and abs(time) <= MAX_PARSE_VALUE):
                continue  # Parsing.ParseDouble rejects the line
            if not (math.isnan(beat) or abs(beat) <= MAX_PARSE_VALUE):
                continue
            if point.uninherited and math.isnan(beat):
                continue  # "Beat length cannot be NaN in a timing control point"
            if time != pending_time:
                self._flush(pending_time, group_timing, group_sv)
                group_timing, group_sv, group_inherited = None, None, False
            sv = (_clamp(_speed_multiplier(beat), MIN_SLIDER_VELOCITY, MAX_SLIDER_VELOCITY),
                  not math.isnan(beat))
            if point.uninherited:
                # Timing lines' points are inserted at the front of the pending list and the
                # list is read from the back, so the first timing line of a group wins...
                if group_timing is None:
                    group_timing = point
                if not group_inherited and group_sv is None:
                    group_sv = sv
            else:
                # ...while non-timing lines append, so the last inherited line wins over all.
                group_sv = sv
                group_inherited = True
            pending_time = time
        self._flush(pending_time, group_timing, group_sv)
        self._beat_lengths = [_clamp(float(p.beat_length), MIN_BEAT_LENGTH, MAX_BEAT_LENGTH)
                              for p in self._timing]

    def _flush(self, time: float, timing: TimingPoint | None,
               sv: tuple[float, bool] | None) -> None:
        """ControlPointInfo.Add for the group's points: one point per type and time."""
        if timing is not None:  # timing points are never redundant; a same-time one is replaced
            i = bisect.bisect_left(self._timing_times, time)
            if i < len(self._timing_times) and self._timing_times[i] == time:
                self._timing[i] = timing
            else:
                self._timing_times.insert(i, time)
                self._timing.insert(i, timing)
        if sv is not None:
            i = bisect.bisect_right(self._sv_times, time)
            existing = self._sv[i - 1] if i > 0 else (1.0, True)  # DifficultyPointAt(time)
            if sv == existing:
                return  # DifficultyControlPoint.IsRedundant
            if i > 0 and self._sv_times[i - 1] == time:
                self._sv[i - 1] = sv
            else:
                self._sv_times.insert(i, time)
                self._sv.insert(i, sv)

    @property
    def timing_points(self) -> list[TimingPoint]:
        """The red lines in effect, one per time, in time order, as lazer keeps them."""
        return list(self._timing)

    def _timing_index(self, t: float) -> int:
        """ControlPointInfo.TimingPointAt: the last at or before t; before the first, the first."""
        if not self._timing:
            return -1
        return max(bisect.bisect_right(self._timing_times, t) - 1, 0)

    def timing_point_at(self, t: float) -> TimingPoint:
        """The uninherited timing point in effect at `t` (lazer's fallback: the first one).

        A map without timing gets lazer's default: 60 BPM from time 0.
        """
        i = self._timing_index(t)
        if i < 0:
            return TimingPoint(time=0.0, beat_length=DEFAULT_BEAT_LENGTH)
        return self._timing[i]

    def beat_length_at(self, t: float) -> float:
        """The beat length at `t` as lazer uses it: clamped to 6..60000 ms."""
        i = self._timing_index(t)
        return DEFAULT_BEAT_LENGTH if i < 0 else self._beat_lengths[i]

    def _difficulty_at(self, t: float) -> tuple[float, bool]:
        """LegacyControlPointInfo.DifficultyPointAt: before the first point, the default (1x)."""
        i = bisect.bisect_right(self._sv_times, t) - 1
        return self._sv[i] if i >= 0 else (1.0, True)

    def slider_velocity_at(self, t: float) -> float:
        """The slider velocity multiplier at `t`: 100 / -beatLength of inherited points, 0.1..10."""
        return self._difficulty_at(t)[0]

    def generate_ticks_at(self, t: float) -> bool:
        """False after an inherited point with a NaN beat length (maps use it to hide ticks)."""
        return self._difficulty_at(t)[1]


# -- the path's distance, which a slider's duration needs ----------------------------------------


def _known_distance(slider: Slider, format_version: int) -> float | None:
    """`SliderPath.Distance` where it is known without approximating the curve, else None.

    With a pixel length the path is trimmed or extended to exactly that length, unless the last
    two *path* points are equal (stable's no-extension rule) or there is no path. For L, B and P
    curves with integer anchors (every format before v128) the last two path points can only be
    equal when the last two control points are: convertPoints never drops a segment's last point,
    and the point before it survives as itself or as the equal point it repeats.
    """
    expected = expected_distance(slider)
    if expected is None or format_version >= FIRST_LAZER_VERSION:
        return None
    points = slider.points
    if not points:
        return 0.0  # the head alone: a one-point path has no length
    try:
        hx, hy = math.trunc(slider.x), math.trunc(slider.y)
        last = (math.trunc(points[-1][0]), math.trunc(points[-1][1]))
        before = (math.trunc(points[-2][0]), math.trunc(points[-2][1])) if len(points) > 1 \
            else (hx, hy)
        # Bezier pieces near a far-away anchor could round onto the end point in float32.
        far = any(abs(x - hx) >= 2048 or abs(y - hy) >= 2048 for x, y in points)
    except (ValueError, OverflowError):  # NaN or infinite anchors: compute it in full
        return None
    letters = (slider.curve_type, *slider.segment_types.values())
    if last == before or far or any(path_type(t) not in ("L", "B", "P") for t in letters):
        return None
    return expected


def path_distance(slider: Slider, format_version: int) -> float:
    """`SliderPath.Distance` of a slider, approximating the curve only where it matters."""
    known = _known_distance(slider, format_version)
    return known if known is not None else slider_path(slider, format_version).distance


def path_distances(sliders: Sequence[Slider], format_version: int) -> list[float]:
    """`path_distance` of many sliders of one map, the curves needed computed together."""
    distances = [_known_distance(s, format_version) for s in sliders]
    todo = [i for i, d in enumerate(distances) if d is None]
    if todo:
        paths = slider_paths([sliders[i] for i in todo], format_version)
        for i, path in zip(todo, paths, strict=True):
            distances[i] = path.distance
    return distances  # type: ignore[return-value]


def precision_adjusted_beat_length(beat_length: float, slider_velocity: float,
                                   mode: Mode = Mode.OSU) -> float:
    """LegacyRulesetExtensions.GetPrecisionAdjustedBeatLength.

    The velocity is turned back into stable's negative beat length, narrowed to float32 and
    clamped (10..1000 for osu!/catch, 10..10000 for taiko/mania) before it scales the beat.
    """
    as_beat_length = -100.0 / slider_velocity
    if as_beat_length < 0:
        high = 10_000.0 if mode in (Mode.TAIKO, Mode.MANIA) else 1000.0
        multiplier = _clamp(round_f32(-as_beat_length), 10.0, high) / 100.0
    else:
        multiplier = 1.0
    return beat_length * multiplier


def slider_velocity(slider: Slider, difficulty: Difficulty, control_points: ControlPoints,
                    mode: Mode = Mode.OSU) -> float:
    """Slider.ApplyDefaultsToSelf's `Velocity`: osu!pixels per millisecond."""
    multiplier = float(difficulty.slider_multiplier)
    if not math.isfinite(multiplier):
        multiplier = 1.4  # the line would have been rejected; lazer's default stays
    multiplier = _clamp(multiplier, *SLIDER_MULTIPLIER_RANGE)
    sv = _clamp(control_points.slider_velocity_at(slider.time),
                MIN_SLIDER_VELOCITY, MAX_SLIDER_VELOCITY)
    beat = precision_adjusted_beat_length(control_points.beat_length_at(slider.time), sv, mode)
    return BASE_SCORING_DISTANCE * multiplier / beat


def slider_duration(slider: Slider, difficulty: Difficulty, control_points: ControlPoints,
                    format_version: int = 14, mode: Mode = Mode.OSU,
                    distance: float | None = None) -> float:
    """Slider.Duration: `EndTime - StartTime` with EndTime = start + spans * distance / velocity.

    `distance` is the path's distance (`path_distance` when not given).
    """
    if distance is None:
        distance = path_distance(slider, format_version)
    spans = max(1, int(slider.slides))
    velocity = slider_velocity(slider, difficulty, control_points, mode)
    start = float(slider.time)
    return (start + spans * distance / velocity) - start


def annotate_sliders(beatmap: Beatmap) -> None:
    """Set `duration` on every slider of `beatmap`; never raises on odd data.

    A slider whose duration cannot be computed (or is not finite) gets 0 ms.
    """
    sliders = [h for h in beatmap.hit_objects if isinstance(h, Slider)]
    if not sliders:
        return
    try:
        control_points = ControlPoints(beatmap.timing_points)
        mode = beatmap.mode
    except Exception:  # malformed timing must not fail a parse
        control_points = ControlPoints([])
        mode = Mode.OSU
    try:  # the curves that matter, all approximated together
        distances: list[float | None] = list(path_distances(sliders, beatmap.format_version))
    except Exception:  # one odd slider: fall back to one at a time
        distances = [None] * len(sliders)
    for slider, distance in zip(sliders, distances, strict=True):
        try:
            duration = slider_duration(slider, beatmap.difficulty, control_points,
                                       beatmap.format_version, mode, distance)
        except Exception:  # the parser reports the line; the map still loads
            duration = 0.0
        slider.duration = duration if math.isfinite(duration) and duration >= 0 else 0.0
