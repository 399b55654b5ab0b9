"""Exporters and readers for each signal, chosen from :class:`Settings`.

The OTLP exporters read their own ``OTEL_EXPORTER_OTLP_*`` variables (headers,
compression, certificates); we pass only what Settings validated or had to correct.
``TRADING_OTEL_LEAN_ENCODER=false`` makes the OTLP/HTTP ones the SDK's stock ``export``
(batches still cleaned of text UTF-8 cannot hold; see :mod:`otel._internal.lean_exporter`).
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    LogRecordExporter,
)
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from otel._internal.batching import LogBatcher, SpanBatcher
from otel._internal.otlp_settings import SignalExport
from otel._internal.settings import Settings

_log = logging.getLogger("otel.config")

#: Cumulative for every instrument kind: Prometheus (and our own pull endpoint) need it,
#: and it survives a lost export without gaps.
CUMULATIVE: dict[type, AggregationTemporality] = {
    kind: AggregationTemporality.CUMULATIVE
    for kind in (
        Counter,
        UpDownCounter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    )
}


def _otlp_kwargs(export: SignalExport) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if export.endpoint is not None:
        kwargs["endpoint"] = export.endpoint
    if export.timeout_s is not None:
        kwargs["timeout"] = export.timeout_s
    return kwargs


def span_exporter(name: str, settings: Settings) -> SpanExporter:
    """The span exporter called ``name`` in OTEL_TRACES_EXPORTER."""
    if name == "console":
        return ConsoleSpanExporter()
    export = settings.otlp["traces"]
    if export.protocol == "grpc":
        from otel._internal.grpc_exporters import GrpcSpanExporter

        return GrpcSpanExporter(**_otlp_kwargs(export))
    from otel._internal.lean_exporter import LeanHttpSpanExporter

    return LeanHttpSpanExporter(stock=not settings.lean_encoder, **_otlp_kwargs(export))


def span_processors(settings: Settings) -> list[BatchSpanProcessor]:
    """One bounded batch processor per configured span exporter (a full queue costs a count)."""
    return [
        SpanBatcher(
            span_exporter(name, settings),
            max_queue_size=settings.bsp_max_queue_size,
            schedule_delay_millis=settings.bsp_schedule_delay_ms,
            max_export_batch_size=min(
                settings.bsp_max_export_batch_size, settings.bsp_max_queue_size
            ),
            export_timeout_millis=settings.bsp_export_timeout_ms,
        )
        for name in settings.traces_exporters
    ]


def metric_exporter(name: str, settings: Settings) -> MetricExporter:
    """The push exporter called ``name`` in OTEL_METRICS_EXPORTER."""
    if name == "console":
        return ConsoleMetricExporter(preferred_temporality=CUMULATIVE)
    export = settings.otlp["metrics"]
    kwargs = _otlp_kwargs(export)
    if export.protocol == "grpc":
        from otel._internal.grpc_exporters import GrpcMetricExporter

        return GrpcMetricExporter(preferred_temporality=CUMULATIVE, **kwargs)
    from otel._internal.lean_exporter import HttpMetricExporter

    return HttpMetricExporter(
        preferred_temporality=CUMULATIVE, stock=not settings.lean_encoder, **kwargs
    )


def metric_readers(settings: Settings) -> list[MetricReader]:
    """A reader per OTEL_METRICS_EXPORTER entry; ``prometheus`` is our pull endpoint."""
    readers: list[MetricReader] = []
    for name in settings.metrics_exporters:
        if name == "prometheus":
            from otel._internal.pull_endpoint import PrometheusEndpoint

            endpoint = PrometheusEndpoint(settings.prometheus_host, settings.prometheus_port)
            try:
                endpoint.start()
            except OSError as exc:
                # A taken port must not stop the service; the other readers still work.
                _log.warning(
                    "cannot serve Prometheus metrics on %s:%d (%s); "
                    "set OTEL_EXPORTER_PROMETHEUS_PORT to a free port",
                    settings.prometheus_host,
                    settings.prometheus_port,
                    exc,
                )
                continue
            readers.append(endpoint)
            continue
        readers.append(
            PeriodicExportingMetricReader(
                metric_exporter(name, settings),
                export_interval_millis=settings.metric_export_interval_ms,
                export_timeout_millis=settings.metric_export_timeout_ms,
            )
        )
    return readers


def log_exporter(name: str, settings: Settings) -> LogRecordExporter:
    """The log exporter called ``name`` in OTEL_LOGS_EXPORTER."""
    if name == "console":
        return ConsoleLogRecordExporter()
    export = settings.otlp["logs"]
    if export.protocol == "grpc":
        from otel._internal.grpc_exporters import GrpcLogExporter

        return GrpcLogExporter(**_otlp_kwargs(export))
    from otel._internal.lean_exporter import LeanHttpLogExporter

    return LeanHttpLogExporter(stock=not settings.lean_encoder, **_otlp_kwargs(export))


def log_processors(settings: Settings) -> list[BatchLogRecordProcessor]:
    """One bounded batch processor per configured log exporter (a full queue costs a count)."""
    return [
        LogBatcher(
            log_exporter(name, settings),
            max_queue_size=settings.blrp_max_queue_size,
            schedule_delay_millis=settings.blrp_schedule_delay_ms,
            max_export_batch_size=min(
                settings.blrp_max_export_batch_size, settings.blrp_max_queue_size
            ),
        )
        for name in settings.logs_exporters
    ]
