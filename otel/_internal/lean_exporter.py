"""The OTLP/HTTP span exporter with the lean encoder of :mod:`otel._internal.otlp_wire`.

Everything but the encoding is the SDK exporter's own: its HTTP client (endpoint,
headers, compression, certificates, retries, timeout from the ``OTEL_EXPORTER_OTLP_*``
variables), its size limit and its self-metrics. If the SDK's shape is not the one we
know (another version), or the lean encoder fails on a batch, the batch goes through
the SDK's ``export`` unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from otel._internal.otlp_wire import SpanEncoder

_log = logging.getLogger("otel.exporters")


class LeanHttpSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` (HTTP/protobuf) that serialises batches ~4x cheaper."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lean = SpanEncoder()
        # Private SDK parts we reuse; absent on another SDK version -> stock export.
        self._lean_ok = all(
            hasattr(self, name) for name in ("_client", "_metrics", "_max_request_size")
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode ``spans`` with the lean encoder and send them with the SDK's client."""
        if not self._lean_ok or getattr(self, "_shutdown", False):
            return super().export(spans)
        try:
            data = self._lean.encode(spans)
        except Exception:  # an attribute shape we did not foresee: the SDK knows best
            _log.debug("lean span encoding failed; using the SDK encoder", exc_info=True)
            return super().export(spans)
        if len(data) > self._max_request_size:
            return super().export(spans)  # the SDK logs and reports the oversized batch
        with self._metrics.export_operation(len(spans)) as result:
            sent = self._client.export(data)
            if not sent.success:
                result.error = sent.error
                status = getattr(sent, "status_code", None)
                if status is not None:
                    result.error_attrs = {"http.response.status_code": status}
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
