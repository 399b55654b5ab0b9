"""Reading one environ: the parsing and warning primitives behind :mod:`settings`.

:class:`Reader` reads variables from one mapping and warns once per bad value (naming
the variable, the value and the default). When that mapping is ``os.environ`` itself, a
rejected value is also removed from it, so the SDK, which re-reads some variables, never
sees it. What each variable means, and its default and bounds, live in the settings
table (:data:`otel._internal.settings.VARIABLES`), not here.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

_log = logging.getLogger("otel.config")
T = TypeVar("T")

#: The largest duration accepted, in milliseconds (2**31 - 1, about 24.8 days; the SDK's
#: thread waits overflow long before 1e300).
MAX_MS = float(2**31 - 1)

#: Advice already given about os.environ values that are kept (e.g. an endpoint/protocol
#: mismatch), so that a second ``from_env(os.environ)`` does not repeat it.
_advised: set[tuple[str, str]] = set()


class Reader:
    """Reads variables from one environ, warning once per bad value."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.env = environ
        self.live = environ is os.environ
        self._warned: set[str] = set()

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def bad(
        self, name: str, value: str, reason: str, default: object, replacement: str | None = None
    ) -> None:
        """Report a rejected value; ``replacement`` is what is kept of it (None: nothing)."""
        # Shared variables (OTEL_EXPORTER_OTLP_ENDPOINT...) are read once per signal.
        if name in self._warned:
            return
        self._warned.add(name)
        _log.warning("invalid value %s=%r (%s); using the default %r", name, value, reason, default)
        if self.live:
            if replacement is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = replacement

    def advise(self, name: str, value: str, message: str) -> None:
        """Warn about a value that is kept; once per variable (and per process for os.environ)."""
        key = (name, value)
        if name in self._warned or (self.live and key in _advised):
            return
        self._warned.add(name)
        if self.live:
            _advised.add(key)
        _log.warning("%s=%r: %s", name, value, message)

    def parse(self, name: str, default: T, cast: Callable[[str], T], reason: str) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return cast(value)
        except (ValueError, TypeError):
            self.bad(name, value, reason, default)
            return default

    def number(
        self, name: str, default: float, *, minimum: float = 0.0, maximum: float = MAX_MS
    ) -> float:
        def cast(v: str) -> float:
            f = float(ascii_only(v))
            # NaN fails both comparisons; a value past ``maximum`` would overflow the
            # SDK's thread waits (1e300 ms) or the exit deadline.
            if not minimum <= f <= maximum:
                raise ValueError(v)
            return f

        return self.parse(name, default, cast, f"expected a number in [{minimum:g}, {maximum:g}]")

    def integer(self, name: str, default: int, *, minimum: int = 0, maximum: int = 2**31) -> int:
        def cast(v: str) -> int:
            i = int(ascii_only(v))
            if not minimum <= i <= maximum:
                raise ValueError(v)
            return i

        return self.parse(name, default, cast, f"expected an integer in [{minimum}, {maximum}]")

    def boolean(self, name: str, default: bool) -> bool:
        def cast(v: str) -> bool:
            low = v.lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ValueError(v)

        return self.parse(name, default, cast, "expected true or false")

    def choice(self, name: str, default: str, allowed: frozenset[str] | tuple[str, ...]) -> str:
        def cast(v: str) -> str:
            if v.lower() not in allowed:
                raise ValueError(v)
            return v.lower()

        return self.parse(name, default, cast, f"expected one of {', '.join(sorted(allowed))}")

    def names(
        self, name: str, default: tuple[str, ...], allowed: frozenset[str]
    ) -> tuple[str, ...]:
        """A comma list of exporter names; unknown names are dropped with one warning."""
        value = self.raw(name)
        if value is None:
            return default
        items = [p.strip().lower() for p in value.split(",") if p.strip()]
        unknown = [p for p in items if p not in allowed]
        known = tuple(dict.fromkeys(p for p in items if p in allowed))
        if unknown:
            kept = ",".join(known) or None
            known = known or default
            self.bad(name, value, f"unknown exporter {', '.join(unknown)}", ",".join(known), kept)
        return () if "none" in known else known

    def patterns(self, name: str) -> tuple[str, ...]:
        """A comma list of regular expressions; entries that do not compile are dropped."""
        value = self.raw(name)
        good: list[str] = []
        bad: list[str] = []
        for item in split_list(value):
            (good if valid_regex(item) else bad).append(item)
        if value is not None and bad:
            reason = f"invalid pattern {', '.join(map(repr, bad))}"
            self.bad(name, value, reason, ",".join(good) or "nothing", ",".join(good) or None)
        return tuple(good)

    def url(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        parts = urlsplit(value)
        # Non-ASCII hosts must be written in their IDNA (punycode) form.
        if parts.scheme in ("http", "https") and parts.hostname and value.isascii():
            try:
                _ = parts.port  # raises on a non-numeric port
                return value
            except ValueError:
                pass
        self.bad(name, value, "not an http(s) URL with a host", "the SDK default endpoint")
        return ""  # "" = present but rejected: the SDK default must be forced


def ascii_only(value: str) -> str:
    # float() and int() accept any Unicode digit (fullwidth ones too); the spec means ASCII.
    if not value.isascii():
        raise ValueError(value)
    return value


def split_list(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(p.strip() for p in value.split(",") if p.strip())


def valid_regex(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True
