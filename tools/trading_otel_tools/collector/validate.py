"""Run the built collector's ``validate`` and report its error like a lint finding."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from trading_otel_tools.collector.config import Finding, Location, MergedConfig

_KIND = r"(receivers|processors|exporters|connectors|extensions)"
#: How the collector names the component it could not decode, in its two styles.
_COMPONENT_IN_ERROR = (
    re.compile(rf"'{_KIND}' error reading configuration for \"([^\"]+)\""),
    re.compile(rf"'?{_KIND}::([^':\s]+)"),
)
_INVALID_KEYS = re.compile(r"has invalid keys: ([\w.-]+)")


def _validate_location(text: str, cfg: MergedConfig, fallback: Path) -> Location:
    """Point at the component (or its unknown key) the collector's error names."""
    for pattern in _COMPONENT_IN_ERROR:
        match = pattern.search(text)
        if match:
            path: tuple[str, ...] = (match.group(1), match.group(2))
            key = _INVALID_KEYS.search(text)
            if key and (*path, key.group(1)) in cfg.locations:
                path = (*path, key.group(1))
            return cfg.where(*path)
    return Location(fallback)


def run_validate(
    files: Sequence[Path], binary: Path, environ: Mapping[str, str], cfg: MergedConfig
) -> Iterator[Finding]:
    """Run ``binary validate`` on ``files`` and turn its error into findings."""
    argv = [str(binary), "validate", *(f"--config={Path(f).resolve()}" for f in files)]
    out = subprocess.run(argv, capture_output=True, text=True, env=dict(environ), timeout=60)
    if out.returncode == 0:
        return
    text = (out.stderr.strip() or out.stdout.strip()).replace("\n\n", "\n")
    where = _validate_location(text, cfg, Path(files[-1]))
    yield Finding(where, "error", "validate", f"`otelcol validate` failed: {text}")
