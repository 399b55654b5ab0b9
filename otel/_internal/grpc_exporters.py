"""The OTLP/gRPC exporters, delivering batches that hold text UTF-8 cannot encode.

The SDK builds the request in ``_translate_data``; when a lone surrogate makes that
raise, the batch is cleaned (:mod:`otel._internal.clean_batches`) and built again. A normal batch
pays one ``try``. Kept apart from :mod:`otel._internal.exporters` so that gRPC is only
imported by services that export over gRPC.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.trace import ReadableSpan

from otel._internal.clean_batches import clean_logs, clean_metrics, clean_spans
from otel._internal.encode_retry import encode_or_clean


class GrpcSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` (gRPC) that cleans a batch its encoder refuses."""

    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        return encode_or_clean(super()._translate_data, data, clean_spans, "spans")


class GrpcLogExporter(OTLPLogExporter):
    """``OTLPLogExporter`` (gRPC) that cleans a batch its encoder refuses."""

    def _translate_data(self, data: Sequence[ReadableLogRecord]) -> ExportLogsServiceRequest:
        return encode_or_clean(super()._translate_data, data, clean_logs, "log records")


class GrpcMetricExporter(OTLPMetricExporter):
    """``OTLPMetricExporter`` (gRPC) that cleans a batch its encoder refuses."""

    def _translate_data(self, data: MetricsData) -> ExportMetricsServiceRequest:
        return encode_or_clean(super()._translate_data, data, clean_metrics, "metric points")
