"""core.backbeat: claps where the snare plays the backbeat, found in the audio whatever the bar's
phase or the tempo's octave, and none where the song has no backbeat."""

from __future__ import annotations

import shutil

import numpy as np
import soundfile as sf

from companion.mapping import Target, decoding_options, generate_beatmap
from core.audio import LATENCY_MS, SAMPLE_RATE, log_mel
from core.backbeat import backbeat_classes, beats_of, clap_test, drum_onsets
from core.beatmap.model import TimingPoint
from core.hitsound_copy import sound_points
from core.hitsounds import CLAP
from core.song_input import resolve

BEAT_MS = 500.0  # 120 BPM
START = -LATENCY_MS  # the beat lines of audio whose beats sound from 0 ms (core.audio)
RED = [TimingPoint(START, BEAT_MS, meter=4)]
RNG = np.random.default_rng(0)


def hit(kind: str) -> np.ndarray:
    """A kick (a 55 Hz thump), a snare (noise over a 190 Hz body) or a hi-hat (bright noise)."""
    n = int(0.25 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    if kind == "kick":
        return 0.9 * np.sin(2 * np.pi * 55 * t) * np.exp(-t / 0.12)
    noise = RNG.standard_normal(n)
    if kind == "snare":
        return (0.5 * noise + 0.4 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t / 0.06)
    return 0.15 * np.diff(noise, prepend=0.0) * np.exp(-t / 0.02)


def drums(bars: int, pattern: dict[str, list[float]], skip_snare: set[int] = frozenset(),
          changes: bool = False) -> np.ndarray:
    """`bars` bars of 4/4 at 120 BPM: each instrument on its beats of `pattern` (0-based, in
    beats), the snare left out of the bars in `skip_snare`; a quiet pad under it, its note
    changing on every bar line where `changes` (as a song's harmony does)."""
    bar = int(4 * BEAT_MS / 1000 * SAMPLE_RATE)
    audio = np.zeros(bars * bar + SAMPLE_RATE)
    for b in range(bars):
        for kind, beats in pattern.items():
            if kind == "snare" and b in skip_snare:
                continue
            for beat in beats:
                start = b * bar + int(beat * BEAT_MS / 1000 * SAMPLE_RATE)
                sound = hit(kind)
                audio[start: start + sound.size] += sound
    t = np.arange(audio.size) / SAMPLE_RATE
    hz = np.where((np.arange(audio.size) // bar) % 2 == 1, 262.0, 330.0) if changes else 330.0
    return (audio + 0.02 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


ROCK = {"kick": [0, 2], "snare": [1, 3], "hat": [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]}


def clapped(test, bars: int) -> list[int]:
    """The beats (0-based) of the audio that clap."""
    return [k for k in range(4 * bars) if test(START + k * BEAT_MS)]


def test_a_rock_beat_claps_on_two_and_four():
    test = clap_test(log_mel(drums(16, ROCK)), RED)
    assert clapped(test, 16) == [4 * b + c for b in range(16) for c in (1, 3)]


def test_the_snare_is_found_at_double_tempo_and_never_clapped_on_the_bars_one():
    audio = log_mel(drums(16, ROCK))
    # the bar a beat late: the snare on the bar's 1 and 3, where a kick is the likelier sound
    # (core.backbeat.KICK_CLASS): no claps
    shifted = [TimingPoint(START + BEAT_MS, BEAT_MS, meter=4)]
    assert clap_test(audio, shifted) is None
    # half a bar off, the snare is still on the bar's 2 and 4 (from the red line on)
    half = [TimingPoint(START + 2 * BEAT_MS, BEAT_MS, meter=4)]
    assert clapped(clap_test(audio, half), 16) == list(range(3, 64, 2))
    # timed at 240 BPM: the snare is every fourth beat, on one class of the bar: it alone claps
    double = [TimingPoint(START, BEAT_MS / 2, meter=4)]
    beats = beats_of(double, 32_000.0)
    onsets = drum_onsets(audio, [t for t, _ in beats])
    assert backbeat_classes(onsets, np.array([c for _, c in beats])) == [2]
    test = clap_test(audio, double)
    assert [t for t, _ in beats if test(t)] == [START + (4 * b + c) * BEAT_MS
                                               for b in range(16) for c in (1, 3)]


def test_a_bar_without_its_snare_gets_no_clap():
    test = clap_test(log_mel(drums(16, ROCK, skip_snare={5, 6})), RED)
    claps = clapped(test, 16)
    assert all(not 20 <= k < 28 for k in claps)
    assert len(claps) == 28


def test_no_backbeat_no_claps():
    four_on_the_floor = {"kick": [0, 1, 2, 3], "hat": [0.5, 1.5, 2.5, 3.5]}
    assert clap_test(log_mel(drums(16, four_on_the_floor)), RED) is None
    assert clap_test(log_mel(drums(16, {"snare": [0, 1, 2, 3]})), RED) is None  # every beat
    assert clap_test(log_mel(drums(2, ROCK)), RED) is None  # too short to tell
    waltz = [TimingPoint(START, BEAT_MS, meter=3)]
    assert clap_test(log_mel(drums(16, ROCK)), waltz) is None


def test_a_bare_songs_new_map_claps_on_its_snare(starter_generator, tmp_path):
    """The new map of a bare rock beat (timing estimated): its objects on the snare's beats
    clap, those on the kick's do not; a new difficulty of a set takes the set's sounds instead
    (core.hitsound_copy)."""
    folder = tmp_path / "song"
    folder.mkdir()
    sf.write(folder / "beat.wav", drums(24, ROCK, changes=True), SAMPLE_RATE)
    made = generate_beatmap(starter_generator, resolve(folder), Target(stars=3.0),
                            decoding_options(seed=0), max_attempts=1).beatmap
    red = [p for p in made.timing_points if p.uninherited]
    assert abs(red[0].beat_length - BEAT_MS) < 5
    on_snare = on_kick = 0
    for obj in made.hit_objects:
        for time, (additions, _) in sound_points(obj):
            beat = (time - START) / BEAT_MS  # the audio's beat
            if abs(beat - round(beat)) * BEAT_MS > 15 or round(beat) >= 4 * 24:
                continue  # off the beats, or past the drums (the audio's last second)
            if round(beat) % 2 == 1:
                on_snare += 1
                assert additions & CLAP, time
            else:
                on_kick += 1
                assert not additions & CLAP, time
    assert on_snare >= 5 and on_kick >= 5
    shutil.rmtree(folder)
