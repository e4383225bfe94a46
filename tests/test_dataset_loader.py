"""Training windows (core.dataset_loader) cut from conftest's built_dataset: their tokens line
up with the maps, their audio and beat grid with the song's, they are seeded, collate and load
in worker processes, and a window parsed on its own tokenizes as the whole map does."""

from __future__ import annotations

import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from corpus_files import archive_maps, require_corpus, tree_maps

from core.audio import FRAME_MS, LATENCY_FRAMES, N_MELS
from core.beat_grid import DOWNBEAT, OFF, grid_classes
from core.beatmap.model import Circle, Mode, Slider
from core.beatmap.parser import BeatmapError, parse_bytes
from core.dataset import AUDIOLESS_TAIL_MS, BuildConfig, build
from core.dataset_loader import PAD, SILENCE, MapText, WindowConfig, WindowDataset, collate
from core.generate import _frames
from core.songs import discover
from core.tokens.detokenizer import DetokenizeOptions, decode_objects
from core.tokens.tokenizer import tokenize_window
from core.tokens.vocab import DEFAULT, SEED, Category, Vocab

TIME_TOLERANCE_MS = 5  # the default token language's, with snapping (DESIGN §4)
POSITION_TOLERANCE_PX = 3  # 4 px cells read back at their centre: <= 2.83 px


@pytest.fixture(scope="module")
def built(built_dataset):
    return built_dataset


@pytest.fixture(scope="module")
def windows(built) -> WindowDataset:
    out, _, _ = built
    return WindowDataset(out, WindowConfig(window_s=8.0, seed=5))


def decoded(dataset: WindowDataset, item: dict):
    beatmap = dataset.beatmap(item["map"])
    objects = decode_objects(item["tokens"].tolist(), beatmap, dataset.vocab,
                             DetokenizeOptions(origin_ms=item["start_ms"]))
    inside = [o for o in beatmap.hit_objects if item["start_ms"] <= o.time < item["end_ms"]]
    return objects, inside


def test_windows_line_up_with_the_maps(windows):
    checked = {"targets": 0, "prefixes": 0, "splits": 0}
    kinds = set()
    for epoch in range(2):
        windows.set_epoch(epoch)
        for i in range(len(windows)):
            item = windows[i]
            start, split, end = item["start_ms"], item["split_ms"], item["end_ms"]
            assert start % FRAME_MS == 0 and end - start == 8000 and start <= split < end
            objects, inside = decoded(windows, item)
            assert len(objects) == len(inside)
            targets = sum(o.time >= split for o in inside)
            for got, want in zip(objects, inside):
                assert type(got) is type(want)
                kinds.add(type(got))
                assert abs(got.time - want.time) <= TIME_TOLERANCE_MS
                assert math.dist((got.x, got.y), (want.x, want.y)) <= POSITION_TOLERANCE_PX
            for got in objects[:len(objects) - targets]:
                assert start <= got.time < split
            for got in objects[len(objects) - targets:]:
                assert split <= got.time < end
            checked["targets"] += targets
            checked["prefixes"] += len(objects) - targets
            checked["splits"] += split > start
            assert item["audio"].shape == (N_MELS, 8000 // FRAME_MS)
    assert checked["targets"] > 300 and checked["prefixes"] > 100 and checked["splits"] > 10
    assert {Circle, Slider} <= kinds


def test_a_map_kept_without_its_audio_trains_on_silence(dataset_songs, tmp_path):
    """discover(audioless=True) keeps a map whose audio is missing (DESIGN §7: maps without
    their audio teach placement); its windows are silent and its tokens line up as any map's."""
    folder = dataset_songs / "1 Missing - Audio"  # names nothere.mp3, which is not there
    assert discover(folder)[0] == []
    sets, report = discover(folder, audioless=True)
    assert [m.audio for s in sets for m in s.maps] == [None] and not report.skipped
    assert sets[0].fingerprint.endswith(":audioless")  # not mistaken for a build without it
    build(sets, BuildConfig(out=tmp_path / "data", vocab=DEFAULT, workers=1))
    data = WindowDataset(tmp_path / "data", WindowConfig(window_s=8.0, seed=2))
    beatmap = data.beatmap(0)
    last = max(o.end_time for o in beatmap.hit_objects)
    assert data.maps[0].features is None
    assert data.maps[0].frames == math.ceil((last + AUDIOLESS_TAIL_MS) / FRAME_MS)
    objects_seen = 0
    for i in range(len(data)):
        item = data[i]
        assert bool((item["audio"] == SILENCE).all())
        objects, inside = decoded(data, item)
        assert len(objects) == len(inside)
        assert all(abs(a.time - b.time) <= TIME_TOLERANCE_MS for a, b in zip(objects, inside))
        objects_seen += len(objects)
    assert objects_seen > 10


def test_window_audio_is_the_songs_features(windows):
    """A window's audio starts LATENCY_MS after its beatmap time, as osu! maps are timed."""
    for i in range(0, len(windows), 7):
        item = windows[i]
        ref = windows.maps[item["map"]]
        stored = np.load(ref.features, allow_pickle=False).astype(np.float32)
        first = item["start_ms"] // FRAME_MS + LATENCY_FRAMES
        piece = stored[:, first:first + windows.config.frames]
        assert torch.equal(item["audio"][:, :piece.shape[1]], torch.from_numpy(piece))
        assert bool((item["audio"][:, piece.shape[1]:] == SILENCE).all())
    stored = torch.from_numpy(np.load(windows.maps[0].features).astype(np.float32))
    middle = stored.shape[1] - windows.config.frames // 2
    tail = windows.audio(0, middle)  # the song's last half window, then silence
    heard = middle + LATENCY_FRAMES
    assert torch.equal(tail[:, :stored.shape[1] - heard], stored[:, heard:])
    assert bool((tail[:, stored.shape[1] - heard:] == SILENCE).all())
    assert not bool((stored[:, heard:] == SILENCE).all())


def test_window_grid_is_the_maps_beat_grid_at_the_encoders_positions(windows):
    batch = collate([windows[i] for i in range(0, len(windows), 5)][:6])
    assert batch["grid"].shape == (6, windows.config.frames // 2)
    for row, map_index in enumerate(batch["map"].tolist()):
        beatmap = windows.beatmap(map_index)
        expected = grid_classes(beatmap.timing_points, float(batch["start_ms"][row]),
                                windows.config.frames // 2)
        assert torch.equal(batch["grid"][row], torch.from_numpy(expected))
        ticks = batch["grid"][row]
        assert int((ticks == DOWNBEAT).sum()) >= 1 and float((ticks == OFF).float().mean()) < 1


def test_generation_reads_the_audio_training_read(windows):
    """The encoder sees the same frames for a window at inference as in training."""
    stored = torch.from_numpy(np.load(windows.maps[0].features).astype(np.float32))
    for start_frame in (0, 400, stored.shape[1] - windows.config.frames // 3):
        trained = windows.audio(0, start_frame)
        generated = _frames(stored, start_frame * FRAME_MS, windows.config.window_ms)
        assert torch.equal(trained, generated), start_frame


def test_windows_are_seeded(built, windows):
    out, _, _ = built
    again = WindowDataset(out, WindowConfig(window_s=8.0, seed=5))
    other = WindowDataset(out, WindowConfig(window_s=8.0, seed=6))
    windows.set_epoch(0)
    assert len(again) == len(windows) > 20
    draws = [windows.window(i) for i in range(len(windows))]
    assert draws == [again.window(i) for i in range(len(again))]
    assert draws != [other.window(i) for i in range(len(other))]
    again.set_epoch(1)
    assert draws != [again.window(i) for i in range(len(again))]
    assert sum(split == start * FRAME_MS for _, start, split in draws) > len(draws) // 5


def test_collate_pads_and_masks(windows):
    windows.set_epoch(0)
    # Windows with objects and, when there are any, empty ones (SOS, EOS): the index order
    # follows record names, which vary with the temporary path, and a run of the first items
    # can all be empty windows of triangles.osz, whose map has one object.
    every = [windows[i] for i in range(len(windows))]
    items = [w for w in every if len(w["tokens"]) > 2][:10]
    items += [w for w in every if len(w["tokens"]) == 2][:2]
    batch = collate(items)
    lengths = [len(item["tokens"]) for item in items]
    n = len(items)
    assert n >= 10 and min(lengths) < max(lengths)
    assert batch["tokens"].shape == (n, max(lengths))
    assert batch["audio"].shape == (n, N_MELS, windows.config.frames)
    assert batch["difficulty"].shape == (n, 5)
    sos = windows.vocab.id(Category.SOS)
    for row, item in enumerate(items):
        n, prefix = lengths[row], item["prefix_length"]
        assert batch["tokens"][row, 0] == sos
        assert torch.equal(batch["tokens"][row, :n], item["tokens"])
        assert bool((batch["tokens"][row, n:] == PAD).all())
        mask = batch["loss_mask"][row]
        assert not mask[:prefix].any() and not mask[n:].any() and mask[prefix:n].all()
        assert batch["token_mask"][row].sum() == n


def test_dataloader_workers_give_the_same_batches(windows):
    windows.set_epoch(3)
    kwargs = {"batch_size": 8, "collate_fn": collate, "shuffle": False}
    serial = list(torch.utils.data.DataLoader(windows, **kwargs))
    parallel = list(torch.utils.data.DataLoader(windows, num_workers=2, **kwargs))
    assert len(serial) == len(parallel)
    for a, b in zip(serial, parallel):
        assert torch.equal(a["tokens"], b["tokens"]) and torch.equal(a["audio"], b["audio"])


def test_a_dataset_travels_to_spawned_workers(windows):
    # DataLoader workers started by spawn (Windows, macOS) receive the dataset pickled: the
    # caches stay behind and the copy cuts the same windows.
    windows.set_epoch(2)
    windows[0]
    copy = pickle.loads(pickle.dumps(windows))
    assert not copy._beatmaps.items and copy.epoch == 2
    assert torch.equal(copy[5]["tokens"], windows[5]["tokens"])


def corpus_standard_maps() -> list[tuple[str, bytes]]:
    root = require_corpus()
    found = [(str(p.relative_to(root)), p.read_bytes()) for p in tree_maps(root)]
    return found + list(archive_maps(root))


def test_a_window_parses_only_its_lines_and_tokenizes_as_the_whole_map():
    """MapText.window (object lines near the window, parsed on the header) against the whole
    map's parse, on every osu!standard corpus map: v3-v14 and v128, the +24 ms of old formats,
    out-of-order objects, odd lines. Windows start anywhere from before the first object."""
    rng = np.random.default_rng(0)
    vocab, checked, maps = Vocab(DEFAULT), 0, 0
    for name, data in corpus_standard_maps():
        try:
            full = parse_bytes(data, name).beatmap
        except BeatmapError:
            continue
        if full.mode is not Mode.OSU or not full.hit_objects:
            continue
        text, maps = MapText(data, name), maps + 1
        first, last = full.hit_objects[0].time, full.hit_objects[-1].time
        for _ in range(10):
            start = float(rng.integers(int(first) - 2000, int(last) + 1))
            end = start + float(rng.choice([1000, 16_000]))
            split = start + float(rng.integers(0, int(end - start)))
            want = tokenize_window(full, vocab, start, split, end)
            assert tokenize_window(text.window(start, end), vocab, start, split, end) == want, (
                name, start, end)
            checked += want.objects
    assert maps > 100 and checked > 3000, (maps, checked)


def test_windows_in_the_seed_language(built):
    out, _, _ = built
    seed = WindowDataset(out, WindowConfig(window_s=8.0, seed=1), vocab=SEED)
    for i in range(0, len(seed), 3):
        item = seed[i]
        objects, inside = decoded(seed, item)
        assert len(objects) == len(inside)
        assert int(item["tokens"].max()) < len(seed.vocab)


def test_the_same_songs_elsewhere_give_the_same_windows(tmp_path):
    """Items and the validation split follow the sets' folder names, not where the Songs folder
    lives: a data set built from a moved or newly checked-out folder gives the same windows and
    holds out the same sets for a seed (records and shards are named by a digest of the absolute
    path; in their order, 5 sets came out in another order but one time in 120)."""
    from test_songs import synth_songs

    from core.training_data import split_by_set

    first = tmp_path / "a" / "Songs"
    synth_songs(first, 5, seed=40, duration_s=20.0)
    second = tmp_path / "b" / "moved" / "Songs"
    shutil.copytree(first, second)
    seen = []
    for songs, out in ((first, tmp_path / "data-a"), (second, tmp_path / "data-b")):
        build(discover(songs)[0], BuildConfig(out=out, vocab=DEFAULT, workers=1))
        data = WindowDataset(out, WindowConfig(window_s=8.0, seed=3))
        held = split_by_set(data, 0.4).val_sets  # training's validation sets, too
        seen.append(([Path(ref.source).relative_to(songs) for ref in data.maps],
                     [data[i]["tokens"].tolist() for i in range(len(data))],
                     sorted({ref.set_name for ref in data.maps if ref.shard.name in held})))
    assert len(seen[0][0]) == 25 and len(seen[0][2]) == 2 and seen[0] == seen[1]
