"""Shared fixtures. `corpus` is the read-only corpus of real osu! files (see corpus_files.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_files import require_corpus


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The corpus folder: $KIAI_TEST_CORPUS, else ../shared/corpus beside the checkout.

    Tests that use it are skipped, with the reason, where it is absent.
    """
    return require_corpus()
