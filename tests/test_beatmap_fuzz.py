"""Mutated real maps: the parser returns issues or raises BeatmapError, never anything else."""

from __future__ import annotations

import contextlib
from functools import cache

from corpus_files import require_corpus, resource
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.beatmap.parser import BeatmapError, parse_bytes, parse_text
from core.beatmap.writer import write_text

SOURCES = ["Soleily - Renatus (Gamu) [Insane].osu", "multi-segment-slider.osu",
           "nan-control-points.osu", "old-stacking.osu", "sample-beatmap-osu.osu"]
NASTY = ["NaN", "-nan", "inf", "-Infinity", "1e309", "99999999999999999999", "-2147483649",
         "", " ", "1_000", "0x10", "１２", "1.5.5", "--1", ":", "|", "B|", "P|1:1", "L|:",
         "\x00", "\ufffd", "9" * 5000]


@cache
def source_lines(name: str) -> tuple[str, ...]:
    data = resource(require_corpus(), name).read_bytes()
    return tuple(data.decode("utf-8-sig").splitlines())


@st.composite
def mutated_map(draw) -> bytes:
    lines = list(source_lines(draw(st.sampled_from(SOURCES))))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["truncate", "garbage", "swap", "nasty", "drop", "dup"]))
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "truncate":
            lines = lines[:i] + [lines[i][: draw(st.integers(0, len(lines[i])))]]
        elif kind == "garbage":
            lines[i] = draw(st.binary(max_size=40)).decode("latin-1")
        elif kind == "swap":
            fields = lines[i].split(",")
            if len(fields) > 1:
                a, b = draw(st.integers(0, len(fields) - 1)), draw(st.integers(0, len(fields) - 1))
                fields[a], fields[b] = fields[b], fields[a]
                lines[i] = ",".join(fields)
        elif kind == "nasty":
            fields = lines[i].split(",")
            fields[draw(st.integers(0, len(fields) - 1))] = draw(st.sampled_from(NASTY))
            lines[i] = ",".join(fields)
        elif kind == "drop":
            del lines[i]
        else:
            lines.insert(i, lines[i])
        if not lines:
            lines = [""]
    return "\n".join(lines).encode("utf-8", errors="surrogateescape")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_map())
def test_mutated_real_maps_give_issues_or_beatmap_error(data):
    try:
        result = parse_bytes(data, "mutant.osu")
    except BeatmapError as e:
        assert e.file == "mutant.osu"
        return
    for issue in result.issues:
        assert issue.file == "mutant.osu" and issue.line_no >= 0 and issue.reason
    # Whatever was read can be written and read again.
    again = parse_text(write_text(result.beatmap), "again.osu").beatmap
    assert len(again.hit_objects) == len(result.beatmap.hit_objects)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_issues_or_beatmap_error(data):
    with contextlib.suppress(BeatmapError):
        parse_bytes(b"osu file format v14\n[HitObjects]\n" + data, "random.osu")
