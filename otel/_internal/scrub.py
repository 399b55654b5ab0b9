"""Mask secrets in exception text and log messages before any exporter sees them.

The SDK's ``record_exception`` stores ``str(exc)`` and the whole traceback on a span
event, ``start_as_current_span`` copies ``"Type: exc"`` into the span status, and the
logging handler ships ``record.getMessage()`` and the exception text. A message holding
``token=...`` would reach every backend, so these processors mask the values of sensitive
pairs (:func:`~otel._internal.sanitize.redact_pairs`). Each must run first in its chain:
the batch processors hand the span or record to their export thread in ``on_end`` /
``on_emit``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.trace import Status, StatusCode

from otel._internal.sanitize import redact_pairs

_log = logging.getLogger("otel.scrub")

#: Log attributes holding exception text, as the logging handler writes them.
LOG_EXCEPTION_KEYS = ("exception.message", "exception.stacktrace")

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(what: str, message: str) -> None:
    with _warned_lock:
        if what in _warned:
            return
        _warned.add(what)
    _log.warning(message, exc_info=True)


def _sdk_shape_ok() -> bool:
    """True when spans keep their events and status where :class:`SpanScrubber` rewrites them.

    ``ReadableSpan`` is read-only by API; the scrubber writes ``_status`` on the span
    handed to ``on_end`` and ``_attributes`` on its events, so check both once on a
    probe, the way the SDK itself builds them.
    """
    try:
        event = Event("probe", BoundedAttributes(attributes={"k": "v"}))
        span = ReadableSpan("probe", events=(event,), status=Status(StatusCode.ERROR, "d"))
        if span._status._description != "d" or span._events[0]._attributes != {"k": "v"}:
            return False
        span._status = Status(StatusCode.ERROR, "masked")
        event._attributes = {"k": "masked"}
        return span.status.description == "masked" and span.events[0].attributes == {"k": "masked"}
    except Exception:
        return False


def span_scrubber() -> SpanProcessor:
    """A :class:`SpanScrubber`, or a no-op processor (and one warning) on an unknown SDK."""
    if _sdk_shape_ok():
        return SpanScrubber()
    _log.warning(
        "this opentelemetry-sdk keeps span events/status differently: exception messages "
        "on spans are not masked in the process (the collector still masks them)"
    )
    return SpanProcessor()


class SpanScrubber(SpanProcessor):
    """Masks secrets in the status description and the string attributes of span events.

    Create it with :func:`span_scrubber`, which checks the SDK's private layout first.
    """

    def on_end(self, span: ReadableSpan) -> None:
        # The order hot path: no events, no description, nothing else to read.
        if not span._events and span._status._description is None:
            return
        try:
            _scrub_span(span)
        except Exception:
            _warn_once("span", "masking a span's exception text failed; exported as is")


def _scrub_span(span: ReadableSpan) -> None:
    status = span._status
    description = status._description
    if description:
        masked = redact_pairs(description)
        if masked != description:
            # A new Status: the old one may be shared (set_status keeps the caller's).
            span._status = Status(status.status_code, masked)
    for event in span._events:
        attrs = event._attributes
        if not attrs:
            continue
        changed: dict[str, Any] | None = None
        for key, value in attrs.items():
            if isinstance(value, str):
                masked = redact_pairs(value)
                if masked != value:
                    changed = dict(attrs) if changed is None else changed
                    changed[key] = masked
        if changed is not None:
            event._attributes = _like(attrs, changed)


def _like(old: Mapping[str, Any], new: dict[str, Any]) -> Mapping[str, Any]:
    # Keep the event's limits and its dropped count (exported as dropped_attributes_count).
    if not isinstance(old, BoundedAttributes):
        return new
    out = BoundedAttributes(
        maxlen=old.maxlen, attributes=new, immutable=True, max_value_len=old.max_value_len
    )
    out.dropped = old.dropped
    return out


class LogScrubber(LogRecordProcessor):
    """Masks secrets in a log record's body and its exception message and stacktrace."""

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        try:
            _scrub_log(log_record)
        except Exception:
            _warn_once("log", "masking a log record failed; exported as is")

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _scrub_log(log_record: ReadWriteLogRecord) -> None:
    record = log_record.log_record
    body = record.body
    if isinstance(body, str):
        masked = redact_pairs(body)
        if masked != body:
            record.body = masked
    elif isinstance(body, Mapping):
        # A structured body: its top-level strings (nested values are left alone).
        new = {k: redact_pairs(v) if isinstance(v, str) else v for k, v in body.items()}
        if new != body:
            record.body = new
    attrs = record.attributes
    if not attrs:
        return
    # BoundedAttributes.get misses through a KeyError (~350 ns a key); read its dict.
    view = getattr(attrs, "_dict", None)
    if not isinstance(view, dict):
        view = attrs
    for key in LOG_EXCEPTION_KEYS:
        value = view.get(key)
        if isinstance(value, str):
            masked = redact_pairs(value)
            if masked != value:
                try:
                    attrs[key] = masked  # type: ignore[index]
                except TypeError:  # an immutable mapping: replace it
                    attrs = record.attributes = {**attrs, key: masked}
