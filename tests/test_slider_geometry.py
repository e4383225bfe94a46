"""Slider times and positions against osu!lazer's own conversion of its test maps.

Each `*-expected-conversion.json` beside an osu!standard test map in ppy/osu lists every object
lazer makes of the map; for a slider that is its head, ticks, repeats and tail with StartTime and
stacked X, Y. We rebuild the same list from our parser, `curves` and `timing`, plus lazer's legacy
tail and stacking (tests/osu_conversion.py), and require repeats and tails within 1 ms and
0.5 osu!px. Heads, circles and spinners are held to the same bounds (they check the stacking the
comparison relies on), ticks too, except that a tick's position may be off by the distance the
ball covers in 1 ms: the reference times come truncated to whole milliseconds (osu!stable's
integers) and its tick positions follow those times.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus_files import corpus_root
from osu_conversion import convert

from core.beatmap.parser import parse_file

BEATMAPS = Path("ppy-osu/tree/osu.Game.Rulesets.Osu.Tests/Resources/Testing/Beatmaps")
TIME_TOLERANCE_MS = 1.0
POSITION_TOLERANCE_PX = 0.5
FLOAT_NOISE = 1e-6  # a reference time truncated from x.0 can differ by 1 ms plus rounding


def _names() -> list[str]:
    root = corpus_root()
    if root is None:
        return ["<corpus absent>"]
    suffix = "-expected-conversion.json"
    return sorted(p.name[: -len(suffix)] for p in (root / BEATMAPS).glob("*" + suffix))


def compare(corpus: Path, name: str) -> dict[str, tuple[float, float]]:
    """Worst (time ms, position px) error per kind of object; asserts the lists line up."""
    folder = corpus / BEATMAPS
    expected = json.loads((folder / f"{name}-expected-conversion.json").read_text())["Mappings"]
    result = parse_file(folder / f"{name}.osu")
    objects = convert(result.beatmap)
    assert len(objects) == len(expected), f"{name}: {len(objects)} objects, lazer {len(expected)}"
    worst: dict[str, tuple[float, float]] = {}
    for index, (obj, mapping) in enumerate(zip(objects, expected, strict=True)):
        want = mapping["Objects"]
        kinds = [part.kind for part in obj.parts]
        assert len(obj.parts) == len(want), (
            f"{name}: object {index} at {obj.start} ms has parts {kinds}, lazer has {len(want)}")
        for part, ref in zip(obj.parts, want, strict=True):
            dt = max(abs(part.start - ref["StartTime"]), abs(part.end - ref["EndTime"]))
            dp = max(abs(part.x - ref["X"]), abs(part.y - ref["Y"]))
            t, p = worst.get(part.kind, (0.0, 0.0))
            worst[part.kind] = (max(t, dt), max(p, dp))
            position_tolerance = POSITION_TOLERANCE_PX
            if part.kind == "tick":
                position_tolerance += obj.velocity * TIME_TOLERANCE_MS
            assert dt <= TIME_TOLERANCE_MS + FLOAT_NOISE and dp <= position_tolerance, (
                f"{name}: object {index} ({obj.kind} at {obj.start} ms), its {part.kind}: "
                f"ours t={part.start:.3f} ({part.x:.3f}, {part.y:.3f}), lazer t={ref['StartTime']} "
                f"({ref['X']}, {ref['Y']})")
    return worst


@pytest.mark.parametrize("name", _names())
def test_matches_lazer_conversion(corpus: Path, name: str) -> None:
    worst = compare(corpus, name)
    assert worst, f"{name}: nothing compared"


def test_every_slider_kind_is_covered(corpus: Path) -> None:
    """The conversion files exercise repeats and tails, not only heads."""
    kinds: set[str] = set()
    for name in _names():
        kinds |= set(compare(corpus, name))
    assert {"head", "tail", "repeat", "tick", "circle"} <= kinds
