"""The parser on real files: every corpus map, and edge cases named after their quirk."""

from __future__ import annotations

import pytest
from corpus_files import archive_maps, require_corpus, resource, tree_maps

from core.beatmap.model import Circle, Mode, Slider, Spinner
from core.beatmap.parser import BeatmapError, parse_bytes, parse_file, parse_text
from core.beatmap.timing import ControlPoints


def reasons(result) -> list[str]:
    return [issue.reason for issue in result.issues]


def test_every_corpus_map_parses_or_raises_beatmap_error():
    root = require_corpus()
    maps = tree_maps(root)
    assert len(maps) >= 150
    for path in maps:
        result = parse_file(path)
        assert all(issue.file == str(path) for issue in result.issues)
    errors = []
    members = 0
    for name, data in archive_maps(root):
        members += 1
        try:
            parse_bytes(data, name)
        except BeatmapError as e:
            errors.append(name)
            assert name in str(e)
    assert members >= 30
    # The only members that are not beatmaps are macOS resource forks (binary AppleDouble files).
    assert errors and all("__MACOSX/._" in name for name in errors)


def test_real_ranked_map_fields():
    root = require_corpus()
    path = resource(root, "Within Temptation - The Unforgiving (Armin) [Marathon].osu")
    result = parse_file(path)
    beatmap = result.beatmap
    assert result.issues == []
    assert len(beatmap.hit_objects) == 6503  # the corpus README's count
    assert len(beatmap.timing_points) == 504
    assert beatmap.mode is Mode.OSU
    assert beatmap.metadata["Creator"] == "Armin"
    assert beatmap.version == "Marathon"
    assert {type(o) for o in beatmap.hit_objects} == {Circle, Slider, Spinner}
    times = [o.time for o in beatmap.hit_objects]
    assert times == sorted(times)


@pytest.mark.parametrize("name", ["missing-header.osu", "corrupted-header.osu",
                                  "empty-line-instead-of-header.osu"])
def test_missing_or_corrupted_header_falls_back_to_v14_and_says_so(name):
    result = parse_file(resource(require_corpus(), name))
    assert result.beatmap.format_version == 14
    assert any("header" in reason for reason in reasons(result))
    assert result.issues[0].line_no >= 1
    assert result.beatmap.metadata["Title"].startswith("Beatmap with") or \
        result.beatmap.metadata["Title"] == "The dog ate the file header"


def test_corrupted_header_keeps_the_metadata_after_it():
    result = parse_file(resource(require_corpus(), "corrupted-header.osu"))
    assert result.beatmap.metadata["Title"] == "Beatmap with corrupted header"
    assert result.beatmap.metadata["Creator"] == "Evil Hacker"


def test_out_of_range_difficulties_are_clamped_and_reported():
    result = parse_file(resource(require_corpus(), "out-of-range-difficulties.osu"))
    d = result.beatmap.difficulty
    assert (d.hp, d.cs, d.od, d.ar) == (10, 10, 10, 10)
    assert d.slider_multiplier == 3.6 and d.slider_tick_rate == 8
    clamped = [i for i in result.issues if "clamped" in i.reason]
    assert len(clamped) == 6
    assert all(i.section == "Difficulty" and i.line_no > 0 for i in clamped)


def test_undefined_approach_rate_follows_overall_difficulty():
    beatmap = parse_file(resource(require_corpus(), "undefined-approach-rate.osu")).beatmap
    assert beatmap.difficulty.ar is None
    assert beatmap.difficulty.approach_rate == beatmap.difficulty.od == 1


def test_comments_are_stripped_outside_metadata():
    beatmap = parse_file(resource(require_corpus(), "comments.osu")).beatmap
    assert beatmap.colours == {"Combo1": "100, 100, 100"}


def test_legacy_fractional_coordinates_are_truncated_and_reported():
    result = parse_file(resource(require_corpus(), "hitobject-coordinates-legacy.osu"))
    circle = result.beatmap.hit_objects[0]
    assert (circle.x, circle.y) == (256, 256)
    assert sum("truncated" in r for r in reasons(result)) == 2


def test_lazer_fractional_coordinates_are_kept():
    result = parse_file(resource(require_corpus(), "hitobject-coordinates-lazer.osu"))
    circle = result.beatmap.hit_objects[0]
    assert (circle.x, circle.y) == (256.99853, 256.001)
    assert result.issues == []


def test_version_3_shifts_times_by_24_ms():
    beatmap = parse_file(resource(require_corpus(), "old-stacking.osu")).beatmap
    assert beatmap.format_version == 3
    assert beatmap.timing_points[0].time == 48 + 24
    assert beatmap.hit_objects[0].time == 32165 + 24


def test_nan_beat_length_is_kept_and_reported():
    result = parse_file(resource(require_corpus(), "nan-control-points.osu"))
    assert any("beat length" in r for r in reasons(result))


def test_multi_segment_slider_keeps_its_segment_letters():
    beatmap = parse_file(resource(require_corpus(), "multi-segment-slider.osu",
                                  under="osu.Game.Tests")).beatmap
    explicit = [o for o in beatmap.hit_objects if isinstance(o, Slider) and o.segment_types]
    assert explicit, "the v128 file has sliders with letters mid-path"
    assert all(set(o.segment_types.values()) <= set("BLPC") for o in explicit)


def test_metadata_keeps_double_slashes():
    text = "osu file format v14\n[Metadata]\nTitle:http://example // not a comment\n"
    assert parse_text(text).beatmap.metadata["Title"] == "http://example // not a comment"


def test_bad_lines_are_reported_with_line_numbers_and_skipped(tmp_path):
    text = ("osu file format v14\n\n[Difficulty]\nCircleSize:abc\n[TimingPoints]\n"
            "0,500,4,2,0,100,1,0\n100\n[HitObjects]\n64,64,500,1,0\n64,64,oops,1,0\n1,2,600,0,0\n70,70,700,2,0,B|80:80,99999\n"
            "70,70,800,2,0,B|80:80,1,-5\n[Nonsense]\nfoo\n")
    path = tmp_path / "bad.osu"
    path.write_text(text)
    result = parse_file(path)
    by_line = {i.line_no: i for i in result.issues}
    assert set(by_line) == {4, 7, 10, 11, 12, 13, 14}
    assert by_line[4].section == "Difficulty" and "abc" in by_line[4].reason
    assert by_line[7].section == "TimingPoints"
    assert "unknown hit object type" in by_line[11].reason
    assert "too high" in by_line[12].reason
    assert "negative pixel length" in by_line[13].reason
    assert "unknown section" in by_line[14].reason
    assert str(path) in str(by_line[10]) and ":10:" in str(by_line[10])
    assert [o.time for o in result.beatmap.hit_objects] == [500, 800]


def test_hit_objects_out_of_order_are_sorted_and_reported():
    text = "osu file format v14\n[HitObjects]\n1,1,200,1,0\n2,2,100,1,0\n"
    result = parse_text(text)
    assert [o.time for o in result.beatmap.hit_objects] == [100, 200]
    assert any("sorted" in r for r in reasons(result))
    timing = parse_text("osu file format v14\n[TimingPoints]\n0,500,4,1,0,100,1,0\n"
                        "40000,-100,4,1,0,100,0,0\n30000,400,4,1,0,100,1,0\n")
    assert [p.time for p in timing.beatmap.timing_points] == [0, 30000, 40000]
    # the warning says where (it had quoted an empty line: QA, session 32)
    assert [str(i).split(": ", 1)[1] for i in timing.issues] == ["[TimingPoints] "
        "timing points out of time order (30000 ms comes after 40000 ms); sorted by time"]



def test_lines_at_a_time_seen_before_replace_the_earlier_ones_as_lazer_does():
    """lazer reads timing lines in file order, one group per run at one time; a later group at
    a time already seen replaces what it has of each kind (sorting first had merged the runs,
    so the first red line won: review, session 32)."""
    text = ("osu file format v14\n[TimingPoints]\n0,500,4,1,0,100,1,0\n"
            "30000,400,4,1,0,100,1,0\n30000,-50,4,1,0,100,0,0\n40000,600,4,1,0,100,1,0\n"
            "30000,300,4,1,0,100,1,0\n50000,500,4,1,0,100,1,0\n30000,-25,4,1,0,100,0,0\n")
    result = parse_text(text)
    points = result.beatmap.timing_points
    control = ControlPoints(points)
    assert control.timing_point_at(30000).beat_length == 300  # the later red line
    assert control.slider_velocity_at(30000) == 4.0  # the last green line, after it
    assert [(p.time, p.beat_length) for p in points] == [
        (0, 500), (30000, 300), (30000, -25), (40000, 600), (50000, 500)]
    assert [r for r in reasons(result) if "again" in r] == [
        "lines at 30000 ms again, out of order: they replace the earlier ones there, as osu! does"]
    # a map in order, lines at one time in a row, is left as it is: the first red line wins
    in_order = parse_text("osu file format v14\n[TimingPoints]\n0,500,4,1,0,100,1,0\n"
                          "0,400,4,1,0,100,1,0\n").beatmap.timing_points
    assert ControlPoints(in_order).timing_point_at(0).beat_length == 500 and len(in_order) == 2


def test_a_stray_nul_costs_its_line_not_the_map():
    """One NUL in a map had made the whole file 'not a text file' (QA round 9)."""
    lines = ["osu file format v14", "[Metadata]", "Title:Song", "[HitObjects]"]
    lines += [f"{64 * i},192,{1000 + 500 * i},1,0" for i in range(40)]
    lines[10] = "64,192,4\x0000,1,0"
    result = parse_bytes("\n".join(lines).encode(), "song.osu")
    assert len(result.beatmap.hit_objects) == 39
    assert (result.issues[0].line_no, result.issues[0].reason) == (
        11, "invalid bytes (not UTF-8, or NUL) replaced")
    with pytest.raises(BeatmapError, match="not a text file"):  # NULs all through: binary
        parse_bytes(b"osu file format v14\n" + b"\x00\x00a\n" * 100, "song.osu")
    # UTF-16 with its byte order mark is text: lazer's StreamReader detects it
    wide = parse_bytes("\n".join(lines).replace("\x00", "").encode("utf-16"), "song.osu")
    assert len(wide.beatmap.hit_objects) == 40 and wide.beatmap.metadata["Title"] == "Song"


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"   \r\n\r\n", "empty"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "not a text file"),
    (b"just some text\nwith lines\n", "not an osu! beatmap"),
])
def test_not_a_beatmap_raises_one_error_naming_file_and_line(data, message):
    with pytest.raises(BeatmapError) as info:
        parse_bytes(data, "song.osu")
    assert message in str(info.value)
    assert str(info.value).startswith("song.osu:")
    assert info.value.file == "song.osu" and info.value.line_no == 1


def test_jpeg_named_wav_is_not_a_beatmap():
    path = resource(require_corpus(), "corrupt.wav")
    with pytest.raises(BeatmapError, match=r"corrupt\.wav"):
        parse_file(path)


def test_missing_file_raises_beatmap_error(tmp_path):
    with pytest.raises(BeatmapError, match="cannot read"):
        parse_file(tmp_path / "nope.osu")


def test_bom_and_invalid_utf8_are_handled():
    data = "\ufeffosu file format v14\n[Metadata]\nTitle:ok\n".encode() + b"Artist:\xff\xfe\n"
    result = parse_bytes(data, "x.osu")
    assert result.beatmap.format_version == 14
    assert result.beatmap.metadata["Title"] == "ok"
    assert [i.line_no for i in result.issues] == [4]
