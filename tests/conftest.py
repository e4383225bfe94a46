"""Shared fixtures. `corpus` is the read-only corpus of real osu! files (see corpus_files.py);
`model` and `library` are the daemon tests' checkpoint and synthetic song folders, made once per
session (copy the songs; never change them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_files import require_corpus
from daemon_support import make_library, make_model


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The corpus folder: $KIAI_TEST_CORPUS, else ../shared/corpus beside the checkout.

    Tests that use it are skipped, with the reason, where it is absent.
    """
    return require_corpus()


@pytest.fixture(scope="session")
def model(tmp_path_factory) -> Path:
    """The starter model if built, else a tiny random checkpoint (daemon_support.make_model)."""
    return make_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def library(tmp_path_factory) -> dict[str, Path]:
    """Synthetic song folders `short` (20 s) and `long` (90 s) to copy into a Songs folder."""
    return make_library(tmp_path_factory.mktemp("library"))
