"""A lean OTLP/protobuf span and log encoder for the HTTP exporter's background thread.

Why: the stock encoder builds a protobuf object per span, per attribute and per value
(~55 us per server span here), in the export thread, which holds the GIL against the
requests. Most attributes of a service's spans repeat (method, scheme, host, route,
status), so this encoder writes the wire format directly and keeps the encoded bytes of
each repeated scalar ``key=value`` pair. Resources and scopes are encoded once per batch
with the SDK's own encoder; anything unusual (events, links, list or bytes values, ints
outside int64) goes through the SDK's encoder too, so the output is the same message:
``tests/unit/test_lib_otlp_wire.py`` parses both and compares them.

Text UTF-8 cannot encode (a lone surrogate) makes ``str.encode`` raise, and
:func:`~otel._internal.text.require_clean` raise for what goes to the SDK's encoder
(which would silently leave a bad attribute out); the batch is then cleaned (copies,
U+FFFD per bad code point) and encoded again. A normal batch pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from struct import Struct
from typing import Any

from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_instrumentation_scope,
    _encode_key_value,
    _encode_resource,
    _encode_value,
)
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import (
    _encode_events,
    _encode_links,
)
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, SpanContext, SpanKind, Status

from otel._internal.clean_batches import clean_logs, clean_spans
from otel._internal.encode_retry import encode_or_clean
from otel._internal.lean_trace import LeanSpan
from otel._internal.text import require_clean

_FIXED64 = Struct("<Q")
_FIXED32 = Struct("<I")
_DOUBLE = Struct("<d")
_KIND = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
#: SpanFlags: the parent's is_remote is known (0x100), and it is remote (0x200).
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200
_FLAGS = {
    f: b"\x85\x01" + Struct("<I").pack(f) for f in (_HAS_IS_REMOTE, _HAS_IS_REMOTE | _IS_REMOTE)
}
_INT64 = (-(1 << 63), (1 << 63) - 1)
_CACHE_MAX = 4096
_SMALL = [bytes((i,)) for i in range(128)]


def _varint(n: int) -> bytes:
    if 0 <= n < 128:
        return _SMALL[n]
    if n < 0:
        n += 1 << 64  # int64 on the wire: two's complement, ten bytes
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2); ``tag`` is the pre-shifted key byte(s)."""
    return _varint(tag) + _varint(len(payload)) + payload


def _any_value(value: Any) -> bytes | None:
    # Same type order as the SDK's encoder: bool before int (bool is an int).
    kind = type(value)
    if kind is bool:
        return b"\x10" + (b"\x01" if value else b"\x00")
    if kind is str:
        return _field(0x0A, value.encode("utf-8"))
    if kind is int:
        if not _INT64[0] <= value <= _INT64[1]:
            return None
        return b"\x18" + _varint(value)
    if kind is float:
        return b"\x21" + _DOUBLE.pack(value)
    return None


class SpanEncoder:
    """Encodes span (and log record) batches as serialized OTLP export requests."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, type, Any, int], bytes] = {}
        self._names: dict[tuple[str, SpanKind], bytes] = {}

    def _key_value(self, key: str, value: Any, tag: int = 0x4A) -> bytes:
        """One attribute as a complete ``attributes`` field (``tag``: 9 spans, 6 logs)."""
        kind = type(value)
        cacheable = kind is str or kind is bool or kind is int  # floats: -0.0 == 0.0
        if cacheable:
            hit = self._pairs.get((key, kind, value, tag))
            if hit is not None:
                return hit
        encoded = _any_value(value)
        if encoded is None:
            kv = _encode_key_value(key, value).SerializeToString()
        else:
            kv = _field(0x0A, key.encode("utf-8")) + _field(0x12, encoded)
        kv = _field(tag, kv)
        if cacheable:
            if len(self._pairs) >= _CACHE_MAX:
                self._pairs.clear()  # attribute values are unbounded in general
            self._pairs[(key, kind, value, tag)] = kv
        return kv

    def _span(self, span: ReadableSpan) -> bytes:
        ctx = span.get_span_context()
        assert ctx is not None
        return self._span_fields(
            ctx, span.parent, span.name, span.kind, span.start_time, span.end_time,
            span.attributes, span.dropped_attributes, span.events, span.dropped_events,
            span.links, span.dropped_links, span.status,
        )  # fmt: skip

    def _lean_span(self, span: LeanSpan) -> bytes:
        # The same fields, read from the slots: no property calls, views or copies.
        return self._span_fields(
            span._context, span._parent, span._name, span._kind, span._start_time,
            span._end_time, span._attributes, span._dropped_attributes, span._events,
            span._dropped_events, span._links, span._dropped_links, span._status,
        )  # fmt: skip

    def _name_kind(self, name: str, kind: SpanKind) -> bytes:
        hit = self._names.get((name, kind))
        if hit is None:
            hit = (
                (_field(0x2A, name.encode("utf-8")) if name else b"")
                + b"\x30"
                + _varint(_KIND[kind])
            )
            if len(self._names) >= _CACHE_MAX:
                self._names.clear()
            self._names[(name, kind)] = hit
        return hit

    def _span_fields(
        self,
        ctx: SpanContext,
        parent: SpanContext | None,
        name: str,
        kind: SpanKind,
        start_time: int | None,
        end_time: int | None,
        attributes: Mapping[str, Any] | None,
        dropped_attributes: int,
        events: Sequence[Event],
        dropped_events: int,
        links: Sequence[Link],
        dropped_links: int,
        status: Status,
    ) -> bytes:
        parts = [
            b"\x0a\x10" + ctx.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + ctx.span_id.to_bytes(8, "big"),
        ]
        if ctx.trace_state:
            parts.append(
                _field(0x1A, ",".join(f"{k}={v}" for k, v in ctx.trace_state.items()).encode())
            )
        flags = _HAS_IS_REMOTE
        if parent is not None:
            parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
            if parent.is_remote:
                flags |= _IS_REMOTE
        parts.append(self._name_kind(name, kind))
        if start_time:
            parts.append(b"\x39" + _FIXED64.pack(start_time))
        if end_time:
            parts.append(b"\x41" + _FIXED64.pack(end_time))
        if attributes:
            key_value = self._key_value
            parts += [key_value(k, v) for k, v in attributes.items()]
        if dropped_attributes:
            parts.append(b"\x50" + _varint(dropped_attributes))
        if events:  # rare on request spans: the SDK's encoder is fine here
            for e in events:
                require_clean(e.attributes, e.name)
            parts += [_field(0x5A, e.SerializeToString()) for e in _encode_events(events) or ()]
        if dropped_events:
            parts.append(b"\x60" + _varint(dropped_events))
        if links:
            for link in links:
                require_clean(link.attributes)
            parts += [_field(0x6A, x.SerializeToString()) for x in _encode_links(links) or ()]
        if dropped_links:
            parts.append(b"\x70" + _varint(dropped_links))
        if status.description or status.status_code.value:
            body = b""
            if status.description:
                body += _field(0x12, status.description.encode("utf-8"))
            if status.status_code.value:
                body += b"\x18" + _varint(status.status_code.value)
            parts.append(_field(0x7A, body))
        else:
            parts.append(b"\x7a\x00")  # an empty status, as the SDK writes it
        parts.append(_FLAGS[flags])  # field 16, fixed32
        return b"".join(parts)

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The serialized ``ExportTraceServiceRequest`` for ``spans``."""
        return encode_or_clean(self._encode_spans, spans, clean_spans, "spans", raises=True)

    def encode_logs(self, records: Sequence[ReadableLogRecord]) -> bytes:
        """The serialized ``ExportLogsServiceRequest`` for ``records``."""
        return encode_or_clean(self._encode_logs, records, clean_logs, "log records", raises=True)

    def _encode_spans(self, spans: Sequence[ReadableSpan]) -> bytes:
        lean, span = self._lean_span, self._span
        return self._group(spans, lambda s: lean(s) if type(s) is LeanSpan else span(s))

    def _encode_logs(self, records: Sequence[ReadableLogRecord]) -> bytes:
        return self._group(records, self._log)

    def _log(self, readable: ReadableLogRecord) -> bytes:
        rec = readable.log_record
        parts = []
        if rec.timestamp:
            parts.append(b"\x09" + _FIXED64.pack(rec.timestamp))
        severity = getattr(rec.severity_number, "value", None)
        if severity:
            parts.append(b"\x10" + _varint(severity))
        if rec.severity_text:
            parts.append(_field(0x1A, rec.severity_text.encode("utf-8")))
        body = rec.body
        encoded = _any_value(body)
        if encoded is None:  # None, bytes, lists, maps: the SDK's value encoder
            encoded = _encode_value(body).SerializeToString()
        parts.append(_field(0x2A, encoded))
        attributes = rec.attributes
        if attributes:
            key_value = self._key_value
            parts += [key_value(k, v, 0x32) for k, v in attributes.items()]
        if readable.dropped_attributes:
            parts.append(b"\x38" + _varint(readable.dropped_attributes))
        flags = int(rec.trace_flags or 0)
        if flags:
            parts.append(b"\x45" + _FIXED32.pack(flags))
        if rec.trace_id:
            parts.append(b"\x4a\x10" + rec.trace_id.to_bytes(16, "big"))
        if rec.span_id:
            parts.append(b"\x52\x08" + rec.span_id.to_bytes(8, "big"))
        if rec.observed_timestamp:
            parts.append(b"\x59" + _FIXED64.pack(rec.observed_timestamp))
        if rec.event_name:
            parts.append(_field(0x62, rec.event_name.encode("utf-8")))
        return b"".join(parts)

    def _group(self, items: Sequence[Any], encode_one: Callable[[Any], bytes]) -> bytes:
        # ResourceSpans/ResourceLogs and ScopeSpans/ScopeLogs share field numbers:
        # 1 resource/scope, 2 the repeated items, 3 schema_url.
        # Resource hashes by value (a JSON dump per call): look each one up once.
        by_id: dict[int, dict[Any, list[bytes]]] = {}
        groups: dict[Any, dict[Any, list[bytes]]] = {}
        for item in items:
            resource = item.resource
            by_scope = by_id.get(id(resource))
            if by_scope is None:
                by_scope = by_id[id(resource)] = groups.setdefault(resource, {})
            by_scope.setdefault(item.instrumentation_scope or None, []).append(
                _field(0x12, encode_one(item))
            )
        out = []
        for resource, by_scope in groups.items():
            require_clean(resource.attributes)
            body = [_field(0x0A, _encode_resource(resource).SerializeToString())]
            for scope, encoded in by_scope.items():
                if scope is not None:
                    require_clean(scope.attributes, scope.name, scope.version)
                scope_body = [
                    _field(0x0A, _encode_instrumentation_scope(scope).SerializeToString()),
                    *encoded,
                ]
                if scope is not None and scope.schema_url:
                    scope_body.append(_field(0x1A, scope.schema_url.encode("utf-8")))
                body.append(_field(0x12, b"".join(scope_body)))
            if resource.schema_url:
                body.append(_field(0x1A, resource.schema_url.encode("utf-8")))
            out.append(_field(0x0A, b"".join(body)))
        return b"".join(out)
