"""Parse durations (``250ms``, ``15m``) and instants (RFC 3339 or unix seconds)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, default_unit: str = "s") -> float:
    """``"250ms"`` -> 0.25, ``"15m"`` -> 900.0; a bare number uses ``default_unit``.

    Raises:
        ValueError: the text is not a positive duration.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit, e.g. 250ms, 30s, 15m, 1h"
        )
    value = float(match.group(1)) * _UNITS[match.group(2) or default_unit]
    if value <= 0:
        raise ValueError(f"invalid duration {text!r}: must be greater than zero")
    return value


def parse_instant(text: str) -> float:
    """An RFC 3339 time (``2026-11-23T09:10:00Z``; no zone means UTC) or unix seconds.

    Raises:
        ValueError: the text is neither.
    """
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"invalid time {text!r}: use RFC 3339 (2026-11-23T09:10:00Z) or unix seconds"
        ) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def format_instant(ts: float) -> str:
    """Unix seconds as an RFC 3339 UTC time to the second."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_ms(seconds: float) -> str:
    """Seconds as a short human duration: ``812 ms``, ``1.25 s``."""
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    ms = seconds * 1000
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"
