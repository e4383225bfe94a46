"""Synthetic songs: deterministic files that osu! and kiai read, maps that sit on the audio.

One module-wide run of `kiai synth` (three short songs) is shared by the read-only checks.
"""

from __future__ import annotations

import io
import itertools
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from companion.cli import main
from core.audio import LATENCY_MS
from core.beatmap.curves import slider_paths
from core.beatmap.model import (
    PLAYFIELD_HEIGHT,
    PLAYFIELD_WIDTH,
    Beatmap,
    Mode,
    Slider,
    Spinner,
)
from core.beatmap.parser import parse_file
from core.beatmap.ticks import TickGrid
from core.synth import DIFFICULTIES, SynthConfig, SynthError, write_song
from core.synth.encode import encode, ogg_crc, ogg_supported
from core.synth.mapper import plan_levels
from core.synth.score import STOP_MS, compose
from core.synth.songs import make_song
from core.tokens.detokenizer import detokenize
from core.tokens.tokenizer import tokenize
from core.tokens.vocab import DEFAULT, Vocab

ARGS = ["--count", "3", "--seed", "0", "--duration", "25", "--sample-rate", "22050"]
AUDIO = "audio.ogg" if ogg_supported() else "audio.wav"


def synth(out: Path, *args: str):
    return CliRunner().invoke(main, ["synth", "--out", str(out), *args])


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("songs")
    result = synth(out, *ARGS)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def maps(songs: Path) -> list[tuple[Path, Beatmap]]:
    """Every written difficulty, parsed: (path, beatmap), easiest first within each song."""
    result = []
    for folder in sorted(songs.iterdir()):
        for version in DIFFICULTIES:
            (path,) = folder.glob(f"*[[]{version}[]].osu")
            parsed = parse_file(path)
            assert parsed.issues == [], [str(i) for i in parsed.issues]
            result.append((path, parsed.beatmap))
    return result


def test_layout_is_a_songs_folder(songs):
    folders = sorted(songs.iterdir())
    assert len(folders) == 3
    for folder in folders:
        song_id, _, rest = folder.name.partition(" ")
        artist, _, title = rest.partition(" - ")
        assert song_id.isdigit() and artist and title
        names = sorted(p.name for p in folder.iterdir())
        assert names == sorted([AUDIO] + [f"{artist} - {title} (kiai-synth) [{v}].osu"
                                          for v in DIFFICULTIES])


def test_same_seed_gives_identical_bytes_and_another_seed_differs(songs, tmp_path):
    again = tmp_path / "again"
    assert synth(again, *ARGS).exit_code == 0
    assert tree(again) == tree(songs)
    other = tmp_path / "other"
    assert synth(other, "--count", "1", "--seed", "1", "--duration", "25",
                 "--sample-rate", "22050", "--difficulties", "Hard").exit_code == 0
    (first,) = other.iterdir()
    mine = sorted(songs.iterdir())[0]
    assert first.name != mine.name
    assert (first / AUDIO).read_bytes() != (mine / AUDIO).read_bytes()


def test_maps_parse_cleanly_with_general_and_metadata(maps):
    for path, beatmap in maps:
        assert beatmap.mode is Mode.OSU
        assert (path.parent / beatmap.audio_filename).is_file()
        assert beatmap.metadata["Creator"] == "kiai-synth"
        assert f"[{beatmap.version}]" in path.name
        for key in ("Title", "Artist", "Source", "Tags"):
            assert beatmap.metadata[key], key
        assert beatmap.hit_objects and beatmap.timing_points


def test_audio_is_mono_normalised_and_as_long_as_asked(songs):
    for folder in songs.iterdir():
        samples, rate = sf.read(folder / AUDIO)
        assert samples.ndim == 1 and rate == 22_050
        assert 0.5 < np.max(np.abs(samples)) <= 1.0  # normalised; the decoder adds no clipping
        assert 20.0 < len(samples) / rate <= 25.0


def test_objects_are_inside_the_playfield_in_time_order_with_integer_fields(maps):
    def inside(x, y):
        return 0 <= x <= PLAYFIELD_WIDTH and 0 <= y <= PLAYFIELD_HEIGHT

    for path, beatmap in maps:
        objects = beatmap.hit_objects
        times = [o.time for o in objects]
        assert all(b > a for a, b in itertools.pairwise(times)), path.name
        assert all(b.time >= a.end_time for a, b in itertools.pairwise(objects))
        for obj in objects:
            assert all(isinstance(v, int) for v in (obj.x, obj.y, obj.time)), obj
            assert inside(obj.x, obj.y), obj
        sliders = [o for o in objects if isinstance(o, Slider)]
        for slider, path in zip(sliders, slider_paths(sliders, beatmap.format_version),
                                strict=True):
            assert slider.length > 0 and slider.duration > 0, slider
            body = [path.relative_at(p) for p in np.linspace(0, 1, 33)]
            assert all(inside(slider.x + x, slider.y + y) for x, y in body), slider
        assert isinstance(objects[-1], Spinner)
        assert objects[-1].spinner_end > objects[-1].time


def test_objects_and_slider_ends_sit_on_beat_ticks(maps):
    for path, beatmap in maps:
        grid = TickGrid(beatmap.timing_points)
        for obj in beatmap.hit_objects:
            assert grid.snap(obj.time, 1.0) is not None, (path.name, obj)
            assert grid.snap(obj.end_time, 1.0) is not None, (path.name, obj)


def test_one_uninherited_point_per_tempo_and_new_combo_on_each_measure(maps):
    for path, beatmap in maps:
        uninherited = [p for p in beatmap.timing_points if p.uninherited]
        assert len(uninherited) == len({p.beat_length for p in uninherited})
        assert all(p.beat_length > 0 and isinstance(p.time, int) for p in uninherited)
        assert beatmap.hit_objects[0].time >= uninherited[0].time
        previous = None
        for obj in beatmap.hit_objects:
            point = max((p for p in uninherited if p.time <= obj.time), key=lambda p: p.time)
            # +1 ms: objects are written at the floor of their tick.
            measure = (point.time, int((obj.time + 1 - point.time)
                                       // (point.beat_length * point.meter)))
            expected = measure != previous or isinstance(obj, Spinner)
            assert obj.new_combo == expected, (path.name, obj)
            previous = measure


def test_density_and_settings_grow_with_difficulty(maps):
    for start in range(0, len(maps), len(DIFFICULTIES)):
        song = [beatmap for _, beatmap in maps[start:start + len(DIFFICULTIES)]]
        per_minute = [len(b.hit_objects) * 60_000
                      / (b.hit_objects[-1].time - b.hit_objects[0].time) for b in song]
        assert per_minute == sorted(per_minute) and len(set(per_minute)) == len(song), per_minute
        for name in ("approach_rate", "od", "cs", "hp"):
            values = [getattr(b.difficulty, name) for b in song]
            assert values == sorted(values), (name, values)
        assert len({b.difficulty.approach_rate for b in song}) == len(song)
        assert any(isinstance(o, Slider) for b in song for o in b.hit_objects)


def onset_strength(samples: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
    """Spectral flux over 10 ms hops (20 ms Hann windows): how much louder each frame got.

    Returns the envelope (one value per hop) and the hop in ms."""
    hop = rate // 100
    window = 2 * hop
    frames = np.lib.stride_tricks.sliding_window_view(samples, window)[::hop] * np.hanning(window)
    magnitude = np.log1p(100 * np.abs(np.fft.rfft(frames, axis=1)))
    flux = np.maximum(np.diff(magnitude, axis=0), 0).sum(axis=1)
    return np.concatenate([[0.0], flux]), 1000 * hop / rate


def test_objects_sit_on_audible_onsets(songs, maps):
    rng = np.random.default_rng(0)
    envelopes = {}
    for path, beatmap in maps:
        if path.parent not in envelopes:
            envelopes[path.parent] = onset_strength(*sf.read(path.parent / AUDIO))
        envelope, hop_ms = envelopes[path.parent]

        def strength(times_ms, envelope=envelope, hop_ms=hop_ms):
            # The strongest of the frames around each time: a frame is 10 ms wide.
            index = np.round(np.asarray(times_ms) / hop_ms).astype(int)
            return np.max([envelope[np.clip(index + d, 0, len(envelope) - 1)]
                           for d in (-1, 0, 1)], axis=0)

        times = [o.time + LATENCY_MS for o in beatmap.hit_objects]  # the sound comes later
        at_objects = strength(times)
        at_random = strength(rng.uniform(times[0], times[-1], 2000))
        assert at_objects.mean() > 3 * np.median(at_random), path.name
        assert np.median(at_objects) > 2 * np.median(at_random), path.name


def test_every_map_round_trips_through_the_default_tokens(maps):
    vocab = Vocab(DEFAULT)
    for path, beatmap in maps:
        back = detokenize(tokenize(beatmap, vocab), template=beatmap, vocab=vocab)
        assert len(back.hit_objects) == len(beatmap.hit_objects), path.name
        for a, b in zip(beatmap.hit_objects, back.hit_objects, strict=True):
            assert type(a) is type(b), (path.name, a, b)
            assert abs(a.time - b.time) <= 5 and abs(a.end_time - b.end_time) <= 5, (a, b)


def test_an_existing_song_folder_is_never_overwritten(songs):
    before = tree(songs)
    result = synth(songs, *ARGS)
    assert result.exit_code == 1
    assert "already exists" in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert tree(songs) == before


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(SynthError, match="count"):
        SynthConfig(out=tmp_path, count=0)
    with pytest.raises(SynthError, match="duration"):
        SynthConfig(out=tmp_path, duration_s=5)
    result = synth(tmp_path, "--difficulties", "Easy,Lunatic")
    assert result.exit_code == 2 and "Lunatic" in result.output
    assert list(tmp_path.iterdir()) == []


def test_song_subsets_do_not_change_other_files(songs, tmp_path):
    # Song 2 alone, two difficulties: the same bytes as in the three-song, five-map run.
    out = tmp_path / "subset"
    config = SynthConfig(out=out, count=3, seed=0, duration_s=25, sample_rate=22_050,
                         difficulties=("Insane", "Easy"))
    folder = write_song(config, 2)
    full = songs / folder.name
    for path in folder.iterdir():
        assert path.read_bytes() == (full / path.name).read_bytes(), path.name


@pytest.mark.skipif(not ogg_supported(), reason="this libsndfile cannot write Ogg/Vorbis")
def test_ogg_bytes_depend_only_on_samples_and_decode_fully():
    samples = np.sin(np.arange(30_000) * 0.05).astype(np.float32) * 0.5
    first, second = encode(samples, 22_050, "ogg", 7), encode(samples, 22_050, "ogg", 7)
    assert first == second
    assert struct.unpack_from("<I", first, 14)[0] == 7  # the serial we asked for
    decoded, _ = sf.read(io.BytesIO(first))
    assert len(decoded) == len(samples)  # libogg drops pages whose CRC is wrong


def test_ogg_crc_matches_libogg():
    if not ogg_supported():
        pytest.skip("this libsndfile cannot write Ogg/Vorbis")
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(1000, dtype=np.float32), 22_050, format="OGG", subtype="VORBIS")
    data = buffer.getvalue()
    page_end = 27 + data[26] + sum(data[27:27 + data[26]])
    page = bytearray(data[:page_end])
    stored = struct.unpack_from("<I", page, 22)[0]
    page[22:26] = bytes(4)
    assert ogg_crc(bytes(page)) == stored


def test_scores_vary_in_meter_and_tempo():
    scores = [compose(np.random.default_rng(seed), 60) for seed in range(40)]
    assert {s.meter for s in scores} >= {3, 4, 5, 6}
    assert {s.ticks_per_beat for s in scores} == {3, 4}
    assert any(len(s.tempos) == 2 for s in scores)
    bpms = [60_000 / t.beat_ms for s in scores for t in s.tempos]
    assert min(bpms) >= 80 and max(bpms) <= 220
    assert scores[0] == compose(np.random.default_rng(0), 60)  # a function of its seed


def test_a_stop_is_a_held_chord_mapped_as_a_spinner_and_the_song_goes_on():
    # Real maps put spinners mid-song, over a held chord before a chorus; with only the outro's,
    # the starter took every spinner it placed for the song's end
    songs = [make_song(SynthConfig(out=Path("unused"), seed=3, duration_s=60), i)
             for i in range(12)]
    with_stop = [s.score for s in songs if any(x.name == "stop" for x in s.score.sections)]
    assert 0 < len(with_stop) < len(songs)
    for score in with_stop:
        [stop] = [s for s in score.sections if s.name == "stop"]
        assert stop.end_tick < score.sections[-1].start_tick  # mid-song
        assert score.ms(stop.end_tick) - score.ms(stop.start_tick) >= STOP_MS
        inside = [n for n in score.notes if stop.start_tick <= n.tick < stop.end_tick]
        assert {n.tick for n in inside} == {stop.start_tick}  # nothing struck after its start
        assert {n.instrument for n in inside} == {"crash", "kick", "bass", "lead"}
        assert all(n.length == stop.end_tick - stop.start_tick for n in inside if n.length)
        for level, planned in plan_levels(score).items():
            during = [p for p in planned if p.end_tick >= stop.start_tick
                      and p.tick < stop.end_tick]
            assert [(p.kind, p.tick) for p in during] == [("spinner", stop.start_tick)], level
            assert during[0].end_tick < stop.end_tick
            after = [p for p in planned if stop.end_tick <= p.tick < score.sections[-1].start_tick]
            # a beat to recover from it
            assert after and after[0].tick - during[0].end_tick >= score.ticks_per_beat, level


def test_a_song_without_a_stop_is_the_song_it_was():
    # the stops draw from their own stream: a song that draws none is unchanged
    pairs = [(compose(np.random.default_rng(seed), 60),
              compose(np.random.default_rng(seed), 60, np.random.default_rng(100 + seed)))
             for seed in range(20)]
    stopped = [any(s.name == "stop" for s in b.sections) for _, b in pairs]
    assert any(stopped) and not all(stopped)
    for (a, b), stop in zip(pairs, stopped, strict=True):
        assert (a == b) is not stop
