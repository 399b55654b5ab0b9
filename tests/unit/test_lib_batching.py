"""A dead collector: a full batch queue costs a count, not a log record per item."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from opentelemetry.sdk._shared_internal import BatchProcessor

from otel._internal import batching, bootstrap
from otel._internal.batching import LogBatcher, SpanBatcher
from otel._internal.settings import Settings
from tests.fixtures.lib import OFFLINE
from trading_otel_tools.procs import free_port


def _dead(extra: dict[str, str] | None = None) -> bootstrap.Telemetry:
    return bootstrap.build(
        Settings.from_env(
            OFFLINE
            | {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_LOGS_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",  # refused
                "OTEL_BSP_MAX_QUEUE_SIZE": "8",
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4",
                "OTEL_BLRP_MAX_QUEUE_SIZE": "8",
                "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "4",
            }
            | (extra or {})
        )
    )


def _records_built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Messages of every LogRecord the SDK's batch processors build from now on."""
    sdk = logging.getLogger(BatchProcessor.__module__)
    built: list[str] = []
    make_record = sdk.makeRecord

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        built.append(record.getMessage())
        return record

    monkeypatch.setattr(sdk, "makeRecord", counting)
    return built


def test_the_configured_processors_are_the_gated_ones() -> None:
    telemetry = _dead()
    try:
        span_processors = telemetry.tracer_provider._active_span_processor._span_processors
        assert any(isinstance(p, SpanBatcher) and p.gate.usable for p in span_processors)
        assert telemetry.logger_provider is not None
        logs = telemetry.logger_provider._multi_log_record_processor._log_record_processors
        assert any(isinstance(p, LogBatcher) and p.gate.usable for p in logs)
    finally:
        telemetry.shutdown(2)


def test_a_full_queue_counts_drops_and_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry = _dead()
    built = _records_built(monkeypatch)
    tracer = telemetry.tracer_provider.get_tracer("t")
    (batcher,) = [p for p in telemetry.tracer_provider._active_span_processor._span_processors
                  if isinstance(p, SpanBatcher)]  # fmt: skip
    try:
        with caplog.at_level(logging.WARNING, "otel.exporters"):
            for _ in range(500):  # the exporter is stuck retrying a refused port
                with tracer.start_as_current_span("s"):
                    pass
        assert batcher.gate.dropped >= 400
        assert not [m for m in built if "Queue full" in m]  # no record built per drop
        warnings = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert len(warnings) == 1 and "OTEL_BSP_MAX_QUEUE_SIZE=8" in warnings[0]
    finally:
        telemetry.shutdown(2)


def test_the_warning_repeats_with_the_count_after_its_interval(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(batching, "WARN_EVERY_S", 0.2)
    telemetry = _dead()
    logger = telemetry.logger_provider
    assert logger is not None
    log = logger.get_logger("t")
    try:
        with caplog.at_level(logging.WARNING, "otel.exporters"):
            for _ in range(3):
                for _ in range(50):
                    log.emit(body="order placed")
                time.sleep(0.25)
        warnings = [
            r.getMessage() for r in caplog.records if "log records dropped" in r.getMessage()
        ]
        assert len(warnings) >= 2
        assert sum(int(w.split()[0]) for w in warnings) > 0
    finally:
        telemetry.shutdown(2)


def test_an_unknown_queue_shape_leaves_the_sdk_processor_as_it_is() -> None:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    batcher = SpanBatcher(ConsoleSpanExporter())
    try:
        assert batcher.gate.usable  # the SDK 1.45 shape
        assert not batching.DropGate(object(), "spans", "OTEL_BSP_MAX_QUEUE_SIZE").usable
    finally:
        batcher.shutdown()  # type: ignore[no-untyped-call]
