"""Could the drums settle the octave? The General MIDI songs' snare parts, read from their MIDI.

Slow songs with busy drums are timed at twice their tempo (core.tempo's octave rule; see
timing_accuracy.py --gm). The cue a listener is thought to use is the backbeat: a snare every
other beat of the song's tempo. On the grid twice as fast, a slow song's snare falls every 4
beats and a fast song's every 2. This asks what a perfect snare detector would gain: it reads
the drum channel of each MIDI (no audio), folds its snare hits (notes 37-40) onto the fast grid
(the song's tempo, or twice it below SLOW_BPM) and counts, per tempo group, the songs whose
snare is every 4 fast beats (EVERY_4 of its hits on one class of 4), every 2, mixed, or absent.
A rule "snare every 4 -> the slower tempo" would fix the slow songs of the first kind and
break the fast songs of that kind (half-time feel); the last line weighs the two by osu!'s
tempo distribution (OSU_SLOW_SHARE of the corpus's ranked maps are below 115 BPM).

    .venv/bin/python benchmarks/octave_oracle.py [--gm build/gm]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.midi_songs import gm_dir, gm_midis, midi_events, tempo_steps

SLOW_BPM = 116  # as timing_accuracy.py: below, busy drums get a song timed at double
SNARES = {37, 38, 39, 40}  # side stick, acoustic snare, hand clap, electric snare
DRUMS = 9  # General MIDI's percussion channel (10, counted from 1)
EVERY_4, EVERY_2 = 0.85, 0.6  # share of a snare's hits on its top class of the pair (c, c+2)
MIN_HITS = 8  # fewer snare hits on the grid: no drums to read
OSU_SLOW_SHARE = 0.14


def snare_beats(path: Path) -> np.ndarray:
    """The beats (in the MIDI's quarter notes) of every snare hit in `path`'s drum channel."""
    ticks_per_beat, messages = midi_events(path)
    return np.array([tick / ticks_per_beat for tick, msg in messages
                     if msg.type == "note_on" and msg.velocity > 0 and msg.channel == DRUMS
                     and msg.note in SNARES], dtype=np.float64)


def snare_period(beats: np.ndarray, slow: bool) -> str:
    """'every 4', 'every 2', 'mixed' or 'none': how often the snare comes on the fast grid."""
    fast = beats * (2 if slow else 1)
    on = np.round(fast[np.abs(fast - np.round(fast)) < 0.05]).astype(int)
    if len(on) < MIN_HITS:
        return "none"
    classes = np.bincount(on % 4, minlength=4)
    top = int(np.argmax(classes))
    share = classes[top] / (classes[top] + classes[(top + 2) % 4])
    return "every 4" if share >= EVERY_4 else "every 2" if share <= EVERY_2 else "mixed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gm", type=Path, default=gm_dir())
    args = parser.parse_args()
    songs = [(mid, tempo_steps(timing)) for mid, timing in gm_midis(args.gm)]
    songs = [(mid, steps[0].bpm) for mid, steps in songs if len(steps) == 1]
    if not songs:
        sys.exit(f"no General MIDI songs under {args.gm}: benchmarks/fetch_music.sh gm")
    kinds = ("every 4", "every 2", "mixed", "none")
    counts = {group: dict.fromkeys(kinds, 0) for group in ("slow", "fast")}
    print(f"{'song':24} {'BPM':>6}  group  snare on the fast grid")
    for mid, bpm in songs:
        group = "slow" if bpm < SLOW_BPM else "fast"
        kind = snare_period(snare_beats(mid), group == "slow")
        counts[group][kind] += 1
        print(f"{mid.stem[:24]:24} {bpm:6.1f}  {group:5}  {kind}")
    print(f"\n{'group':28}" + "".join(f"{k:>9}" for k in kinds) + "    songs")
    for group, label in (("slow", f"below {SLOW_BPM} BPM"), ("fast", f"{SLOW_BPM} BPM and up")):
        row = counts[group]
        print(f"{label:28}" + "".join(f"{row[k]:>9}" for k in kinds) + f"{sum(row.values()):>9}")
    n_slow, n_fast = (sum(counts[g].values()) for g in ("slow", "fast"))
    fixed, broken = counts["slow"]["every 4"], counts["fast"]["every 4"]
    gain = OSU_SLOW_SHARE * fixed / max(n_slow, 1) - (1 - OSU_SLOW_SHARE) * broken / max(n_fast, 1)
    print(f"\n'snare every 4 fast beats -> the slower tempo', with a perfect snare detector: fixes "
          f"{fixed}/{n_slow} slow songs, breaks {broken}/{n_fast} fast ones; weighted by osu!'s "
          f"tempos ({OSU_SLOW_SHARE:.0%} slow): {gain:+.3f} of songs timed right")


if __name__ == "__main__":
    main()
