"""The layers point down (DESIGN §2): core and protocol never import companion, protocol imports
no torch and no core, examples import protocol only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package,forbidden", [
    ("core", {"companion", "websockets", "watchdog", "protocol"}),
    ("protocol", {"companion", "core", "torch", "torchaudio", "numpy"}),
    ("examples", {"companion", "core", "torch"}),
])
def test_layers_point_down(package, forbidden):
    files = sorted((REPO / package).rglob("*.py"))
    if package != "examples":
        assert files, f"{package}/ has no modules"
    for path in files:
        bad = imported_roots(path) & forbidden
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"
