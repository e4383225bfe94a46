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

- General MIDI songs (Debian's freedoom and openttd-openmsx: BSD-3 and GPL-2 game music, rock,
  metal, jazz, pop; benchmarks/fetch_music.sh gm): each MIDI (Freedoom's music lumps, OpenTTD's
  files) rendered by FluidSynth with the FluidR3 GM soundfont (`fluidsynth` must be on PATH; the
  renderings are kept under DIR/rendered), sounding ~4.5 ms after its MIDI beats (the
  soundfont's attacks). A MIDI whose notes do not sit on a 1/4 or 1/3 grid of its beats is left
  out: many of Freedoom's are conversions from Doom's MUS format, whose "tempo" is a 140 Hz
  clock, not the music's (23 of 97); so is one whose tempo map steps more than 4 times (a
  ramp, 2).
  72 songs remain, 70-200 BPM, 32 of them below 116 BPM: the octave case. Found under
  ${KIAI_GM_MUSIC:-build/gm}.

True beat lines are in beatmap time, LATENCY_MS before the MIDI beats, as a ranked map would put
them. mido reads the MIDI (a dev dependency: only benchmarks read MIDI).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np

from core.audio import LATENCY_MS, SAMPLE_RATE, load_audio
from core.beatmap.model import TimingPoint

Song = tuple[str, np.ndarray, list[TimingPoint]]  # (name, audio at SAMPLE_RATE, true red lines)


def fof_dir() -> Path:
    return Path(os.environ.get("KIAI_FOF_SONGS", "/usr/share/games/fretsonfire/data/songs"))


def blupi_dir() -> Path:
    return Path(os.environ.get("KIAI_BLUPI_MUSIC", "/usr/share/planetblupi/music"))


def gm_dir() -> Path:
    return Path(os.environ.get("KIAI_GM_MUSIC", "build/gm"))


def midi_events(path: Path) -> tuple[int, list[tuple[int, object]]]:
    """(ticks per beat, (tick, message) of every message of every track): a MIDI file's
    messages at their absolute ticks (a track stores each as a delta from the one before)."""
    import mido

    midi = mido.MidiFile(path)
    return midi.ticks_per_beat, [(int(tick), msg) for track in midi.tracks
                                 for tick, msg in zip(np.cumsum([m.time for m in track]), track)]


def midi_timing(path: Path) -> list[TimingPoint]:
    """The uninherited timing points of a MIDI file's tempo map (and time signatures)."""
    ticks_per_beat, messages = midi_events(path)
    events = sorted(((tick, msg) for tick, msg in messages
                     if msg.type in ("set_tempo", "time_signature")), key=lambda e: e[0])
    ms, last_tick, beat_ms, meter = 0.0, 0, 500.0, 4  # MIDI's defaults: 120 BPM, 4/4
    # from 0 ms, in force until the first event (replaced by one at tick 0)
    points = [TimingPoint(time=-LATENCY_MS, beat_length=beat_ms, meter=meter)]
    for tick, msg in events:
        ms += (tick - last_tick) / ticks_per_beat * beat_ms
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


ON_GRID_SHARE = 0.85  # a MIDI with fewer notes on a 1/4 or 1/3 grid of its beats has no tempo
MAX_TEMPO_STEPS = 4  # more, and a MIDI's tempo map is a ramp written as steps


def gm_songs(root: Path, seconds: float = 150.0) -> list[Song]:
    """The General MIDI songs under `root` (its WADs' music and its MIDI files) rendered, their
    first `seconds`; none where `root` is absent. Renders what is not rendered yet (fluidsynth)."""
    soundfont = root / "FluidR3_GM.sf2"
    out = []
    for mid, timing in gm_midis(root):
        wav = root / "rendered" / f"{mid.stem}.wav"
        if not wav.exists() and not render(mid, soundfont, wav):
            continue
        audio = load_audio(wav)[: int(seconds * SAMPLE_RATE)]
        points = tempo_steps([p for p in timing if p.time < len(audio) / SAMPLE_RATE * 1000])
        out.append((mid.stem, audio, points))
    return out


def gm_midis(root: Path) -> list[tuple[Path, list[TimingPoint]]]:
    """(MIDI file, its tempo map) of each General MIDI song under `root` that the set keeps (on
    its beats' grid, a tempo map of at most MAX_TEMPO_STEPS steps, each music once), saying
    what it leaves out; none where `root` is absent."""
    if not root.is_dir():
        return []
    midis = sorted(root.glob("*.mid"))
    for wad in sorted(root.glob("*.wad")):
        midis += wad_music(wad, root / "wad_music")
    out, untimed, ramps, seen = [], [], [], set()
    for mid in sorted(midis):
        data = mid.read_bytes()
        if data in seen:  # the same music under two names
            continue
        seen.add(data)
        try:
            share, timing = on_grid_share(mid), midi_timing(mid)
        except (OSError, EOFError, ValueError, KeyError) as error:  # what mido raises
            print(f"(skipped {mid}: not a MIDI file mido reads: {error})")
            continue
        if share < ON_GRID_SHARE:
            untimed.append(mid.stem)
            continue
        if len(tempo_steps(timing)) > MAX_TEMPO_STEPS + 1:  # the whole song's tempo map
            ramps.append(mid.stem)
            continue
        out.append((mid, timing))
    if untimed:
        print(f"(left out {len(untimed)} MIDI files whose notes are off their beats' grid)")
    if ramps:
        print(f"(left out {len(ramps)} MIDI files whose tempo steps more than {MAX_TEMPO_STEPS} "
              "times: ramps written as steps; drift_accuracy measures ramps)")
    return out


def tempo_steps(points: list[TimingPoint]) -> list[TimingPoint]:
    """`points` where the tempo changes (a meter change alone is no new section of tempo)."""
    return [p for i, p in enumerate(points)
            if i == 0 or p.beat_length != points[i - 1].beat_length]


def wad_music(wad: Path, into: Path) -> list[Path]:
    """The MIDI music lumps (D_*) of a Doom WAD, each written into `into` once, named by its
    lump (MUS lumps, which are not MIDI, left out)."""
    data = wad.read_bytes()
    magic, count, directory = struct.unpack("<4sii", data[:12]) if len(data) >= 12 \
        else (b"", 0, 0)
    if magic not in (b"IWAD", b"PWAD") or count < 0 or directory < 12 \
            or directory + 16 * count > len(data):
        print(f"(skipped {wad}: not a WAD, or its lump directory is cut off)")
        return []
    into.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        pos, size, name = struct.unpack("<ii8s", data[directory + 16 * i: directory + 16 * i + 16])
        if pos < 0 or size < 0 or pos + size > len(data):
            print(f"(skipped lump {i} of {wad}: outside the file)")
            continue
        lump = data[pos: pos + size]
        name = name.rstrip(b"\0").decode("ascii", "replace").lower()
        if name.startswith("d_") and lump[:4] == b"MThd":
            path = into / f"{name}.mid"
            if path.exists() and path.read_bytes() != lump:  # another WAD's lump of that name
                path = into / f"{name}_{wad.stem}.mid"
            if not path.exists():
                path.write_bytes(lump)
            out.append(path)
    return out


def on_grid_share(path: Path) -> float:
    """The share of a MIDI's notes within 1/48 beat of a 1/4 (or 1/3, the larger) grid of its
    beats: near 1 for music written to its tempo."""
    ticks_per_beat, messages = midi_events(path)
    ticks = np.array([tick for tick, msg in messages
                      if msg.type == "note_on" and msg.velocity > 0], dtype=np.float64)
    if not len(ticks):
        return 0.0
    shares = []
    for step in (ticks_per_beat / 4, ticks_per_beat / 3):
        rest = np.mod(ticks, step)
        shares.append(float(np.mean(np.minimum(rest, step - rest) <= ticks_per_beat / 48)))
    return max(shares)


def render(mid: Path, soundfont: Path, wav: Path) -> bool:
    """`mid` rendered to `wav` by FluidSynth (through a temporary file); False, saying why, where
    it cannot be."""
    if shutil.which("fluidsynth") is None or not soundfont.exists():
        print(f"(skipped {mid.name}: rendering needs fluidsynth on PATH and {soundfont})")
        return False
    wav.parent.mkdir(parents=True, exist_ok=True)
    part = wav.with_suffix(".part.wav")
    try:
        subprocess.run(["fluidsynth", "-ni", "-q", "-F", str(part), "-r", "44100", "-g", "0.6",
                        str(soundfont), str(mid)], check=True, capture_output=True, timeout=600)
        part.replace(wav)
    except (subprocess.SubprocessError, OSError) as error:
        print(f"(skipped {mid.name}: fluidsynth failed: {error})")
        return False
    finally:
        part.unlink(missing_ok=True)
    return True
