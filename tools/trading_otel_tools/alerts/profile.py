"""A test profile of the shipped rules: the same expressions, with ``for:`` shortened.

Generated from ``deploy/prometheus/rules`` every time, never kept by hand, so the fault
matrix runs exactly the shipped expressions, labels and annotations; only the time an
alert must stay true before it fires is cut, so a whole matrix fits in minutes. The demo
(``demo.py``) and the diagnosis e2e test run it too.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from trading_otel_tools import home

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration_s(text: str) -> float:
    """Seconds of a Prometheus duration such as ``1m30s``.

    Raises:
        ValueError: not a Prometheus duration.
    """
    text = str(text).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_S[u] for n, u in parts)


def write_profile(out_dir: Path, max_for: str = "5s", rules_dir: Path | None = None) -> Path:
    """Copy the shipped rule files to ``out_dir``, each alert's ``for:`` cut to ``max_for``.

    Returns:
        ``out_dir``, ready to pass as ``StackConfig.rules_dir``.
    """
    limit = duration_s(max_for)
    out_dir.mkdir(parents=True, exist_ok=True)
    rules_dir = rules_dir or home.checkout().rules_dir
    for path in sorted(rules_dir.glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule and "for" in rule and duration_s(rule["for"]) > limit:
                    rule["for"] = max_for
        header = f"# GENERATED from {path.name} (for: cut to {max_for}); do not edit.\n"
        (out_dir / path.name).write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return out_dir
