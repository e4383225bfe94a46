"""The corpus's osu!standard maps, for benchmarks (KIAI_TEST_CORPUS, default ../shared/corpus)."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.beatmap.model import Mode  # noqa: E402
from core.beatmap.parser import BeatmapError, parse_bytes  # noqa: E402


def corpus_root() -> Path:
    root = Path(os.environ.get("KIAI_TEST_CORPUS", REPO.parent / "shared" / "corpus"))
    if not root.is_dir():
        sys.exit(f"corpus not found at {root}: set KIAI_TEST_CORPUS")
    return root


def standard_maps(root: Path | None = None) -> list[tuple[str, bytes]]:
    """(name, bytes) of every osu!standard .osu in the corpus, archive members included."""
    root = root or corpus_root()
    found = [(str(p.relative_to(root)), p.read_bytes())
             for p in sorted((root / "ppy-osu" / "tree").rglob("*.osu"))]
    for archive in sorted(p for p in root.rglob("*") if p.suffix in (".osz", ".olz")):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if info.filename.lower().endswith(".osu"):
                    found.append((f"{archive.relative_to(root)}::{info.filename}", z.read(info)))
    maps = []
    for name, data in found:
        try:
            if parse_bytes(data, name).beatmap.mode is Mode.OSU:
                maps.append((name, data))
        except BeatmapError:
            continue
    return maps
