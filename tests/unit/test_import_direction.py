"""Imports flow one way: tools -> services -> otel (ARCHITECTURE, "Layout").

Checked on the source of every module, so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Top-level packages each tree must never import.
FORBIDDEN = {
    "otel": ("trading_otel_tools", "services", "typer", "rich", "gunicorn", "websockets"),
    "services": ("trading_otel_tools",),
}


def imported(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


@pytest.mark.parametrize("tree", sorted(FORBIDDEN))
def test_nothing_imports_against_the_flow(tree: str) -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line}: {name}"
        for path in sorted((REPO / tree).rglob("*.py"))
        for line, name in imported(path)
        if name.split(".", 1)[0] in FORBIDDEN[tree]
    ]
    assert bad == []


def test_services_use_only_the_public_otel_api() -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line}: {name}"
        for path in sorted((REPO / "services").rglob("*.py"))
        for line, name in imported(path)
        if name.startswith("otel.")
    ]
    assert bad == []


def test_the_tooling_finds_the_checkout_in_one_place() -> None:
    # Never through its own file's position: a wheel has no checkout around it.
    bad = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "tools").rglob("*.py"))
        if "Path(__file__).resolve().parents[" in path.read_text()
    ]
    assert bad == []
