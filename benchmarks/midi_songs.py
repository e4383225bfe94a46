"""Real music whose tempo is known from the MIDI it was made from: benchmark ground truth.

- Frets on Fire songs (Debian's fretsonfire-songs-muldjord and -sectoid; 8 CC-BY-SA metal songs,
  recorded bands; benchmarks/fetch_music.sh fof): each song's notes.mid tempo map is the tempo
  its backing track was played at (FoF plays the chart against the audio from 0 ms). A song is
  its song.ogg and guitar.ogg mixed. Found under ${KIAI_FOF_SONGS:-
  /usr/share/games/fretsonfire/data/songs}.
- Planet Blupi's music (Debian's planetblupi-music-midi and -ogg; 10 GPL-3+ game tunes, pop and
  jazz arrangements, 96-140 BPM; benchmarks/fetch_music.sh blupi): each musicNNN.ogg is its
  musicNNN.mid rendered, sample-aligned from 0 ms: its notes sound on the MIDI's beats. The
  tunes loop for 10-28 minutes; the first `seconds` are read.
  Three are slow (96-104 BPM) with sixteenth-note drums: the octave case that Frets on Fire's
  metal songs (one at 95 BPM) barely test. Found under ${KIAI_BLUPI_MUSIC:-
  /usr/share/planetblupi/music}.

True beat lines are in beatmap time, LATENCY_MS before the MIDI beats, as a ranked map would put
them. mido reads the MIDI (a dev dependency: only benchmarks read MIDI).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.audio import LATENCY_MS, SAMPLE_RATE, load_audio
from core.beatmap.model import TimingPoint

Song = tuple[str, np.ndarray, list[TimingPoint]]  # (name, audio at SAMPLE_RATE, true red lines)


def fof_dir() -> Path:
    return Path(os.environ.get("KIAI_FOF_SONGS", "/usr/share/games/fretsonfire/data/songs"))


def blupi_dir() -> Path:
    return Path(os.environ.get("KIAI_BLUPI_MUSIC", "/usr/share/planetblupi/music"))


def midi_timing(path: Path) -> list[TimingPoint]:
    """The uninherited timing points of a MIDI file's tempo map (and time signatures)."""
    import mido

    midi = mido.MidiFile(path)
    events = sorted(((tick, msg) for track in midi.tracks
                    for tick, msg in zip(np.cumsum([m.time for m in track]), track)
                    if msg.type in ("set_tempo", "time_signature")), key=lambda e: e[0])
    ms, last_tick, beat_ms, meter = 0.0, 0, 500.0, 4  # MIDI's defaults: 120 BPM, 4/4
    # from 0 ms, in force until the first event (replaced by one at tick 0)
    points = [TimingPoint(time=-LATENCY_MS, beat_length=beat_ms, meter=meter)]
    for tick, msg in events:
        ms += (tick - last_tick) / midi.ticks_per_beat * beat_ms
        last_tick = tick
        if msg.type == "time_signature":  # 6/8 and 12/8 are counted in dotted quarters
            meter = msg.numerator // 3 if msg.denominator == 8 and msg.numerator % 3 == 0 \
                else msg.numerator
        else:
            beat_ms = msg.tempo / 1000
        point = TimingPoint(time=ms - LATENCY_MS, beat_length=beat_ms, meter=meter)
        if points and abs(points[-1].time - point.time) < 1:
            points[-1] = point
        elif not points or (points[-1].beat_length, points[-1].meter) != (beat_ms, meter):
            points.append(point)
    return points


def fof_songs(root: Path) -> list[Song]:
    """The Frets on Fire songs under `root` (none where it is not a folder)."""
    out = []
    for folder in sorted(p.parent for p in root.glob("**/notes.mid")) if root.is_dir() else []:
        stems = [load_audio(f) for f in (folder / "song.ogg", folder / "guitar.ogg") if f.exists()]
        if not stems:
            print(f"(skipped {folder}: no song.ogg or guitar.ogg)")
            continue
        mix = np.zeros(max(len(a) for a in stems), np.float32)
        for a in stems:
            mix[:len(a)] += a
        out.append((folder.name.replace(" ", "_"), mix, midi_timing(folder / "notes.mid")))
    return out


def blupi_songs(root: Path, seconds: float = 180.0) -> list[Song]:
    """Planet Blupi's tunes under `root`, their first `seconds` (none where it is absent)."""
    out = []
    for mid in sorted(root.glob("music*.mid")) if root.is_dir() else []:
        ogg = mid.with_suffix(".ogg")
        if not ogg.exists():
            print(f"(skipped {mid}: no {ogg.name})")
            continue
        audio = load_audio(ogg)[: int(seconds * SAMPLE_RATE)]
        points = [p for p in midi_timing(mid) if p.time < seconds * 1000]
        out.append((f"blupi{mid.stem[-3:]}", audio, points))
    return out
