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


def imported(
    path: Path, *, typing_only: bool = True, members: bool = False
) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import in ``path``, lazy ones included.

    With ``members``, ``from a import b`` also yields ``a.b`` (``b`` may be a module). With
    ``typing_only=False``, imports under ``if TYPE_CHECKING:`` are left out: they never run.
    """
    tree = ast.parse(path.read_text(), str(path))
    skip: set[ast.AST] = set()
    if not typing_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
                skip.update(n for child in node.body for n in ast.walk(child))
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            if members:
                yield from ((node.lineno, f"{node.module}.{a.name}") for a in node.names)


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


def _module(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, path)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


@pytest.mark.parametrize(
    ("root", "package", "depth"),
    [(REPO, "otel", 3), (REPO, "services", 2), (REPO / "tools", "trading_otel_tools", 2)],
    ids=["otel-modules", "services-packages", "tools-packages"],
)
def test_no_import_circles(root: Path, package: str, depth: int) -> None:
    """Modules of the library, and the packages of the services and the tooling, form no
    circle, counting lazy imports (only ``if TYPE_CHECKING:`` imports never run)."""
    nodes = {".".join(_module(p, root).split(".")[:depth]) for p in (root / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in (root / package).rglob("*.py"):
        here = ".".join(_module(path, root).split(".")[:depth])
        for _, name in imported(path, typing_only=False, members=True):
            there = ".".join(name.split(".")[:depth])
            if there in nodes and there != here:
                graph.setdefault(here, set()).add(there)
    assert _cycles(graph) == []
