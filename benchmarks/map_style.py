"""Generated maps beside ranked maps of the same stars: the craft a mapper reads at a glance.

Aim, speed and timing are measured elsewhere (generated_maps.py). This is the rest of what makes
a map look made by a mapper, measured the same way on the corpus's ranked osu!standard maps
(stars by rosu-pp, 100+ objects) and on maps kiai generates for the corpus's three real tracks
(their first `--seconds`, hand-made timing) and `--synth` synthetic songs, at `--stars`.

Per map, then the median per star band:
- overlap: of objects that start half a beat or more after the last one ends, the share whose
  circle overlaps where it ended (centres 4 px to 0.8 diameter apart: not a stack).
- stacked: the share of consecutive objects on one spot (under 4 px), any gap.
- snap spread: of two neighbouring moves with the same gap in time, how much their distances
  differ (|d1 - d2| / the larger; median). Distance snap keeps it near 0 in low difficulties.
- sliders: the share of circles and sliders that are sliders.
- tiny sliders: the share of sliders shorter than a circle's radius (they read as circles).
- combo: median objects per combo; NC on bar: the share of new combos on a bar line or half
  a bar (mappers start combos with the music's phrases).
- hitsounds: the share of objects with a whistle, finish or clap.
- crossing: the share of sliders whose played path crosses itself; run past: the share that
  play over 4 px past their last anchor (osu! goes on in a straight line there, unseen in the
  editor); anchors: the median anchors per slider (the head not counted); reverses: the share
  of sliders that go back at least once.
- stream step: the median step of its streams (core.streams: a circle to a head under 140 ms
  after it) in circle diameters, printed x100 as a percentage; stream turns: the share of
  steps that turn back (over 90 degrees) from the step before; stream spread: how much a
  step's length differs from the step before's (|a - b| / the longer; median).
- beat/half: the median move over a beat's gap over the median over a half beat's (gaps from
  one end to the next start, at least 10 of each): distance snap across rhythms makes it 2, as
  in most ranked maps up to 5 stars; under 1.2, a beat's rest looks like a half beat's.

    PYTHONPATH=. .venv/bin/python benchmarks/map_style.py [--stars 2 3 4 5 6] [--seconds 60]
        [--synth 2] [--seeds 1] [--model CKPT]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.corpus import standard_maps
from benchmarks.generated_maps import cropped_song, real_songs, synth_songs, template_of
from companion.mapping import Target, decoding_options, generate_beatmap, load_generator
from core.beatmap.curves import expected_distance, slider_path
from core.beatmap.model import Beatmap, Slider, Spinner
from core.beatmap.parser import parse_bytes
from core.beatmap.timing import ControlPoints
from core.difficulty import star_rating
from core.hitsounds import head_sound
from core.playfield import first_crossing
from core.song_input import SongInput
from core.spacing import end_position
from core.streams import stream_steps

BANDS = ((0.0, 2.5), (2.5, 3.5), (3.5, 4.5), (4.5, 5.5), (5.5, 99.0))
STACK_PX = 4.0
SAME_GAP_MS = 2.0
MIN_OBJECTS = 100
COLUMNS = ("overlap", "stacked", "snap spread", "sliders", "tiny sliders", "combo", "NC on bar",
           "hitsounds", "stream step", "stream turns", "stream spread", "crossing", "run past",
           "anchors", "reverses", "beat/half")
RUN_PAST_PX = 4.0
RHYTHM_MS = 5.0  # a move's gap this near a half beat or a beat is that rhythm (beat/half)
MIN_RHYTHM_MOVES = 10  # fewer moves of either rhythm: no ratio


def circle_radius(beatmap: Beatmap) -> float:
    return 54.4 - 4.48 * beatmap.difficulty.cs


def style(beatmap: Beatmap) -> dict[str, float]:
    """The COLUMNS of one map (nan where it has nothing to measure)."""
    objects = beatmap.hit_objects
    radius = circle_radius(beatmap)
    timing = ControlPoints(beatmap.timing_points)
    overlaps, stacks, moves = [], [], []
    by_beats: dict[float, list[float]] = {0.5: [], 1.0: []}  # beats of gap -> distances
    for prev, obj in itertools.pairwise(objects):
        if isinstance(prev, Spinner) or isinstance(obj, Spinner):
            continue
        gap = obj.time - prev.end_time
        px, py = end_position(prev, beatmap.format_version)
        distance = math.hypot(obj.x - px, obj.y - py)
        stacks.append(distance < STACK_PX)
        if gap >= timing.timing_point_at(obj.time).beat_length / 2 - 2:
            overlaps.append(STACK_PX <= distance < 1.6 * radius)
        moves.append((gap, distance))
        beat = timing.timing_point_at(obj.time).beat_length
        for beats, distances in by_beats.items():
            if abs(gap - beats * beat) <= RHYTHM_MS:
                distances.append(distance)
    spreads = [abs(d1 - d2) / max(d1, d2)
               for (g1, d1), (g2, d2) in itertools.pairwise(moves)
               if abs(g1 - g2) <= SAME_GAP_MS and max(d1, d2) >= STACK_PX]
    steps, turns, changes = stream_steps(beatmap)
    sliders = [o for o in objects if isinstance(o, Slider)]
    tiny = [(o.length or 0.0) < radius for o in sliders]
    combos, on_bar, run = [], [], 0
    for i, obj in enumerate(objects):
        if i and obj.new_combo and not isinstance(obj, Spinner):
            combos.append(run)
            run = 0
            point = timing.timing_point_at(obj.time)
            meter = max(1, point.meter)
            beats = (obj.time - point.time) / point.beat_length
            half_bar = meter / 2 if meter % 2 == 0 else meter
            on_bar.append(abs(beats / half_bar - round(beats / half_bar)) * half_bar < 0.05)
        run += 1
    return {
        "overlap": _mean(overlaps), "stacked": _mean(stacks),
        "snap spread": float(np.median(spreads)) if spreads else math.nan,
        "sliders": _mean([isinstance(o, Slider) for o in objects if not isinstance(o, Spinner)]),
        "tiny sliders": _mean(tiny), "combo": float(np.median(combos)) if combos else math.nan,
        "NC on bar": _mean(on_bar),
        "hitsounds": _mean([head_sound(o) & 0b1110 != 0 for o in objects]),
        # a stream's steps (core.streams) in diameters (the column prints x100 as %)
        "stream step": float(np.median(steps)) / (2 * radius) if steps else math.nan,
        "stream turns": _mean(turns),
        "stream spread": float(np.median(changes)) if changes else math.nan,
        "crossing": _mean([first_crossing(slider_path(o, beatmap.format_version).points)
                           is not None for o in sliders]),
        "run past": _mean([runs_past(o, beatmap.format_version) for o in sliders]),
        "anchors": float(np.median([len(o.points) for o in sliders])) if sliders else math.nan,
        "reverses": _mean([o.slides > 1 for o in sliders]),
        "beat/half": float(np.median(by_beats[1.0]) / np.median(by_beats[0.5]))
        if min(len(d) for d in by_beats.values()) >= MIN_RHYTHM_MOVES
        and np.median(by_beats[0.5]) > 0 else math.nan,
    }


def runs_past(slider: Slider, format_version: int) -> bool:
    length = expected_distance(slider)
    drawn = slider_path(dataclasses.replace(slider, length=None), format_version).distance
    return length is not None and length > drawn + RUN_PAST_PX


def _mean(flags: list[bool]) -> float:
    return float(np.mean(flags)) if flags else math.nan


def band_of(stars: float) -> str:
    low, high = next(b for b in BANDS if b[0] <= stars < b[1])
    return f"{low:g}-{high:g}" if high < 99 else f"{low:g}+"


def ranked_maps() -> list[tuple[float, dict[str, float]]]:
    out = []
    for name, data in standard_maps():
        beatmap = parse_bytes(data, name).beatmap
        if len(beatmap.hit_objects) >= MIN_OBJECTS:
            out.append((star_rating(beatmap), style(beatmap)))
    return out


def print_table(title: str, rows: list[tuple[float, dict[str, float]]]) -> None:
    print(f"\n{title}")
    print(f"{'stars':<7} {'maps':>4} " + " ".join(f"{c:>12}" for c in COLUMNS))
    for low, high in BANDS:
        chosen = [s for stars, s in rows if low <= stars < high]
        if not chosen:
            continue
        cells = []
        for column in COLUMNS:
            values = [s[column] for s in chosen if not math.isnan(s[column])]
            value = statistics.median(values) if values else math.nan
            cells.append(f"{value:>12.1f}" if column in ("combo", "anchors", "beat/half")
                         else f"{value:>12.1%}")
        print(f"{band_of(low):<7} {len(chosen):>4} " + " ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stars", type=float, nargs="+", default=[2, 3, 4, 5, 6])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--synth", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    print_table("ranked maps in the corpus", ranked_maps())
    generator = load_generator(args.model)
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        songs = [cropped_song(*song, args.seconds) for song in real_songs(Path(tmp))]
        songs += synth_songs(Path(tmp), args.synth, args.seconds)
        for name, audio, truth in songs:
            for stars in args.stars:
                for seed in range(args.seeds):
                    result = generate_beatmap(
                        generator, SongInput(audio.parent, audio, template_of(truth, audio)),
                        Target(stars=stars), decoding_options(seed=seed))
                    made.append((stars, style(result.beatmap)))
                    print(f"{name:<10} {stars:.1f}* seed {seed}: {result.stars:.2f}* "
                          f"{len(result.beatmap.hit_objects)} objects", flush=True)
    print_table("kiai's maps (by the stars asked for)", made)


if __name__ == "__main__":
    main()
