"""Data sets: build from a Songs folder of synthetic songs and corpus archives, resume, and cut
training windows whose tokens line up with the maps."""

from __future__ import annotations

import json
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from corpus_files import archive_maps, require_corpus, resource, tree_maps
from safetensors.numpy import load_file
from test_songs import RENATUS_QUICK, corpus_archive, synth_songs, variant

import core.dataset
from companion.cli import main
from core.audio import FRAME_MS, LATENCY_FRAMES, N_MELS
from core.beat_grid import DOWNBEAT, OFF, grid_classes
from core.beatmap.model import Circle, Mode, Slider
from core.beatmap.parser import BeatmapError, parse_bytes
from core.dataset import (
    BAD_AUDIO,
    FEATURE_DIR,
    INDEX_DIR,
    NO_OBJECTS,
    SHARD_DIR,
    TMP_PREFIX,
    BuildConfig,
    DatasetError,
    build,
    song_key,
)
from core.dataset_loader import PAD, SILENCE, MapText, WindowConfig, WindowDataset, collate
from core.generate import _frames
from core.songs import MISSING_AUDIO, OTHER_MODE, discover
from core.synth import DIFFICULTIES
from core.tokens.detokenizer import DetokenizeOptions, decode_objects
from core.tokens.tokenizer import tokenize, tokenize_window
from core.tokens.vocab import DEFAULT, SEED, Category, Vocab

SYNTHETIC = 3
EXPECTED_SKIPS = {
    OTHER_MODE: 9 + 1,  # Renatus's taiko, catch and mania maps; the mania folder
    MISSING_AUDIO: 3 + 1,  # Renatus names "virtual"; the folder naming nothere.mp3
    NO_OBJECTS: 1,  # ogg-beatmap.osz: a header and no objects (its track is silent anyway)
    BAD_AUDIO: 1,  # a map whose audio.ogg is really a JPEG (the corpus's corrupt.wav)
}
TIME_TOLERANCE_MS = 5  # the default token language's, with snapping (DESIGN §4)
POSITION_TOLERANCE_PX = 3  # 4 px cells read back at their centre: <= 2.83 px


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("Songs")
    synthetic = synth_songs(root, SYNTHETIC, seed=21, duration_s=24.0)
    shutil.copytree(synthetic[0], root / "999 Copy - Same Audio")  # shares its audio's hash
    for name in ("triangles.osz", "ogg-beatmap.osz", RENATUS_QUICK):
        shutil.copy(corpus_archive(name), root / name)
    variant(synthetic[1], root / "1 Missing - Audio", ("audio.ogg", "nothere.mp3"), "audio.ogg")
    variant(synthetic[1], root / "2 Mania - Map", ("Mode: 0", "Mode: 3"), "audio.ogg")
    bad = variant(synthetic[1], root / "3 Bad - Audio", ("Mode: 0", "Mode: 0"), None)
    shutil.copy(resource(require_corpus(), "corrupt.wav"), bad / "audio.ogg")
    return root


@pytest.fixture(scope="module")
def built(songs, tmp_path_factory):
    """(out, discovery report, build result) of the whole Songs folder, in this process."""
    out = tmp_path_factory.mktemp("dataset")
    sets, report = discover(songs)
    result = build(sets, BuildConfig(out=out, vocab=DEFAULT, workers=1))
    return out, report, result


def records(out: Path) -> dict[str, dict]:
    """The completion records by set name."""
    found = [json.loads(p.read_text(encoding="utf-8")) for p in (out / INDEX_DIR).glob("*.json")]
    return {Path(r["source"]).name: r for r in found}


def identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def files(out: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(out)): identity(p) for p in out.rglob("*") if p.is_file()}


def test_counts_per_song_and_difficulty(built, songs):
    out, report, result = built
    # Discovery keeps the synthetic sets, their copy, triangles, ogg-beatmap and the bad audio.
    assert report.sets == SYNTHETIC + 4 and report.maps == 5 * (SYNTHETIC + 1) + 1 + 1 + 1
    assert (result.built, result.done) == (report.sets, 0)
    assert result.maps == 5 * (SYNTHETIC + 1) + 1  # synthetic songs, their copy, triangles
    skips = dict(result.report.skipped) | dict(report.skipped)
    assert skips == EXPECTED_SKIPS
    by_set = records(out)
    assert len(by_set) == report.sets  # a record for every set, usable maps or not
    with_maps = {name: len(r["maps"]) for name, r in by_set.items() if r["maps"]}
    synthetic = {p.name: 5 for p in songs.iterdir() if p.name.startswith("2100")}
    assert len(synthetic) == SYNTHETIC
    assert with_maps == synthetic | {"999 Copy - Same Audio": 5, "triangles.osz": 1}
    assert by_set["3 Bad - Audio"]["maps"] == []
    assert by_set["3 Bad - Audio"]["skipped"][0][:2] == [
        BAD_AUDIO, str(next((songs / "3 Bad - Audio").glob("*.osu")))]
    assert "not audio: the file is a JPEG image" in by_set["3 Bad - Audio"]["skipped"][0][2]
    assert sorted(p.name for p in (out / SHARD_DIR).iterdir()) == sorted(
        f"{r['key']}.safetensors" for r in by_set.values() if r["maps"])


def test_features_are_shared_per_audio_hash(built, songs):
    out, _, _ = built
    by_set = records(out)
    copy = by_set["999 Copy - Same Audio"]
    [original] = [r for name, r in by_set.items() if name != "999 Copy - Same Audio"
                  and r["maps"] and r["maps"][0]["title"] == copy["maps"][0]["title"]]
    assert {m["audio"]["features"] for m in copy["maps"]} == {
        m["audio"]["features"] for m in original["maps"]}
    hashes = {m["audio"]["sha256"] for r in by_set.values() for m in r["maps"]}
    assert len(hashes) == SYNTHETIC + 1  # the synthetic songs and triangles' mp3
    stored = sorted((out / FEATURE_DIR).iterdir())
    assert [p.name.split("-")[0] for p in stored] == sorted(hashes)
    for record in by_set.values():
        for meta in record["maps"]:
            features = np.load(out / meta["audio"]["features"], allow_pickle=False)
            assert features.shape == (N_MELS, meta["audio"]["frames"])


def test_shards_hold_the_maps_and_their_tokens(built):
    out, _, _ = built
    vocab = Vocab(DEFAULT)
    for record in records(out).values():
        if not record["maps"]:
            assert record["shard"] is None
            continue
        shard = load_file(out / record["shard"])
        assert shard["difficulty"].shape == (len(record["maps"]), 5)
        for i, meta in enumerate(record["maps"]):
            data = shard[f"map.{i}"].tobytes()
            beatmap = parse_bytes(data).beatmap
            assert shard[f"tokens.{i}"].tolist() == tokenize(beatmap, vocab)
            assert meta["tokens"] == len(shard[f"tokens.{i}"])
            assert meta["objects"] == len(beatmap.hit_objects) > 0
            d = beatmap.difficulty
            assert meta["difficulty"][:4] == [d.approach_rate, d.cs, d.od, d.hp]
            assert shard["difficulty"][i].tolist() == pytest.approx(meta["difficulty"])
            assert meta["version"] == beatmap.version
            assert meta["source"].endswith(meta["member"])


def test_stars_are_positive_and_grow_with_difficulty(built):
    out, _, _ = built
    synthetic = [r for r in records(out).values() if r["maps"] and not r["archive"]]
    assert len(synthetic) == SYNTHETIC + 1
    for record in synthetic:
        stars = {m["version"]: m["difficulty"][4] for m in record["maps"]}
        ordered = [stars[v] for v in DIFFICULTIES]
        assert all(s > 0 for s in ordered)
        assert ordered == sorted(ordered) and len(set(ordered)) == len(ordered), stars


def small_build(songs: Path, out: Path, **kwargs):
    """Build only the synthetic sets (fast), returning them and the result."""
    sets = [s for s in discover(songs)[0] if s.name[:1].isdigit() and len(s.maps) == 5]
    return sets, build(sets, BuildConfig(out=out, vocab=DEFAULT, **kwargs))


def test_resume_rebuilds_only_the_unfinished_set(songs, tmp_path):
    sets, first = small_build(songs, tmp_path)
    assert (first.built, first.done) == (len(sets), 0)
    before = files(tmp_path)
    victim = song_key(sets[1])
    (tmp_path / INDEX_DIR / f"{victim}.json").unlink()  # as if killed before its record
    (tmp_path / SHARD_DIR / f"{TMP_PREFIX}half.safetensors").write_bytes(b"partial")
    _, second = small_build(songs, tmp_path)
    assert (second.built, second.done, second.maps) == (1, len(sets) - 1, first.maps)
    after = files(tmp_path)
    assert set(after) == set(before)  # the stale temporary is swept, nothing else added
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {f"{INDEX_DIR}/{victim}.json", f"{SHARD_DIR}/{victim}.safetensors"}


def test_interrupt_leaves_no_partial_files(songs, tmp_path, monkeypatch):
    writes = []
    save_file = core.dataset.save_file

    def interrupted_save(tensors, path, metadata=None):
        save_file(tensors, path, metadata=metadata)
        writes.append(path)
        if len(writes) == 2:
            raise KeyboardInterrupt  # Ctrl+C after the second shard's bytes are on disk

    monkeypatch.setattr(core.dataset, "save_file", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        small_build(songs, tmp_path, workers=1)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(TMP_PREFIX)]
    assert len(list((tmp_path / SHARD_DIR).iterdir())) == 1
    assert len(list((tmp_path / INDEX_DIR).iterdir())) == 1
    done = files(tmp_path)
    monkeypatch.setattr(core.dataset, "save_file", save_file)
    sets, result = small_build(songs, tmp_path)
    assert (result.built, result.done) == (len(sets) - 1, 1)
    assert all(files(tmp_path)[name] == done[name] for name in done if "features" not in name)


def test_an_output_folder_for_another_vocabulary_is_refused(built, songs):
    out, _, _ = built
    sets = discover(songs)[0][:1]
    with pytest.raises(DatasetError, match="'default' vocabulary, not 'seed'"):
        build(sets, BuildConfig(out=out, vocab=SEED, workers=1))


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


def test_cli_builds_and_prints_the_report(songs, tmp_path):
    out = tmp_path / "data"
    result = CliRunner().invoke(main, ["dataset", "build", str(songs), "--out", str(out),
                                       "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert f"{out}: {5 * (SYNTHETIC + 1) + 1} maps from {SYNTHETIC + 2} song sets" in result.output
    for reason, count in EXPECTED_SKIPS.items():
        assert any(line.split() == [*reason.split(), str(count)]
                   for line in result.output.splitlines()), (reason, result.output)
    again = CliRunner().invoke(main, ["dataset", "build", str(songs), str(songs), "--out",
                                      str(out)])  # a folder given twice counts once
    assert again.exit_code == 0 and "in 1 folder(s)" in again.output
    assert again.output.count(f"{SYNTHETIC + 4} done before") == 1
    for reason, count in EXPECTED_SKIPS.items():  # the same report as the first run's
        assert any(line.split() == [*reason.split(), str(count)]
                   for line in again.output.splitlines()), (reason, again.output)
    assert f"(0 built now, {SYNTHETIC + 4} done before)" in again.output


@pytest.mark.parametrize("case", ["missing songs", "songs is a file", "foreign out", "vocab"])
def test_cli_errors_are_clean(built, songs, tmp_path, case):
    out, _, _ = built
    args = {
        "missing songs": [str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
        "songs is a file": [str(next(songs.glob("*.osz"))), "--out", str(tmp_path / "o")],
        "foreign out": [str(songs), "--out", str(songs)],
        "vocab": [str(songs), "--out", str(out), "--vocab", "seed"],
    }[case]
    result = CliRunner().invoke(main, ["dataset", "build", *args])
    assert result.exit_code in (1, 2) and "Traceback" not in result.output
    assert {"missing songs": "does not exist", "songs is a file": "is a file",
            "foreign out": "refusing to write there",
            "vocab": "not 'seed'"}[case] in result.output
