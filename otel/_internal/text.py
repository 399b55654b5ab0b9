"""Text that cannot be encoded as UTF-8 (lone surrogates) becomes U+FFFD, on copies.

Python strings may hold lone surrogates (``surrogateescape`` decoding of a bad byte
makes one), which UTF-8 cannot encode. Protobuf, our wire encoder and the Prometheus
text format all refuse them: the SDK's exporters drop the whole batch, or, for an
attribute, its encoder leaves the attribute out and logs the raw key.

Exporters encode as usual. Only when that fails (:func:`encode_or_clean`) is the batch
copied with each bad code point replaced by one U+FFFD, and encoded again, so a normal
batch costs nothing extra. Items without bad text are passed on as they are; live spans
and records, which other processors may hold, are never changed.
"""

from __future__ import annotations

import codecs
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

_log = logging.getLogger("otel.exporters")
T = TypeVar("T")
R = TypeVar("R")

#: An error handler for ``str.encode``: one U+FFFD per code point UTF-8 cannot encode.
FFFD = "trading_otel.fffd"


def _fffd(error: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    # Bytes, not "\ufffd": the UTF-8 encoder takes only ASCII text from a handler.
    return "\ufffd".encode() * (error.end - error.start), error.end


codecs.register_error(FFFD, _fffd)
_PLAIN = frozenset({int, float, bool, bytes, type(None)})


def clean_text(text: str) -> str:
    """``text`` with each code point UTF-8 cannot encode replaced by U+FFFD.

    Returns ``text`` itself (the same object) when there is nothing to replace.
    """
    if text.isascii():  # O(1): CPython keeps a flag
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", FFFD).decode("utf-8")
    return text


def clean_value(value: Any) -> Any:
    """An attribute value or log body with its text cleaned; ``value`` itself if clean."""
    kind = type(value)
    if kind is str:
        return clean_text(value)
    if kind is list or kind is tuple:
        items = [clean_value(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return kind(items)
    if isinstance(value, Mapping):
        cleaned = clean_mapping(value)
        return value if cleaned is value else dict(cleaned)
    return value


def clean_mapping(attrs: Mapping[str, Any], dropped: int = 0) -> Mapping[str, Any]:
    """Attributes with keys and values cleaned: ``attrs`` itself, or a copy.

    A copy keeps ``dropped``, the count of attributes the SDK dropped. Two keys that
    differ only in bad code points become one key (the last value wins).
    """
    for key, value in attrs.items():  # the usual case, inline: nothing but ASCII
        if type(key) is not str or not key.isascii():
            break
        kind = type(value)
        if kind is str:
            if not value.isascii():
                break
        elif kind not in _PLAIN:
            break
    else:
        return attrs
    out: dict[str, Any] | None = None
    for i, (key, value) in enumerate(attrs.items()):
        k = clean_text(key) if type(key) is str else key
        v = clean_value(value)
        if out is None and (k is not key or v is not value):
            out = dict(list(attrs.items())[:i])
        if out is not None:
            out[k] = v
    if out is None:
        return attrs
    if not dropped:
        return out
    bounded = BoundedAttributes(attributes=out, immutable=True)
    bounded.dropped = dropped
    return bounded


def clean_attrs(attrs: Mapping[str, Any] | None, dropped: int = 0) -> Mapping[str, Any] | None:
    """:func:`clean_mapping` that passes None and empty mappings through."""
    return clean_mapping(attrs, dropped) if attrs else attrs


def require_clean(attrs: Mapping[str, Any] | None, *texts: str | None) -> None:
    """Raise ``ValueError`` if ``attrs`` or ``texts`` hold text UTF-8 cannot encode.

    For callers of the SDK's encoder, which would leave such an attribute out silently.
    """
    if (attrs and clean_mapping(attrs) is not attrs) or any(
        t and clean_text(t) is not t for t in texts
    ):
        raise ValueError("text that is not valid UTF-8")


class Cleaner:
    """Cleans one batch: resources and scopes shared by many items are cleaned once."""

    def __init__(self) -> None:
        self.changed = 0  # items copied
        self.shared = False  # a resource, scope or metric description was cleaned
        self._resources: dict[int, Resource] = {}
        self._scopes: dict[int, InstrumentationScope | None] = {}

    def resource(self, resource: Resource) -> Resource:
        hit = self._resources.get(id(resource))
        if hit is None:
            attrs = clean_attrs(resource.attributes)
            if attrs is not resource.attributes:
                hit, self.shared = Resource(attrs or {}, resource.schema_url), True
            else:
                hit = resource
            self._resources[id(resource)] = hit
        return hit

    def scope(self, scope: InstrumentationScope | None) -> InstrumentationScope | None:
        if scope is None:
            return None
        if id(scope) not in self._scopes:
            name, version = clean_text(scope.name), scope.version and clean_text(scope.version)
            attrs = clean_attrs(scope.attributes)
            same = name is scope.name and version is scope.version and attrs is scope.attributes
            self.shared |= not same
            self._scopes[id(scope)] = (
                scope if same else InstrumentationScope(name, version, scope.schema_url, attrs)
            )
        return self._scopes[id(scope)]

    def batch(self, items: Sequence[T], one: Callable[[T], T]) -> list[T]:
        out = [one(item) for item in items]
        self.changed += sum(a is not b for a, b in zip(out, items, strict=True))
        return out


def _bounded(items: list[Any], dropped: int) -> Sequence[Any]:
    if not dropped:
        return items
    out = BoundedList.from_seq(None, items)
    out.dropped = dropped
    return out


def clean_spans(spans: Sequence[Any]) -> tuple[list[Any], int]:
    """Copies of the spans holding bad text (the others as they are), and how many."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Link, Status

    c = Cleaner()

    def event(e: Any) -> Any:
        name = clean_text(e.name)
        attrs = clean_attrs(e.attributes, getattr(e, "dropped_attributes", 0))
        if name is e.name and attrs is e.attributes:
            return e
        return Event(name, attrs, e.timestamp)

    def link(x: Any) -> Any:
        attrs = clean_attrs(x.attributes, getattr(x, "dropped_attributes", 0))
        return x if attrs is x.attributes else Link(x.context, attrs)

    def span(s: Any) -> Any:
        name = clean_text(s.name)
        raw = s.attributes
        attrs = clean_attrs(raw, s.dropped_attributes)
        events = [event(e) for e in s.events]
        links = [link(x) for x in s.links]
        status = s.status
        description = status.description and clean_text(status.description)
        resource, scope = c.resource(s.resource), c.scope(s.instrumentation_scope)
        if (
            name is s.name
            and attrs is raw
            and all(a is b for a, b in zip(events, s.events, strict=True))
            and all(a is b for a, b in zip(links, s.links, strict=True))
            and description is status.description
            and resource is s.resource
            and scope is s.instrumentation_scope
        ):
            return s
        if attrs is raw and s.dropped_attributes:
            attrs = BoundedAttributes(attributes=raw, immutable=True)
            attrs.dropped = s.dropped_attributes
        return ReadableSpan(
            name=name,
            context=s.get_span_context(),
            parent=s.parent,
            resource=resource,
            attributes=attrs,
            events=_bounded(events, s.dropped_events),
            links=_bounded(links, s.dropped_links),
            kind=s.kind,
            status=status
            if description is status.description
            else Status(status.status_code, description),
            start_time=s.start_time,
            end_time=s.end_time,
            instrumentation_scope=scope,
        )

    return c.batch(spans, span), c.changed


def clean_logs(records: Sequence[Any]) -> tuple[list[Any], int]:
    """Copies of the log records holding bad text (the others as they are), and how many."""
    import copy

    c = Cleaner()

    def record(readable: Any) -> Any:
        rec = readable.log_record
        body = clean_value(rec.body)
        attrs = clean_attrs(rec.attributes, readable.dropped_attributes)
        severity = rec.severity_text and clean_text(rec.severity_text)
        event_name = rec.event_name and clean_text(rec.event_name)
        resource = c.resource(readable.resource)
        scope = c.scope(readable.instrumentation_scope)
        if (
            body is rec.body
            and attrs is rec.attributes
            and severity is rec.severity_text
            and event_name is rec.event_name
            and resource is readable.resource
            and scope is readable.instrumentation_scope
        ):
            return readable
        new = copy.copy(rec)
        new.body, new.attributes = body, attrs
        new.severity_text, new.event_name = severity, event_name
        return dataclasses.replace(
            readable, log_record=new, resource=resource, instrumentation_scope=scope
        )

    return c.batch(records, record), c.changed


def clean_metrics(data: Any) -> tuple[Any, int]:
    """A copy of ``MetricsData`` with bad text cleaned, and how many points changed."""
    c = Cleaner()
    replace = dataclasses.replace

    def exemplar(ex: Any) -> Any:
        attrs = clean_attrs(ex.filtered_attributes)
        return ex if attrs is ex.filtered_attributes else replace(ex, filtered_attributes=attrs)

    def point(dp: Any) -> Any:
        attrs = clean_attrs(dp.attributes)
        exemplars = [exemplar(e) for e in dp.exemplars or ()]
        if attrs is dp.attributes and all(
            a is b for a, b in zip(exemplars, dp.exemplars or (), strict=True)
        ):
            return dp
        return replace(dp, attributes=attrs, exemplars=exemplars)

    def metric(m: Any) -> Any:
        points = c.batch(m.data.data_points, point)
        description = m.description and clean_text(m.description)
        unit = m.unit and clean_text(m.unit)
        c.shared |= description is not m.description or unit is not m.unit
        return replace(
            m, description=description, unit=unit, data=replace(m.data, data_points=points)
        )

    def scope_metrics(sm: Any) -> Any:
        return replace(sm, scope=c.scope(sm.scope), metrics=[metric(m) for m in sm.metrics])

    out = replace(
        data,
        resource_metrics=[
            replace(
                rm,
                resource=c.resource(rm.resource),
                scope_metrics=[scope_metrics(sm) for sm in rm.scope_metrics],
            )
            for rm in data.resource_metrics
        ],
    )
    # Text outside the points (resource, scope, description) counts as one change.
    return out, c.changed or int(c.shared)


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
        clean: :func:`clean_spans`, :func:`clean_logs` or :func:`clean_metrics`.
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
