"""Decode OTLP JSON (file exporter lines, Tempo responses) into :mod:`model` objects.

OTLP JSON is written in slightly different dialects: the collector's file exporter
writes hex ids and camelCase keys; Tempo may answer with base64 ids (protobuf JSON
mapping of ``bytes``), with ``batches`` instead of ``resourceSpans`` and with the
pre-1.0 ``instrumentationLibrarySpans`` key. All of them are accepted here.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from trading_otel_tools.investigate.model import SPAN_KINDS, LogEntry, Span

_HEX = re.compile(r"^[0-9a-fA-F]*$")
_KIND_NAMES = {f"SPAN_KIND_{v}": v for v in SPAN_KINDS.values()}


class OtlpFormatError(ValueError):
    """A payload is not OTLP JSON in any shape we know."""


def normalize_id(value: object, size: int) -> str:
    """Return a trace (``size`` 16) or span (``size`` 8) id as lowercase hex.

    Hex ids are kept; base64 ids (Tempo, protobuf JSON) are decoded. Empty means absent.
    """
    if not isinstance(value, str) or not value:
        return ""
    if len(value) == size * 2 and _HEX.match(value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == size:
        return raw.hex()
    if _HEX.match(value) and len(value) <= size * 2:
        # Some writers drop leading zeros; pad back to the full width.
        return value.lower().rjust(size * 2, "0")
    raise OtlpFormatError(f"cannot decode id {value!r} as {size} bytes of hex or base64")


def any_value(value: Mapping[str, Any] | None) -> Any:
    """Unwrap an OTLP ``AnyValue`` (``{"stringValue": ...}`` and friends)."""
    if not value:
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])  # int64 travels as a JSON string
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [any_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return attributes(value["kvlistValue"].get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def attributes(items: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """Turn an OTLP ``KeyValue`` list into a dict."""
    return {str(kv.get("key")): any_value(kv.get("value")) for kv in items or ()}


def _kind(value: object) -> str:
    if isinstance(value, int):
        return SPAN_KINDS.get(value, "UNSPECIFIED")
    if isinstance(value, str):
        return _KIND_NAMES.get(
            value, value.upper() if value.upper() in _KIND_NAMES.values() else "UNSPECIFIED"
        )
    return "UNSPECIFIED"


def _status_code(status: Mapping[str, Any] | None) -> int:
    code = (status or {}).get("code", 0)
    if isinstance(code, str):
        return {"STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}.get(code, 0)
    return int(code)


def resource_spans(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Find the ``ResourceSpans`` list in any of the shapes Tempo and files use."""
    if "trace" in payload and isinstance(payload["trace"], Mapping):
        payload = payload["trace"]
    for key in ("resourceSpans", "batches"):
        if key in payload:
            value = payload[key]
            if not isinstance(value, list):
                raise OtlpFormatError(f"'{key}' is not a list")
            return value
    raise OtlpFormatError(
        "no 'resourceSpans', 'batches' or 'trace.resourceSpans' in the payload "
        f"(keys: {sorted(payload)[:8]})"
    )


def iter_spans(payload: Mapping[str, Any]) -> Iterator[Span]:
    """Yield every span in one OTLP JSON traces payload."""
    for rs in resource_spans(payload):
        res = attributes((rs.get("resource") or {}).get("attributes"))
        service = str(res.get("service.name", "unknown_service"))
        scopes = rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []
        for scope in scopes:
            for raw in scope.get("spans", []):
                yield Span(
                    trace_id=normalize_id(raw.get("traceId"), 16),
                    span_id=normalize_id(raw.get("spanId"), 8),
                    parent_span_id=normalize_id(raw.get("parentSpanId"), 8),
                    name=str(raw.get("name", "")),
                    kind=_kind(raw.get("kind", 0)),
                    start_ns=int(raw.get("startTimeUnixNano", 0)),
                    end_ns=int(raw.get("endTimeUnixNano", 0)),
                    service=service,
                    attributes=attributes(raw.get("attributes")),
                    status_code=_status_code(raw.get("status")),
                )


def iter_logs(payload: Mapping[str, Any]) -> Iterator[LogEntry]:
    """Yield every log record in one OTLP JSON logs payload."""
    groups = payload.get("resourceLogs")
    if not isinstance(groups, list):
        raise OtlpFormatError("no 'resourceLogs' list in the payload")
    for rl in groups:
        res = attributes((rl.get("resource") or {}).get("attributes"))
        service = str(res.get("service.name", "unknown_service"))
        scopes = rl.get("scopeLogs") or rl.get("instrumentationLibraryLogs") or []
        for scope in scopes:
            for raw in scope.get("logRecords", []):
                body = any_value(raw.get("body"))
                yield LogEntry(
                    time_ns=int(raw.get("timeUnixNano") or raw.get("observedTimeUnixNano") or 0),
                    severity_text=str(raw.get("severityText", "")),
                    severity_number=_severity_number(raw.get("severityNumber", 0)),
                    body="" if body is None else str(body),
                    service=service,
                    trace_id=normalize_id(raw.get("traceId"), 16),
                    span_id=normalize_id(raw.get("spanId"), 8),
                    attributes=attributes(raw.get("attributes")),
                )


def _severity_number(value: object) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        names = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
        for i, name in enumerate(names):
            if value.startswith(f"SEVERITY_NUMBER_{name}"):
                suffix = value.removeprefix(f"SEVERITY_NUMBER_{name}")
                return i * 4 + 1 + (int(suffix) - 1 if suffix.isdigit() else 0)
    return 0
