"""`kiai tokenize`, `detokenize` and `roundtrip` through click, on real maps."""

from __future__ import annotations

import json

from click.testing import CliRunner
from corpus_files import require_corpus, resource

from companion.cli import main
from core.beatmap.parser import parse_file

MAP = "Soleily - Renatus (Gamu) [Insane].osu"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_tokenize_prints_token_names():
    path = resource(require_corpus(), MAP)
    result = run("tokenize", str(path))
    assert result.exit_code == 0, result.output
    names = json.loads(result.stdout)
    assert names[0] == "SOS" and names[-1] == "EOS"
    assert any(n.startswith("TIME_SHIFT_") for n in names)
    assert any(n.startswith("COORD_X_") for n in names)
    seed = json.loads(run("tokenize", str(path), "--vocab", "seed").stdout)
    assert len(seed) != len(names)


def test_detokenize_and_roundtrip_write_maps_and_never_overwrite(tmp_path):
    path = resource(require_corpus(), MAP)
    tokens = tmp_path / "tokens.json"
    tokens.write_text(run("tokenize", str(path)).stdout)
    out = tmp_path / "out.osu"
    result = run("detokenize", str(tokens), "--template", str(path), "-o", str(out))
    assert result.exit_code == 0, result.output
    original = parse_file(path).beatmap
    written = parse_file(out).beatmap
    assert len(written.hit_objects) == len(original.hit_objects)
    assert written.metadata == original.metadata

    again = run("roundtrip", str(path), "-o", str(out))
    assert again.exit_code != 0
    assert "already exists" in again.output and "Traceback" not in again.output
    assert parse_file(out).beatmap.hit_objects == written.hit_objects

    fresh = tmp_path / "rt.osu"
    assert run("roundtrip", str(path), "-o", str(fresh)).exit_code == 0
    assert len(parse_file(fresh).beatmap.hit_objects) == len(original.hit_objects)


def test_errors_are_one_line_without_traceback(tmp_path):
    root = require_corpus()
    mania = resource(root, "sample-beatmap-mania.osu")
    result = run("tokenize", str(mania))
    assert result.exit_code == 1 and "unsupported mode: mania" in result.output
    result = run("tokenize", str(tmp_path / "missing.osu"))
    assert result.exit_code == 1 and "missing.osu" in result.output
    jpeg = resource(root, "corrupt.wav")
    result = run("tokenize", str(jpeg))
    assert result.exit_code == 1 and "not a text file" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text('["SOS", "PLACE_CIRCLE", "COORD_Y_3"]')
    result = run("detokenize", str(bad), "--template", str(resource(root, MAP)),
                 "-o", str(tmp_path / "x.osu"))
    assert result.exit_code == 1 and "token 2 (COORD_Y_3)" in result.output
    assert not (tmp_path / "x.osu").exists()
    bad.write_text('["SOS", "NOT_A_TOKEN"]')
    result = run("detokenize", str(bad), "--template", str(resource(root, MAP)),
                 "-o", str(tmp_path / "x.osu"))
    assert result.exit_code == 1 and "item 1" in result.output


def test_parse_issues_are_printed_as_warnings(tmp_path):
    path = resource(require_corpus(), "out-of-range-difficulties.osu")
    result = run("roundtrip", str(path), "-o", str(tmp_path / "o.osu"))
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "clamped" in result.stderr
