"""Data sets: build from a Songs folder of synthetic songs and corpus archives (conftest's
dataset_songs), resume, refuse, and the CLI; the windows cut from them: test_dataset_loader.py."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SYNTHETIC
from safetensors.numpy import load_file
from test_songs import synth_songs

import core.dataset
from companion.cli import main
from core.audio import N_MELS
from core.beatmap.parser import parse_bytes
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
from core.songs import MISSING_AUDIO, OTHER_MODE, discover
from core.synth import DIFFICULTIES
from core.tokens.tokenizer import tokenize
from core.tokens.vocab import DEFAULT, SEED, Vocab

EXPECTED_SKIPS = {
    OTHER_MODE: 9 + 1,  # Renatus's taiko, catch and mania maps; the mania folder
    MISSING_AUDIO: 3 + 1,  # Renatus names "virtual"; the folder naming nothere.mp3
    NO_OBJECTS: 1,  # ogg-beatmap.osz: a header and no objects (its track is silent anyway)
    BAD_AUDIO: 1,  # a map whose audio.ogg is really a JPEG (the corpus's corrupt.wav)
}
TIME_TOLERANCE_MS = 5  # the default token language's, with snapping (DESIGN §4)
POSITION_TOLERANCE_PX = 3  # 4 px cells read back at their centre: <= 2.83 px


@pytest.fixture(scope="module")
def songs(dataset_songs) -> Path:
    return dataset_songs


@pytest.fixture(scope="module")
def built(built_dataset):
    """(out, discovery report, build result) of the whole Songs folder."""
    return built_dataset


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
    orphan = tmp_path / SHARD_DIR / "0123456789abcdef0123.safetensors"  # its record gone
    orphan.write_bytes(b"a shard whose record a killed clean-up removed")
    done = files(tmp_path)
    monkeypatch.setattr(core.dataset, "save_file", save_file)
    sets, result = small_build(songs, tmp_path)
    assert not orphan.exists()  # swept when the build starts
    del done[str(orphan.relative_to(tmp_path))]
    assert (result.built, result.done) == (len(sets) - 1, 1)
    assert all(files(tmp_path)[name] == done[name] for name in done if "features" not in name)


def test_an_output_folder_for_another_vocabulary_is_refused(built, songs):
    out, _, _ = built
    sets = discover(songs)[0][:1]
    with pytest.raises(DatasetError, match="'default' vocabulary, not 'seed'"):
        build(sets, BuildConfig(out=out, vocab=SEED, workers=1))


def test_cli_builds_and_prints_the_report(songs, tmp_path):
    out = tmp_path / "data"
    result = CliRunner().invoke(main, ["dataset", "build", str(songs), "--out", str(out),
                                       "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert f"{out}: {5 * (SYNTHETIC + 1) + 1} maps from {SYNTHETIC + 2} song sets" in result.output
    for reason, count in EXPECTED_SKIPS.items():
        assert any(line.split() == [*reason.split(), str(count)]
                   for line in result.output.splitlines()), (reason, result.output)
    # the screen names 3 examples a reason; OUT/skipped.tsv every skip (QA round 9)
    assert f"every skip, with its reason: {out / 'skipped.tsv'}" in result.output
    rows = [line.split("\t") for line in (out / "skipped.tsv").read_text().splitlines()]
    assert rows[0] == ["reason", "path", "detail"] and all(len(row) == 3 for row in rows)
    assert Counter(row[0] for row in rows[1:]) == EXPECTED_SKIPS
    again = CliRunner().invoke(main, ["dataset", "build", str(songs), str(songs), "--out",
                                      str(out)])  # a folder given twice counts once
    assert again.exit_code == 0 and "in 1 folder(s)" in again.output
    assert again.output.count(f"{SYNTHETIC + 4} done before") == 1
    for reason, count in EXPECTED_SKIPS.items():  # the same report as the first run's
        assert any(line.split() == [*reason.split(), str(count)]
                   for line in again.output.splitlines()), (reason, again.output)
    assert f"(0 built now, {SYNTHETIC + 4} done before)" in again.output


def test_a_rebuild_mirrors_the_folders_it_searches(tmp_path, monkeypatch):
    """A renamed or deleted song folder left its record behind, so the song was trained twice
    (QA round 9); sets of another Songs folder built into the same data set stay, whatever
    folder the build runs in and however the Songs folder is named (QA: a relative "Songs"
    from another folder dropped the first one's sets), and an empty Songs folder (a drive
    not mounted) drops nothing."""
    first, second = synth_songs(tmp_path / "Songs", 2, seed=5)
    (other,) = synth_songs(tmp_path / "elsewhere" / "Songs", 1, seed=6)
    out = tmp_path / "data"

    def run(*folders: str):
        result = CliRunner().invoke(main, ["dataset", "build", *folders, "--out", str(out),
                                           "--workers", "1"])
        assert result.exit_code == 0, result.output
        return result.output

    monkeypatch.chdir(tmp_path)
    run("Songs")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert "dropped" not in run("Songs")  # another folder, named alike
    assert sorted(records(out)) == sorted([first.name, second.name, other.name])
    monkeypatch.chdir(tmp_path)
    shard = out / records(out)[second.name]["shard"]
    second.rename(second.with_name(second.name + " (renamed)"))
    shutil.rmtree(first)
    output = run(str(tmp_path / "Songs"))  # absolute now: the same folder
    assert sorted(records(out)) == sorted([second.name + " (renamed)", other.name])
    assert "dropped 2 song set(s) no longer in the folder(s) searched" in output
    assert not shard.exists() and len(list((out / "shards").iterdir())) == 2
    assert "dropped" not in run("Songs")
    assert (out / "skipped.tsv").read_text() == "reason\tpath\tdetail\n"  # nothing skipped
    (tmp_path / "Songs").rename(tmp_path / "Songs.away")  # the drive is not mounted
    (tmp_path / "Songs").mkdir()
    assert "dropped" not in run("Songs") and len(records(out)) == 2


def test_a_rebuild_drops_only_what_is_provably_gone(tmp_path, monkeypatch):
    """Sets the search cannot vouch for stay (review, session 33): under a folder it cannot
    read, behind a link whose target is gone (a drive reached through a link); a set that is
    still there but has nothing usable left (its audio deleted) goes."""
    songs = tmp_path / "Songs"
    plain, deleted_audio = synth_songs(songs, 2, seed=5)
    (locked,) = synth_songs(songs / "Pack", 1, seed=6)
    (linked,) = synth_songs(tmp_path / "drive", 1, seed=7)
    (songs / "HDD2").symlink_to(tmp_path / "drive", target_is_directory=True)
    out = tmp_path / "data"

    def run() -> str:
        result = CliRunner().invoke(main, ["dataset", "build", str(songs), "--out", str(out),
                                           "--workers", "1"])
        assert result.exit_code == 0, result.output
        return result.output

    run()
    assert len(records(out)) == 4
    (tmp_path / "drive").rename(tmp_path / "drive.away")  # the drive behind the link is gone
    (deleted_audio / "audio.ogg").unlink()
    iterdir = Path.iterdir

    def refusing(path: Path):
        if path.name == "Pack":
            raise PermissionError(13, "Permission denied", str(path))
        return iterdir(path)

    monkeypatch.setattr(Path, "iterdir", refusing)
    output = run()
    assert sorted(records(out)) == sorted([plain.name, locked.name, linked.name]), output
    assert f"dropped 1 song set(s) no longer in the folder(s) searched, e.g. {deleted_audio}" \
        in output
    assert "unreadable set" in output and "no beatmaps" not in output


def test_cli_keeps_maps_without_audio_when_asked(songs, tmp_path):
    folder = str(songs / "1 Missing - Audio")
    plain = CliRunner().invoke(main, ["dataset", "build", folder, "--out", str(tmp_path / "a"),
                                      "--workers", "1"])
    assert plain.exit_code == 0 and "0 maps from 0 song sets" in plain.output, plain.output
    assert "skipped 1:" in plain.output and "(AudioFilename 'nothere.mp3')" in plain.output
    kept = CliRunner().invoke(main, ["dataset", "build", folder, "--out", str(tmp_path / "b"),
                                     "--workers", "1", "--audioless"])
    assert kept.exit_code == 0 and "1 maps from 1 song sets" in kept.output, kept.output
    assert "nothing skipped" in kept.output


def test_the_starter_trains_on_real_maps_without_their_audio_too(songs):
    from companion.cli.starter import starter_sets
    synthetic = [s for s in discover(songs)[0] if s.path.name.startswith("2100")]
    extra = songs / "1 Missing - Audio"
    sets = starter_sets(synthetic[0].path, (extra,))
    assert [s.path for s in sets] == [synthetic[0].path, extra]
    assert [m.audio for m in sets[1].maps] == [None]
    assert all(m.audio is not None for m in sets[0].maps)


@pytest.mark.parametrize("case", ["missing songs", "songs is a file", "foreign out",
                                  "out in songs", "vocab"])
def test_cli_errors_are_clean(built, songs, tmp_path, case):
    out, _, _ = built
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    args = {
        "missing songs": [str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
        "songs is a file": [str(next(songs.glob("*.osz"))), "--out", str(tmp_path / "o")],
        "foreign out": [str(songs), "--out", str(tmp_path / "foreign")],
        "out in songs": [str(songs), "--out", str(songs / "run")],  # QA round 9
        "vocab": [str(songs), "--out", str(out), "--vocab", "seed"],
    }[case]
    result = CliRunner().invoke(main, ["dataset", "build", *args])
    assert result.exit_code in (1, 2) and "Traceback" not in result.output
    assert {"missing songs": "does not exist", "songs is a file": "is a file",
            "foreign out": "refusing to write there",
            "out in songs": "inside the Songs folder",
            "vocab": "not 'seed'"}[case] in result.output
