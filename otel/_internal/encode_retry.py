"""Encode a batch as usual; only when its text cannot be encoded, clean a copy and retry.

A normal batch pays one ``try``. The cleaning is reported on ``otel.exporters`` at most
once a minute per kind of batch, and never quotes the bad text.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

_log = logging.getLogger("otel.exporters")
T = TypeVar("T")
R = TypeVar("R")


_last_report: dict[str, float] = {}
REPORT_EVERY_S = 60.0


def report_cleaned(what: str, changed: int) -> None:
    """One warning per kind of batch per minute at most; it never quotes the bad text.

    Args:
        what: What was cleaned, plural (``spans``, ``log records``...).
        changed: How many of them were changed.
    """
    now = time.monotonic()
    if now - _last_report.get(what, -REPORT_EVERY_S) < REPORT_EVERY_S:
        return
    _last_report[what] = now
    _log.warning(
        "%s holding text that is not valid UTF-8: %d; each bad code point became U+FFFD "
        "and the rest was sent unchanged (reported at most once per %.0f s)",
        what,
        changed,
        REPORT_EVERY_S,
    )


#: The SDK's encoder does not raise for an attribute it cannot encode: it logs the error
#: (with the raw key) on this logger and leaves the attribute out.
_SDK_ENCODER = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")
_local = threading.local()


def _text_error(exc: BaseException | None) -> bool:
    # upb raises UnicodeEncodeError; the pure-Python protobuf a ValueError naming UTF-8.
    return isinstance(exc, UnicodeEncodeError) or (
        isinstance(exc, ValueError) and "utf-8" in str(exc).lower()
    )


class _SkippedAttribute(logging.Filter):
    """Notes, for :func:`encode_or_clean`, that the SDK skipped an attribute with bad text.

    The record is dropped while :func:`encode_or_clean` runs: it quotes the bad text, and
    the batch is about to be cleaned and encoded again with the attribute in it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(_local, "active", False):
            return True
        if not _text_error(record.exc_info[1] if record.exc_info else None):
            return True
        _local.skipped = True
        return False


_SDK_ENCODER.addFilter(_SkippedAttribute())


def encode_or_clean(
    encode: Callable[[T], R],
    batch: T,
    clean: Callable[[T], tuple[T, int]],
    what: str,
    *,
    raises: bool = False,
) -> R:
    """``encode(batch)``; if bad text made it fail, encode a cleaned copy instead.

    Failing means raising (``str.encode``, and protobuf for names, bodies and
    descriptions) or, for attributes, the SDK's encoder skipping one, which
    :class:`_SkippedAttribute` notices. When cleaning changes nothing, the error was
    something else: it is raised again (or the SDK's own result returned).

    Args:
        encode: Returns the encoded batch.
        batch: Spans, log records or ``MetricsData``.
        clean: one of :mod:`otel._internal.clean_batches`' ``clean_*`` functions.
        what: Names the items in the warning (``spans``...).
        raises: ``encode`` raises for every bad text (our wire encoder, which checks
            what it hands to the SDK's encoder): nothing skipped needs watching.
    """
    if not raises and (_SDK_ENCODER.disabled or not _SDK_ENCODER.isEnabledFor(logging.ERROR)):
        # Logging for the SDK's encoder is off, so a skipped attribute would go
        # unnoticed: clean before encoding (a copy only where there is bad text).
        batch, changed = clean(batch)
        if changed:
            report_cleaned(what, changed)
        return encode(batch)
    _local.active, _local.skipped = True, False
    error: ValueError | None = None
    try:
        out = encode(batch)
        if not _local.skipped:
            return out
    except ValueError as exc:
        error = exc
    finally:
        _local.active = False
    cleaned, changed = clean(batch)
    if not changed:
        if error is not None:
            raise error
        return out
    report_cleaned(what, changed)
    return encode(cleaned)
