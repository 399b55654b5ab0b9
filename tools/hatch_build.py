"""Build hook: the tooling's version is the library's, and it requires exactly that library.

The version is declared once, in ``otel/_internal/version.py`` beside this folder; the
other dependencies are listed in ``[tool.hatch.metadata.hooks.custom]``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

VERSION_FILE = Path("..") / "otel" / "_internal" / "version.py"


def library_version(root: Path) -> str:
    """``__version__`` from the library's version file (no import: it is not installed)."""
    path = (root / VERSION_FILE).resolve()
    match = re.search(r'^__version__ = "([^"]+)"$', path.read_text(), re.MULTILINE)
    if match is None:
        raise ValueError(f'{path}: no line __version__ = "..."')
    return match.group(1)


class LibraryVersionHook(MetadataHookInterface):
    """Sets ``version`` and ``dependencies`` (``trading-otel[all]==<version>`` first)."""

    def update(self, metadata: dict[str, Any]) -> None:
        version = library_version(Path(self.root))
        metadata["version"] = version
        metadata["dependencies"] = [
            f"trading-otel[all]=={version}",
            *self.config.get("dependencies", []),
        ]
