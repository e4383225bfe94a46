"""benchmarks/midi_songs.py: the ground truth read from a MIDI tempo map (benchmarks compare
kiai's timing against it, so a wrong reader would make every number wrong)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile

mido = pytest.importorskip("mido", reason="mido (a dev dependency) reads the benchmarks' MIDI")

from benchmarks.midi_songs import (  # noqa: E402
    blupi_songs,
    gm_songs,
    midi_timing,
    on_grid_share,
    wad_music,
)
from core.audio import LATENCY_MS, SAMPLE_RATE  # noqa: E402


def write_midi(path, events, ticks_per_beat=480):
    """A one-track MIDI file of (delta ticks, message) events."""
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    track = mido.MidiTrack()
    for delta, message in events:
        track.append(message.copy(time=delta))
    midi.tracks.append(track)
    midi.save(path)


def test_tempo_changes_become_red_lines_latency_early(tmp_path):
    # 8 beats at 120 BPM (4 s), then 100 BPM in 6/8 counted in dotted quarters
    write_midi(tmp_path / "a.mid", [
        (0, mido.MetaMessage("set_tempo", tempo=500_000)),
        (0, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
        (8 * 480, mido.MetaMessage("set_tempo", tempo=600_000)),
        (0, mido.MetaMessage("time_signature", numerator=6, denominator=8)),
        (480, mido.Message("note_on", note=60, velocity=64)),
    ])
    points = midi_timing(tmp_path / "a.mid")
    assert [(p.time, p.beat_length, p.meter) for p in points] == [
        (-LATENCY_MS, 500.0, 4), (4000.0 - LATENCY_MS, 600.0, 2)]


def test_no_tempo_is_midis_default(tmp_path):
    write_midi(tmp_path / "a.mid", [(0, mido.Message("note_on", note=60, velocity=64))])
    assert [(p.time, p.bpm, p.meter) for p in midi_timing(tmp_path / "a.mid")] == [
        (-LATENCY_MS, 120.0, 4)]


def test_a_tempo_set_after_the_start_keeps_the_default_before_it(tmp_path):
    # 2 beats at MIDI's default 120 BPM, then 100 BPM from 1 s
    write_midi(tmp_path / "a.mid", [(2 * 480, mido.MetaMessage("set_tempo", tempo=600_000))])
    assert [(p.time, p.beat_length) for p in midi_timing(tmp_path / "a.mid")] == [
        (-LATENCY_MS, 500.0), (1000.0 - LATENCY_MS, 600.0)]


def test_blupi_songs_need_their_rendering(tmp_path):
    write_midi(tmp_path / "music000.mid", [(0, mido.MetaMessage("set_tempo", tempo=576_923))])
    assert blupi_songs(tmp_path) == []  # no music000.ogg: skipped, not read as silence
    assert blupi_songs(tmp_path / "absent") == []


def notes_every(ticks, count=32):
    return [(0 if i == 0 else ticks, mido.Message("note_on", note=60, velocity=64))
            for i in range(count)]


def test_music_written_to_its_tempo_is_on_the_grid_and_a_mus_clock_is_not(tmp_path):
    # sixteenths and triplets at 480 ticks a beat are on the grid
    write_midi(tmp_path / "sixteenths.mid", notes_every(120))
    write_midi(tmp_path / "triplets.mid", notes_every(160))
    # a MUS conversion: 89 ticks "a beat", notes every 42 ticks (the music's own eighths)
    write_midi(tmp_path / "mus.mid", notes_every(42), ticks_per_beat=89)
    assert on_grid_share(tmp_path / "sixteenths.mid") == 1.0
    assert on_grid_share(tmp_path / "triplets.mid") == 1.0
    assert on_grid_share(tmp_path / "mus.mid") < 0.5


def write_wad(path, lumps):
    """A PWAD of (name, bytes) lumps."""
    body, directory, pos = b"", b"", 12
    for name, data in lumps:
        directory += struct.pack("<ii8s", pos + len(body), len(data), name.encode())
        body += data
    path.write_bytes(struct.pack("<4sii", b"PWAD", len(lumps), 12 + len(body)) + body + directory)


def test_a_wads_midi_music_is_extracted_once_each(tmp_path):
    write_midi(tmp_path / "a.mid", notes_every(120))
    write_midi(tmp_path / "b.mid", notes_every(240))
    a, b = (tmp_path / "a.mid").read_bytes(), (tmp_path / "b.mid").read_bytes()
    write_wad(tmp_path / "one.wad", [("D_RUNNIN", a), ("D_OLD", b"MUS\x1a" + bytes(20)),
                                     ("FLOOR4_8", b"\x00" * 64)])
    write_wad(tmp_path / "two.wad", [("D_RUNNIN", b), ("D_STALKS", a)])
    out = tmp_path / "music"
    assert [p.name for p in wad_music(tmp_path / "one.wad", out)] == ["d_runnin.mid"]
    assert [p.name for p in wad_music(tmp_path / "two.wad", out)] == [
        "d_runnin_two.mid", "d_stalks.mid"]  # another WAD's tune of the same name kept apart
    assert (out / "d_runnin.mid").read_bytes() == a
    assert (out / "d_runnin_two.mid").read_bytes() == b


def test_a_broken_wad_or_midi_is_skipped_saying_so(tmp_path, capsys):
    write_midi(tmp_path / "a.mid", notes_every(120))
    good = (tmp_path / "a.mid").read_bytes()
    (tmp_path / "short.wad").write_bytes(b"PWAD")
    (tmp_path / "text.wad").write_bytes(b"not a wad at all, just text")
    write_wad(tmp_path / "cut.wad", [("D_RUNNIN", good)])
    cut = (tmp_path / "cut.wad").read_bytes()
    (tmp_path / "cut.wad").write_bytes(cut[:-8])  # the lump directory cut off
    write_wad(tmp_path / "outside.wad", [("D_RUNNIN", good), ("D_STALKS", good)])
    outside = bytearray((tmp_path / "outside.wad").read_bytes())
    directory = struct.unpack("<i", outside[8:12])[0]
    outside[directory: directory + 4] = struct.pack("<i", 10**6)  # D_RUNNIN past the end
    (tmp_path / "outside.wad").write_bytes(bytes(outside))
    for name in ("short", "text", "cut"):
        assert wad_music(tmp_path / f"{name}.wad", tmp_path / "music") == []
    assert [p.name for p in wad_music(tmp_path / "outside.wad", tmp_path / "music")] == [
        "d_stalks.mid"]
    assert capsys.readouterr().out.count("skipped") == 4
    (tmp_path / "broken.mid").write_bytes(good[:20])  # a MIDI cut short
    assert gm_songs(tmp_path) == []  # no rendering for a.mid: skipped too, no crash
    assert "broken.mid: not a MIDI file" in capsys.readouterr().out


def test_gm_songs_take_rendered_music_on_its_grid_once(tmp_path, monkeypatch):
    write_midi(tmp_path / "tune.mid", [  # 100 BPM; its meter changes, not its tempo
        (0, mido.MetaMessage("set_tempo", tempo=600_000)), *notes_every(120),
        (0, mido.MetaMessage("time_signature", numerator=3, denominator=4))])
    (tmp_path / "copy.mid").write_bytes((tmp_path / "tune.mid").read_bytes())
    write_midi(tmp_path / "clock.mid", notes_every(42), ticks_per_beat=89)
    # a ramp written as six tempo steps, one a beat
    write_midi(tmp_path / "ramp.mid", [
        (0 if i == 0 else 480, mido.MetaMessage("set_tempo", tempo=600_000 - 10_000 * i))
        for i in range(6)] + notes_every(120))
    monkeypatch.setenv("PATH", "")  # no fluidsynth: nothing new can be rendered
    assert gm_songs(tmp_path) == []
    (tmp_path / "rendered").mkdir()
    clicks = np.zeros(44_100 * 5, np.float32)
    clicks[::26_460] = 1.0  # a click a beat at 100 BPM
    for name in ("tune", "copy", "clock", "ramp"):
        soundfile.write(tmp_path / "rendered" / f"{name}.wav", clicks, 44_100)
    songs = gm_songs(tmp_path)
    # the off-grid clock and the ramp left out, and the tune's twin
    assert [name for name, _, _ in songs] == ["copy"]
    _, audio, points = songs[0]
    assert len(audio) == 5 * SAMPLE_RATE
    assert [(p.time, p.bpm) for p in points] == [(-LATENCY_MS, 100.0)]
    assert gm_songs(tmp_path / "absent") == []


def drum_bars(path, pattern, bars=8):
    """A MIDI file of `bars` bars of 4 beats; `pattern` is (beat in the bar, drum note) hits on
    the drum channel."""
    events, last = [], 0
    for bar in range(bars):
        for beat, note in pattern:
            tick = (bar * 4 + beat) * 480
            events.append((int(tick - last), mido.Message("note_on", channel=9, note=note,
                                                           velocity=100)))
            last = tick
    write_midi(path, events)


@pytest.mark.parametrize("pattern, slow, kind", [
    ([(0, 36), (1, 38), (2, 36), (3, 38)], False, "every 2"),  # rock beat at the song's tempo
    ([(0, 36), (2, 38)], False, "every 4"),  # half-time feel: snare on 3 only
    ([(0, 36), (1, 38), (2, 36), (3, 38)], True, "every 4"),  # slow song: the fast grid is x2
    ([(0, 36), (0.5, 36), (2, 36)], False, "none"),  # kick only
])
def test_the_octave_oracle_reads_how_often_the_snare_comes(tmp_path, pattern, slow, kind):
    from benchmarks.octave_oracle import snare_beats, snare_period

    drum_bars(tmp_path / "a.mid", pattern)
    assert snare_period(snare_beats(tmp_path / "a.mid"), slow) == kind
