"""core.kiai_time: a new map of a bare song gets kiai time on its loud sections, on its bar
lines, and a preview where one starts; a song with a map keeps the mapper's."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import soundfile as sf

from companion.mapping import Target, decoding_options, generate_beatmap
from core.audio import FRAME_MS, SAMPLE_RATE, audio_features, log_mel
from core.beatmap.model import TimingPoint
from core.beatmap.parser import parse_bytes
from core.kiai_time import MAX_SHARE, bar_lines, kiai_lines, kiai_spans, mark_kiai
from core.song_input import resolve
from tests.corpus_files import require_corpus

BEAT_MS = 500.0  # 120 BPM in 4/4: a bar is 2 s
RED = [TimingPoint(0.0, BEAT_MS, meter=4)]


def sections(levels: list[tuple[int, float]], seed: int = 0) -> np.ndarray:
    """A drum-like track: a decaying noise hit on every beat, `levels` (bars, amplitude) in
    turn, with a soft pad under it all."""
    rng = np.random.default_rng(seed)
    beat = int(SAMPLE_RATE * BEAT_MS / 1000)
    decay = np.exp(-np.arange(beat) / (0.05 * SAMPLE_RATE))
    parts = []
    for bars, amplitude in levels:
        for _ in range(4 * bars):
            parts.append(amplitude * decay * rng.standard_normal(beat))
    audio = np.concatenate(parts)
    t = np.arange(audio.size) / SAMPLE_RATE
    return (audio + 0.01 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def spans_of(points: list[TimingPoint]) -> list[tuple[float, float]]:
    """Kiai time as osu! reads it: each line, red or green, sets it on or off from its time
    (a green line after a red line at the same time has the last word)."""
    spans, start = [], None
    for point in sorted(points, key=lambda p: (p.time, not p.uninherited)):
        if point.kiai and start is None:
            start = point.time
        elif not point.kiai and start is not None and point.time > start:
            spans.append((start, point.time))
            start = None
        elif not point.kiai and start is not None:
            start = None  # on and off at one time: none
    return spans


def test_the_loud_sections_are_kiai_time_from_bar_line_to_bar_line():
    audio = sections([(8, 0.05), (8, 0.4), (12, 0.05), (8, 0.4), (4, 0.05)])
    mel = log_mel(audio)
    assert kiai_spans(mel, RED) == [(16_000.0, 32_000.0), (56_000.0, 72_000.0)]
    # a bar of a quieter fill inside a section does not split it; a short loud burst (4 bars)
    # is no section
    audio = sections([(8, 0.05), (4, 0.4), (1, 0.1), (5, 0.4), (10, 0.05), (4, 0.4),
                      (8, 0.05)])
    assert kiai_spans(log_mel(audio), RED) == [(16_000.0, 36_000.0)]


def test_a_song_loud_throughout_marks_only_its_loudest_part():
    # 40 bars within 2.5 dB of each other: one run of them all, were the margin kept
    levels = [(8, 0.3), (8, 0.33), (8, 0.3), (8, 0.4), (8, 0.3)]
    spans = kiai_spans(log_mel(sections(levels)), RED)
    assert spans == [(16_000.0, 32_000.0), (48_000.0, 64_000.0)]
    assert sum(b - a for a, b in spans) <= MAX_SHARE * 80_000.0


def test_kiai_lines_turn_it_on_and_off_at_the_settings_in_effect():
    points = [TimingPoint(100.0, BEAT_MS, sample_set=2, volume=70),
              TimingPoint(4100.0, -50.0, sample_set=3, volume=40, uninherited=False)]
    lines = kiai_lines(points, [(2100.0, 6100.0)])
    assert [(p.time, p.kiai, p.beat_length, p.sample_set, p.volume) for p in lines] == [
        (2100, True, -100.0, 2, 70), (6100, False, -50.0, 3, 40)]
    assert not any(p.uninherited for p in lines)
    assert bar_lines([TimingPoint(-1500.0, BEAT_MS, meter=3)], 4000.0) == [0.0, 1500.0, 3000.0]


@pytest.mark.parametrize("archive, osu, audio, least", [
    ("circles.osz", "nekodex - circles! (peppy).osu", "circles.ogg", 0.6),
    ("triangles.osz", "cYsmix - triangles (peppy) [peppy].osu", "audio.mp3", 0.45),
])
def test_kiai_time_meets_the_mappers_on_lazers_intro_tracks(tmp_path, archive, osu, audio,
                                                            least):
    """On the hand-made timing, the kiai found and the mapper's overlap by `least` of their
    union (circles: 0.65, triangles 0.50, measured), each span starting on a bar line."""
    with zipfile.ZipFile(require_corpus() / "osu-resources" / archive) as z:
        beatmap = parse_bytes(z.read(osu)).beatmap
        (tmp_path / audio).write_bytes(z.read(audio))
    mel = audio_features(tmp_path / audio)
    truth = spans_of(beatmap.timing_points)
    red = [p for p in beatmap.timing_points if p.uninherited]
    found = kiai_spans(mel, red)
    lines = bar_lines(red, mel.shape[-1] * FRAME_MS)
    assert all(any(abs(start - line) < 1e-6 for line in lines) for start, _ in found)
    inter = sum(max(0.0, min(b, d) - max(a, c)) for a, b in found for c, d in truth)
    union = sum(b - a for a, b in found) + sum(d - c for c, d in truth) - inter
    assert inter / union >= least


def test_a_bare_songs_new_map_gets_kiai_time_and_a_preview(starter_generator, tmp_path):
    """A bare song (no map): its new map's kiai time is its loud sections, and its preview
    starts at one; a song whose folder has a map keeps that map's kiai and preview."""
    folder = tmp_path / "song"
    folder.mkdir()
    sf.write(folder / "audio.wav", sections([(8, 0.05), (8, 0.4), (12, 0.05), (8, 0.4),
                                             (4, 0.05)]), SAMPLE_RATE)
    made = generate_beatmap(starter_generator, resolve(folder), Target(stars=3.0),
                            decoding_options(seed=0), max_attempts=1).beatmap
    spans = spans_of(made.timing_points)
    red = [p for p in made.timing_points if p.uninherited]
    assert len(spans) == 2 and len(red) == 1
    beat = red[0].beat_length
    assert beat == pytest.approx(BEAT_MS, rel=0.01)
    for (start, end), (true_start, true_end) in zip(spans, [(16_000, 32_000), (56_000, 72_000)]):
        assert abs(start - true_start) < beat / 2 and abs(end - true_end) < beat / 2
    assert int(made.general["PreviewTime"]) in {round(start) for start, _ in spans}

    mapped = made.general | {"PreviewTime": "12345"}
    template = resolve(folder)
    template.template.general = mapped
    template.template.timing_points = red  # the song timed by its mapper, without kiai
    again = generate_beatmap(starter_generator, template, Target(stars=3.0),
                             decoding_options(seed=0), max_attempts=1).beatmap
    assert not any(p.kiai for p in again.timing_points)
    assert again.general["PreviewTime"] == "12345"


def test_red_lines_inside_kiai_time_keep_it_on():
    """A red line has a kiai flag of its own: the estimate's tempo changes inside a loud
    section carry it, or kiai time would stop at them (its bars start again there)."""
    beatmap = parse_bytes(b"osu file format v14\n[General]\nPreviewTime: -1\n"
                          b"[TimingPoints]\n-20,500,4,1,0,100,1,0\n24000.4,500,4,1,0,100,1,0\n"
                          ).beatmap
    mark_kiai(beatmap, log_mel(sections([(8, 0.05), (8, 0.4), (12, 0.05), (8, 0.4),
                                         (4, 0.05)])))
    # the green lines on the bar lines' whole ms, where objects on them are written
    assert spans_of(beatmap.timing_points) == [(15_980.0, 32_000.0), (56_000.0, 72_000.0)]
    assert [p.kiai for p in beatmap.timing_points if p.uninherited] == [False, True]
    assert all(float(p.time).is_integer() for p in beatmap.timing_points if not p.uninherited)


def test_a_map_with_kiai_time_keeps_its_own():
    beatmap = parse_bytes(b"osu file format v14\n[General]\nPreviewTime: 777\n"
                          b"[TimingPoints]\n0,500,4,1,0,100,1,0\n4000,-100,4,1,0,100,0,1\n"
                          ).beatmap
    before = list(beatmap.timing_points)
    mark_kiai(beatmap, log_mel(sections([(8, 0.05), (8, 0.4), (12, 0.05)])))
    assert beatmap.timing_points == before and beatmap.general["PreviewTime"] == "777"
