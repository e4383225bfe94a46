"""Finding the shared corpus of real osu! files, and the .osu files inside it and its archives.

The corpus is read-only and never copied into the project: tests locate it through
KIAI_TEST_CORPUS (default ../shared/corpus beside the checkout) and skip where it is absent.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def corpus_root() -> Path | None:
    root = Path(os.environ.get("KIAI_TEST_CORPUS", REPO.parent / "shared" / "corpus"))
    return root if root.is_dir() else None


def require_corpus() -> Path:
    root = corpus_root()
    if root is None:
        pytest.skip("the shared corpus is absent: set KIAI_TEST_CORPUS to its folder")
    return root


def tree_maps(root: Path) -> list[Path]:
    """Every .osu file in the corpus's ppy-osu tree."""
    return sorted((root / "ppy-osu" / "tree").rglob("*.osu"))


def archive_maps(root: Path) -> Iterator[tuple[str, bytes]]:
    """(archive::member, bytes) of every .osu inside the corpus's .osz/.olz archives."""
    for archive in sorted(p for p in root.rglob("*") if p.suffix in (".osz", ".olz")):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if info.filename.lower().endswith(".osu"):
                    yield f"{archive.relative_to(root)}::{info.filename}", z.read(info)


def resource(root: Path, name: str, under: str = "") -> Path:
    """A file under ppy-osu/tree found by its name (and a folder fragment of its path)."""
    matches = sorted(p for p in (root / "ppy-osu" / "tree").rglob("*")
                     if p.name == name and under in str(p.parent))
    if not matches:
        pytest.skip(f"{name} is not in the corpus at {root}")
    return matches[0]


def hand_timed_track(root: Path, name: str):
    """(mono audio at core.audio.SAMPLE_RATE, uninherited points) of osu-resources' `name`.osz
    (triangles, circles or welcome: real music whose timing points are hand-made)."""
    from core.audio import load_audio_bytes
    from core.beatmap.parser import parse_bytes

    with zipfile.ZipFile(root / "osu-resources" / f"{name}.osz") as z:
        osu = next(n for n in z.namelist() if n.endswith(".osu"))
        beatmap = parse_bytes(z.read(osu), osu).beatmap
        audio = next(n for n in z.namelist() if n.endswith((".mp3", ".ogg")))
        return load_audio_bytes(z.read(audio), audio), [
            p for p in beatmap.timing_points if p.uninherited]
