"""Claps on the snare (core.backbeat) against the drums of songs rendered from MIDI; a table.

Real music whose snare hits are known: the General MIDI songs (`--gm`, benchmarks/midi_songs.py;
their drum channel's notes 37-40: side stick, snare, hand clap, electric snare) and Planet
Blupi's tunes (`--blupi`, rendered from their MIDI). Per song, its first `--seconds`, timed as
`kiai generate` times a bare song (estimated from the audio; `--true-timing` takes the MIDI's
own): the beats core.backbeat claps and, beside them, the bar's beats 2 and 4 (a clap on every
backbeat of the timing, what a mapper's first hitsounding pass puts down).

Per song with 8 or more snare hits on the timing's beats: precision, the share of claps within
30 ms of a snare hit; recall, the share of those snare hits with a clap. The table has, per
rule, the songs clapped (core.backbeat claps none where no backbeat stands out), the median
precision and recall over them, and how many are at 80% or more and under 50%; and how many
songs with fewer snare hits (no backbeat to clap) core.backbeat claps anyway.

    .venv/bin/python benchmarks/backbeat_accuracy.py [--gm DIR] [--blupi DIR] [--seconds 150]
        [--true-timing]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.midi_songs import blupi_dir, gm_dir, gm_midis
from core.audio import FRAME_MS, LATENCY_MS, audio_features
from core.backbeat import beats_of, clap_test
from core.song_timing import estimate_song_timing
from core.tempo import TimingError

SNARES = {37, 38, 39, 40}
DRUMS = 9  # the General MIDI drum channel (0-based)
HIT_MS = 30.0
MIN_HITS = 8


def snare_ms(mid: Path) -> np.ndarray:
    """Beatmap times (ms) of the MIDI's snare hits: LATENCY_MS before they sound."""
    import mido

    hits, seconds = [], 0.0
    for msg in mido.MidiFile(mid):  # merged tracks, delta times in seconds (tempo applied)
        seconds += msg.time
        if msg.type == "note_on" and msg.velocity > 0 and msg.channel == DRUMS \
                and msg.note in SNARES:
            hits.append(seconds * 1000.0 - LATENCY_MS)
    return np.array(hits)


def songs(args: argparse.Namespace) -> list[tuple[str, Path, Path, list]]:
    """(name, audio, MIDI, true red lines) of each song found."""
    from benchmarks.midi_songs import midi_timing

    out = []
    for mid, timing in gm_midis(args.gm):
        wav = args.gm / "rendered" / f"{mid.stem}.wav"
        if wav.exists():
            out.append((mid.stem, wav, mid, timing))
    for mid in sorted(args.blupi.glob("music*.mid")) if args.blupi.is_dir() else []:
        if mid.with_suffix(".ogg").exists():
            out.append((f"blupi{mid.stem[-3:]}", mid.with_suffix(".ogg"), mid, midi_timing(mid)))
    return out


def score(claps: list[float], hits: np.ndarray, beats: list[float]) -> tuple[float, float]:
    """(precision, recall) of clap times against snare hit times on the beats."""
    beats_arr = np.array(beats)
    on_beats = hits[[np.abs(beats_arr - h).min() < HIT_MS for h in hits]]
    if not claps:
        return 0.0, 0.0
    claps_arr = np.array(claps)
    precision = float(np.mean([np.abs(hits - c).min() < HIT_MS for c in claps]))
    recall = float(np.mean([np.abs(claps_arr - h).min() < HIT_MS for h in on_beats]))
    return precision, recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gm", type=Path, default=gm_dir())
    parser.add_argument("--blupi", type=Path, default=blupi_dir())
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--true-timing", action="store_true")
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float]]] = {"core.backbeat": [], "beats 2 and 4": []}
    unclapped = with_hits = snareless = snareless_clapped = 0
    for name, audio, mid, truth in songs(args):
        mel = audio_features(audio)[:, : int(args.seconds * 1000 / FRAME_MS)]
        end = mel.shape[-1] * FRAME_MS
        try:
            points = truth if args.true_timing else estimate_song_timing(audio, mel).points
        except TimingError:
            continue
        beats = beats_of(points, end)
        times = [t for t, _ in beats]
        hits = snare_ms(mid)
        hits = hits[hits < end]
        if not times or sum(np.abs(np.array(times) - h).min() < HIT_MS for h in hits) < MIN_HITS:
            snareless += bool(times)  # a clap there is on no snare
            snareless_clapped += bool(times) and clap_test(mel, points) is not None
            continue
        with_hits += 1
        test = clap_test(mel, points)
        if test is None:
            unclapped += 1
        else:
            rows["core.backbeat"].append(score([t for t in times if test(t)], hits, times))
        rows["beats 2 and 4"].append(score([t for t, c in beats if c in (1, 3)], hits, times))
        p, r = rows["core.backbeat"][-1] if test is not None else (float("nan"),) * 2
        said = "none" if test is None else f"{p:4.0%} on snares, {r:4.0%} of them"
        print(f"{name:<28} claps {said}", flush=True)
    timing = "true timing" if args.true_timing else "timing estimated"
    print(f"\n{with_hits} songs with {MIN_HITS}+ snare hits on the beats ({timing}); "
          f"core.backbeat left {unclapped} unclapped; of {snareless} songs with fewer, it "
          f"clapped {snareless_clapped}")
    print(f"{'rule':<16} {'songs':>5} {'precision':>9} {'recall':>7} {'>=80%':>6} {'<50%':>5}")
    for rule, scores in rows.items():
        if not scores:
            continue
        precision = [p for p, _ in scores]
        print(f"{rule:<16} {len(scores):>5} {statistics.median(precision):>9.0%} "
              f"{statistics.median(r for _, r in scores):>7.0%} "
              f"{sum(p >= 0.8 for p in precision):>6} {sum(p < 0.5 for p in precision):>5}")


if __name__ == "__main__":
    main()
