"""benchmarks/midi_songs.py: the ground truth read from a MIDI tempo map (benchmarks compare
kiai's timing against it, so a wrong reader would make every number wrong)."""

from __future__ import annotations

import pytest

mido = pytest.importorskip("mido", reason="mido (a dev dependency) reads the benchmarks' MIDI")

from benchmarks.midi_songs import blupi_songs, midi_timing  # noqa: E402
from core.audio import LATENCY_MS  # noqa: E402


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
