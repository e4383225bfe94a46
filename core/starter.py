"""Where the starter model lives: a small checkpoint shipped inside the package, so generation
works on a fresh machine with no download (see README, "The starter model")."""

from __future__ import annotations

from pathlib import Path

STARTER_MODEL = Path(__file__).resolve().parent / "starter_model"


def default_model_path() -> Path | None:
    """The shipped starter checkpoint, or None in a checkout that has not built it."""
    return STARTER_MODEL if (STARTER_MODEL / "checkpoint.json").is_file() else None
