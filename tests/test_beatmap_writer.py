"""parse -> write -> parse is exact; saving never clobbers a file or leaves a partial one."""

from __future__ import annotations

import dataclasses
import math
import os

import pytest
from corpus_files import archive_maps, require_corpus, resource, tree_maps

from core.beatmap.model import Mode
from core.beatmap.parser import BeatmapError, parse_bytes, parse_file, parse_text
from core.beatmap.writer import save, write_text


def comparable(value):
    """A beatmap as nested tuples, NaN equal to NaN (NaN beat lengths are real data)."""
    if dataclasses.is_dataclass(value):
        return (type(value).__name__,) + tuple(
            comparable(getattr(value, f.name)) for f in dataclasses.fields(value)
            if f.name != "format_version")
    if isinstance(value, (list, tuple)):
        return tuple(comparable(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, comparable(v)) for k, v in value.items())
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def standard_maps():
    root = require_corpus()
    for path in tree_maps(root):
        yield str(path), path.read_bytes()
    yield from archive_maps(root)


def test_parse_write_parse_is_identical_on_every_standard_corpus_map():
    checked = 0
    for name, data in standard_maps():
        try:
            first = parse_bytes(data, name)
        except BeatmapError:
            continue  # resource forks; covered by the parser tests
        if first.beatmap.mode is not Mode.OSU:
            continue
        text = write_text(first.beatmap)
        second = parse_text(text, name)
        assert second.issues == [] or all("beat length" in i.reason for i in second.issues), name
        assert comparable(second.beatmap) == comparable(first.beatmap), name
        assert write_text(second.beatmap) == text, name
        checked += 1
    assert checked >= 110


def test_writer_keeps_the_format_version_and_lazer_files_stay_v128():
    root = require_corpus()
    legacy = parse_file(resource(root, "Soleily - Renatus (Gamu) [Insane].osu")).beatmap
    assert write_text(legacy).startswith("osu file format v14\r\n")
    lazer = parse_file(resource(root, "hitobject-coordinates-lazer.osu")).beatmap
    assert write_text(lazer).startswith("osu file format v128\r\n")
    assert parse_text("osu file format v7\n[HitObjects]\n1,2,3,1,0\n").beatmap.format_version == 7
    assert write_text(parse_text("osu file format v7\n[HitObjects]\n1,2,3,1,0\n").beatmap
                      ).startswith("osu file format v7\r\n")
    new = parse_text("[HitObjects]\n1,2,3,1,0\n").beatmap  # no header: read and written as v14
    assert write_text(new).startswith("osu file format v14\r\n")


def test_old_version_offset_is_baked_into_the_written_times():
    beatmap = parse_file(resource(require_corpus(), "old-stacking.osu")).beatmap
    text = write_text(beatmap)
    assert text.startswith("osu file format v5\r\n")  # the first version without the shift
    assert "32189,5,2,0:0:0:0:" in text  # 32165 + 24 ms
    assert parse_text(text).beatmap.hit_objects[0].time == 32189


def test_osu_reads_a_written_map_as_it_read_the_original():
    """lazer's rules for old formats (slider ticks by slider velocity before v8, the old
    stacking before v6) follow the version written: a v5-v7 map written as v14 changed its max
    combo (37902.osu 413 -> 424) and an old map's stacking its stars (QA round 10). rosu-pp,
    a port of lazer's calculator, reads both files alike. (Its stars move with a shift of
    every time, 400 ms strain sections being aligned to absolute time, and it does not add the
    24 ms lazer adds before v5: for v3 and v4 maps, written shifted, the max combo is compared.)"""
    import rosu_pp_py

    def rated(data: bytes) -> tuple[float, int]:
        attributes = rosu_pp_py.Difficulty().calculate(rosu_pp_py.Beatmap(content=data))
        return round(attributes.stars, 9), attributes.max_combo

    checked = old = 0
    for name, data in standard_maps():
        try:
            beatmap = parse_bytes(data, name).beatmap
            original = rated(data)
        except (BeatmapError, rosu_pp_py.ParseError, rosu_pp_py.ConvertError, ValueError):
            continue
        if beatmap.mode is not Mode.OSU or not beatmap.hit_objects:
            continue
        written = rated(write_text(beatmap).encode())
        assert written == original if beatmap.format_version >= 5 else \
            written[1] == original[1], name
        checked += 1
        old += beatmap.format_version < 8
    assert checked >= 100 and old >= 5


def test_save_refuses_to_overwrite(tmp_path):
    beatmap = parse_text("osu file format v14\n[HitObjects]\n1,2,3,1,0\n").beatmap
    target = tmp_path / "map.osu"
    target.write_text("precious")
    with pytest.raises(FileExistsError):
        save(beatmap, target)
    assert target.read_text() == "precious"
    assert os.listdir(tmp_path) == ["map.osu"]


def test_save_leaves_no_partial_file_when_interrupted(tmp_path, monkeypatch):
    beatmap = parse_text("osu file format v14\n[HitObjects]\n1,2,3,1,0\n").beatmap
    target = tmp_path / "map.osu"

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(beatmap, target)
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    save(beatmap, target)
    assert parse_file(target).beatmap.hit_objects[0].time == 3
    assert os.listdir(tmp_path) == ["map.osu"]


def test_saved_maps_are_ordinary_files_and_replacements_keep_permissions(tmp_path):
    beatmap = parse_text("osu file format v14\n[HitObjects]\n1,2,3,1,0\n").beatmap
    fresh = save(beatmap, tmp_path / "fresh.osu")
    assert fresh.stat().st_mode & 0o777 == 0o644
    existing = tmp_path / "existing.osu"
    existing.write_text("old")
    existing.chmod(0o640)
    save(beatmap, existing, overwrite=True)
    assert existing.stat().st_mode & 0o777 == 0o640
    assert parse_file(existing).beatmap.hit_objects[0].time == 3


def test_numpy_numbers_are_written_as_plain_decimals():
    import numpy as np

    from core.beatmap.numbers import format_number

    assert format_number(np.float64(1193.21)) == "1193.21"
    assert format_number(np.float32(2.5)) == "2.5"
    assert format_number(np.float64(389.0)) == "389"
