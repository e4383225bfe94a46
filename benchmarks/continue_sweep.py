"""Continue every osu!standard map of the corpus from its middle, as `kiai continue` does; a table.

Real maps are the test of "continue from here": format versions 3-14 and 128, odd sliders,
stacked streams, maps with no AudioFilename. The corpus has their .osu files but not their
songs, so each map gets a stand-in track: the corpus's triangles, repeated to 30 minutes (a
real song's sound, under the map's own AudioFilename, or audio.wav for the test maps that name
none). Per map: continue from its middle object for `--seconds`, write it through the CLI's
writer, and check what the CLI promises: every object line before the start unchanged (a map
older than v5 is written as v14 with its times 24 ms later, lazer's reading of it, and
otherwise the same lines), the new objects inside the span and on the playfield, times rising,
and rosu-pp reading as many objects. A map refused with a clear message (a start past the
audio's end, say) counts as refused, not failed; a traceback is a failure.

The join: where the map goes on after the span, the jump from the last new object's end into
the first kept one, in px per ms of gap, against the map's own spacing ceiling before the start
(core.spacing.observed_spacing); over 1.1 of it is a jump the map would not make.

Sounds: of the new heads at the time of one of the mapper's own heads in the span (within 2
ms), the share carrying the same additions (whistle, finish, clap), and the share with the
same additions and sample sets, over the maps whose heads before the start are hitsounded.

The start and the density: how much later than the mapper's own first object in the span the
first new one comes (a hole after `--from` where over a beat), and the new objects per mapper's
object in the span (medians over the maps).

    .venv/bin/python benchmarks/continue_sweep.py [--seconds 8] [--min-objects 10]
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

import numpy as np
import rosu_pp_py as rosu
import soundfile as sf
from corpus import corpus_root, standard_maps

from companion.continuation import UnusableTimingError, audio_of, continue_beatmap
from companion.mapping import decoding_options, load_generator
from core.audio import SAMPLE_RATE, AudioError, load_audio_bytes
from core.beatmap.model import PLAYFIELD_HEIGHT, PLAYFIELD_WIDTH, Beatmap, Spinner
from core.beatmap.parser import OLD_VERSION_OFFSET_MS, parse_bytes, parse_file
from core.beatmap.writer import save
from core.hitsounds import ADDITIONS, head_sets, head_sound
from core.spacing import end_position, observed_spacing

TRACK_S = 1800  # the corpus's marathon map runs 25 minutes


def stand_in_track(out: Path) -> Path:
    with zipfile.ZipFile(corpus_root() / "osu-resources" / "triangles.osz") as z:
        audio = load_audio_bytes(z.read("audio.mp3"), "triangles.osz/audio.mp3")
    reps = -(-TRACK_S * SAMPLE_RATE // len(audio))
    sf.write(out, np.tile(audio, reps)[: TRACK_S * SAMPLE_RATE], SAMPLE_RATE, subtype="PCM_16")
    return out


def object_lines(text: str, before_ms: float, shift_ms: int = 0) -> list[str]:
    """The [HitObjects] lines of an .osu text whose time (+ `shift_ms`) is before `before_ms`,
    with that time written shifted."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "[HitObjects]") + 1
    out = []
    for line in lines[start:]:
        fields = line.split(",")
        if line.startswith("[") and line.strip().endswith("]"):
            break
        if (len(fields) >= 3 and re.fullmatch(r"-?[0-9]+", fields[2].strip())
                and int(fields[2]) + shift_ms < before_ms):
            if shift_ms:
                fields[2] = str(int(fields[2]) + shift_ms)
            out.append(",".join(fields))
    return out


def check(source: str, version: int, written: Path, from_ms: float, until_ms: float
          ) -> list[str]:
    """What the CLI promises of `written`, continued from `source` (of format `version`)."""
    problems = []
    # a map older than v5 is written as v14 with every time OLD_VERSION_OFFSET_MS later, the
    # shift lazer applies when it reads one: the same timing, lines otherwise unchanged
    shift = OLD_VERSION_OFFSET_MS if version < 5 else 0
    if object_lines(written.read_text(encoding="utf-8"), from_ms) != \
            object_lines(source, from_ms, shift):
        problems.append("an object line before the start changed")
    beatmap = parse_file(written).beatmap
    new = [o for o in beatmap.hit_objects if from_ms <= o.time < until_ms]
    times = [o.time for o in beatmap.hit_objects]
    if any(b < a for a, b in itertools.pairwise(times)):
        problems.append("times go backwards")
    if any(not (0 <= o.x <= PLAYFIELD_WIDTH and 0 <= o.y <= PLAYFIELD_HEIGHT) for o in new):
        problems.append("a new object off the playfield")
    if rosu.Beatmap(path=str(written)).n_objects != len(beatmap.hit_objects):
        problems.append("rosu-pp counts other objects")
    return problems


def join_ratio(beatmap: Beatmap, result: Beatmap, from_ms: float, until_ms: float
                ) -> float | None:
    """The join's px/ms over the map's ceiling before `from_ms`; None without a join (no new
    object, none kept after, or a ceiling too few moves to tell)."""
    ceiling = observed_spacing(beatmap, from_ms)
    new = [o for o in result.hit_objects if from_ms <= o.time < until_ms]
    kept = [o for o in result.hit_objects if o.time >= until_ms]
    if ceiling is None or not new or not kept or isinstance(kept[0], Spinner) \
            or isinstance(new[-1], Spinner):
        return None
    gap = kept[0].time - new[-1].end_time
    distance = math.dist(end_position(new[-1], result.format_version), (kept[0].x, kept[0].y))
    return distance / max(gap, 1.0) / ceiling


def start_and_density(beatmap: Beatmap, result: Beatmap, from_ms: float, until_ms: float
                      ) -> tuple[float, float, float] | None:
    """(ms the first new object comes after the mapper's own first one in the span, the beat
    there, new objects per mapper's object in the span); None where either has none."""
    own = [o.time for o in beatmap.hit_objects if from_ms <= o.time < until_ms]
    new = [o.time for o in result.hit_objects if from_ms <= o.time < until_ms]
    red = [p for p in beatmap.timing_points if p.uninherited and p.time <= from_ms]
    if not own or not new or not red:
        return None
    return new[0] - own[0], red[-1].beat_length, len(new) / len(own)


def sound_matches(beatmap: Beatmap, result: Beatmap, from_ms: float, until_ms: float
                  ) -> tuple[int, int, int]:
    """(new heads at one of the mapper's heads' times, of them with its additions, with its
    additions and sets); zeros where the map before `from_ms` is not hitsounded."""
    if not any(head_sound(o) & ADDITIONS for o in beatmap.hit_objects if o.time < from_ms):
        return 0, 0, 0
    theirs = {round(o.time): o for o in beatmap.hit_objects
              if from_ms <= o.time < until_ms and not isinstance(o, Spinner)}
    counts = [0, 0, 0]
    for obj in result.hit_objects:
        if not from_ms <= obj.time < until_ms or isinstance(obj, Spinner):
            continue
        mine = next((theirs[t] for t in range(round(obj.time) - 2, round(obj.time) + 3)
                     if t in theirs), None)
        if mine is None:
            continue
        same = head_sound(obj) & ADDITIONS == head_sound(mine) & ADDITIONS
        counts[0] += 1
        counts[1] += same
        counts[2] += same and head_sets(obj) == head_sets(mine)
    return counts[0], counts[1], counts[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--min-objects", type=int, default=10)
    args = parser.parse_args()
    generator = load_generator(None)
    counts = {"ok": 0, "refused": 0, "failed": 0}
    started = time.perf_counter()
    joins: list[float] = []
    starts: list[tuple[float, float, float]] = []
    sounds = [0, 0, 0]
    print(f"{'map':<72} {'objects':>7} {'from s':>7} {'new':>4} {'join':>5}  result")
    with tempfile.TemporaryDirectory() as tmp:
        track = stand_in_track(Path(tmp) / "track.wav")
        for index, (name, data) in enumerate(standard_maps()):
            beatmap = parse_bytes(data, name).beatmap
            if len(beatmap.hit_objects) < args.min_objects:
                continue
            folder = Path(tmp) / f"set{index}"
            folder.mkdir()
            audio_name = (beatmap.audio_filename or "").strip()
            if not audio_name:  # ppy's test maps often name none: the stand-in's name, then
                audio_name = beatmap.general["AudioFilename"] = "audio.wav"
            if "/" not in audio_name and "\\" not in audio_name:
                (folder / audio_name).symlink_to(track)
            from_ms = float(beatmap.hit_objects[len(beatmap.hit_objects) // 2].time)
            until_ms = from_ms + args.seconds * 1000
            new, join = 0, None
            try:
                audio = audio_of(beatmap, folder)
                result = continue_beatmap(generator, beatmap, audio, from_ms, until_ms,
                                          decoding_options(seed=0))
                written = save(result, folder / "continued.osu")
                new = sum(from_ms <= o.time < until_ms for o in result.hit_objects)
                join = join_ratio(beatmap, result, from_ms, until_ms)
                sounds = [a + b for a, b in zip(sounds, sound_matches(beatmap, result, from_ms,
                                                                      until_ms))]
                if join is not None:
                    joins.append(join)
                start = start_and_density(beatmap, result, from_ms, until_ms)
                if start is not None:
                    starts.append(start)
                problems = check(data.decode("utf-8-sig", "replace"), beatmap.format_version,
                                 written, from_ms, until_ms)
                outcome = "FAILED: " + "; ".join(problems) if problems else "ok"
            except AudioError as e:
                outcome = f"refused: {e.reason}"
            except UnusableTimingError as e:  # what the CLI says before loading anything
                outcome = f"refused: {e}"
            except Exception as e:  # a benchmark reports a failure, it does not stop
                outcome = f"FAILED: {type(e).__name__}: {e}"
                traceback.print_exc()
            key = outcome.split(":")[0].lower()
            counts[key] += 1
            print(f"{name[-72:]:<72} {len(beatmap.hit_objects):>7} {from_ms / 1000:>7.1f} "
                  f"{new:>4} {'' if join is None else f'{join:.2f}':>5}  {outcome[:90]}",
                  flush=True)
    print(f"\n{sum(counts.values())} maps: {counts['ok']} ok, {counts['refused']} refused with a "
          f"message, {counts['failed']} failed; {time.perf_counter() - started:.0f} s")
    if joins:
        print(f"joins into the kept map: {len(joins)}, median {np.median(joins):.2f} of the "
              f"map's ceiling, over 1.1: {sum(j > 1.1 for j in joins)}, worst {max(joins):.2f}")
    if starts:
        late = [d for d, _, _ in starts]
        print(f"first new object after the mapper's own first: median {np.median(late):.0f} ms, "
              f"over a beat late {sum(d > beat for d, beat, _ in starts)} of {len(starts)}; new "
              f"objects per mapper's: median {np.median([r for _, _, r in starts]):.2f}")
    if sounds[0]:
        print(f"new heads at the mapper's own heads' times: {sounds[0]}, the same additions "
              f"{sounds[1] / sounds[0]:.1%}, the same additions and sets "
              f"{sounds[2] / sounds[0]:.1%}")


if __name__ == "__main__":
    main()
