"""One bad string costs only itself, on every export path.

Each batch is built twice, deterministically: with a lone surrogate (``X``) in one place,
and with U+FFFD there instead. Whatever path encodes the first must give exactly the
SDK's encoding of the second: U+FFFD in place and every other item intact.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanKind, StatusCode

from otel._internal import clean_batches, encode_retry, text
from otel._internal.lean_exporter import _stock_logs, _stock_spans
from otel._internal.otlp_wire import SpanEncoder
from tests.fixtures.lib import OtlpReceiver

X = "\ud800"  # a lone surrogate, as surrogateescape decoding of a bad byte makes
R = "\ufffd"
GOOD = 100
T0 = 1_700_000_000_000_000_000


@pytest.fixture(autouse=True)
def _fresh_reports() -> Iterator[None]:
    encode_retry._last_report.clear()
    yield
    encode_retry._last_report.clear()


# --- the text helpers -------------------------------------------------------------------


def test_each_bad_code_point_becomes_one_fffd() -> None:
    assert text.clean_text("a\ud800b\udc00\udfff") == f"a{R}b{R}{R}"
    # A pair held as two code points is still two surrogates to UTF-8.
    assert text.clean_text("\ud83d\ude00") == R + R
    for fine in ("plain", "prix €", "\U0001f600", ""):
        assert text.clean_text(fine) is fine  # nothing to do: the same object


def test_values_are_cleaned_inside_lists_and_maps() -> None:
    value = {"k\udc00": ["a\ud800", 1, ("b", "c\udfff")], "ok": b"\xff"}
    assert text.clean_value(value) == {f"k{R}": [f"a{R}", 1, ("b", f"c{R}")], "ok": b"\xff"}
    clean = {"k": ["a", 1], "n": None}
    assert text.clean_value(clean) is clean


# --- spans --------------------------------------------------------------------------------


class _Ids(IdGenerator):
    def __init__(self) -> None:
        self.n = 0

    def generate_span_id(self) -> int:
        self.n += 1
        return self.n

    def generate_trace_id(self) -> int:
        self.n += 1
        return 0xABC0000 + self.n


SPAN_PLACES = [
    "span name",
    "attribute key",
    "attribute value",
    "list value",
    "event name",
    "event attribute",
    "link attribute",
    "status message",
    "resource attribute",
    "scope name",
    "everywhere",
]


def build_spans(place: str, x: str) -> list[ReadableSpan]:
    """100 server spans and one with ``x`` in ``place``; the same ids and times each call."""

    def at(p: str) -> str:
        return x if place in (p, "everywhere") else ""

    resource = Resource({"service.name": "gw", "team": f"desk{at('resource attribute')}1"})
    provider = TracerProvider(
        resource=resource,
        id_generator=_Ids(),
        span_limits=SpanLimits(max_span_attributes=6),
        shutdown_on_exit=False,
    )
    mem = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(mem))
    tracer = provider.get_tracer("otel.server", "1.0")
    for i in range(GOOD):
        span = tracer.start_span(
            "GET /orders/{id}",
            kind=SpanKind.SERVER,
            start_time=T0 + i,
            attributes={
                "http.request.method": "GET",
                "http.route": "/orders/{id}",
                "http.response.status_code": 200,
                "server.port": 8080,
                "trading.symbol": "AAPL" if i % 2 else "prix €",
            },
        )
        span.end(end_time=T0 + i + 10)
    anchor = tracer.start_span("anchor", start_time=T0)
    anchor.end(end_time=T0 + 1)
    other = provider.get_tracer(f"orders{at('scope name')}")
    bad = other.start_span(
        f"bad {at('span name')} name",
        start_time=T0 + 500,
        attributes={
            f"v{at('attribute key')}": f"x{at('attribute value')}y",
            "list": ["ok", f"a{at('list value')}b"],
            "good": "kept",
            "n": 1,
            "f": 0.5,
            "b": True,
            "dropped": "over the limit of 6",
        },
        links=[Link(anchor.get_span_context(), {f"l{at('link attribute')}": "w"})],
    )
    bad.add_event(f"ev{at('event name')}", {f"e{at('event attribute')}": "f"}, timestamp=T0 + 501)
    bad.set_status(StatusCode.ERROR, f"status {at('status message')}")
    bad.end(end_time=T0 + 600)
    provider.shutdown()
    return list(mem.get_finished_spans())


def _grpc_spans(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    from otel._internal.grpc_exporters import GrpcSpanExporter

    exporter = GrpcSpanExporter(endpoint="127.0.0.1:1", insecure=True)
    try:
        return exporter._translate_data(spans)
    finally:
        exporter.shutdown()


SPAN_PATHS: dict[str, Callable[[list[ReadableSpan]], ExportTraceServiceRequest]] = {
    "lean": lambda s: ExportTraceServiceRequest.FromString(SpanEncoder().encode(s)),
    "sdk encoder": lambda s: ExportTraceServiceRequest.FromString(
        encode_retry.encode_or_clean(_stock_spans, s, clean_batches.clean_spans, "spans")
    ),
    "grpc": _grpc_spans,
}


@pytest.mark.parametrize("path", list(SPAN_PATHS))
@pytest.mark.parametrize("place", SPAN_PLACES)
def test_span_batch_arrives_with_fffd_in_place(path: str, place: str) -> None:
    spans = build_spans(place, X)
    got = SPAN_PATHS[path](spans)
    assert got == encode_spans(build_spans(place, R))
    assert sum(len(ss.spans) for rs in got.resource_spans for ss in rs.scope_spans) == GOOD + 2
    bad = next(s for s in spans if s.name.startswith("bad"))
    assert bad.dropped_attributes == 1  # kept through cleaning (the equality checks it too)
    if place == "span name":
        assert bad.name == f"bad {X} name"  # the live span was not changed


def test_good_batches_are_encoded_once_and_not_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(batch: Any) -> Any:
        raise AssertionError("a good batch was cleaned")

    monkeypatch.setattr(clean_batches, "clean_spans", never)
    monkeypatch.setattr("otel._internal.otlp_wire.clean_spans", never)
    spans = build_spans("none", X)
    assert ExportTraceServiceRequest.FromString(SpanEncoder().encode(spans)) == encode_spans(spans)


def test_cleaning_is_reported_once_per_minute_without_the_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    encoder = SpanEncoder()
    spans = build_spans("everywhere", X)
    with caplog.at_level(logging.DEBUG):
        encoder.encode(spans)
        encoder.encode(spans)
    ours = [r for r in caplog.records if r.name == "otel.exporters"]
    assert len(ours) == 1
    message = ours[0].getMessage()
    assert message.isascii() and "spans holding text that is not valid UTF-8: 1" in message
    # The SDK's per-attribute error (which quotes the raw key) is not let through.
    assert not [r for r in caplog.records if "Failed to encode" in r.getMessage()]


@pytest.mark.parametrize("path", list(SPAN_PATHS))
@pytest.mark.parametrize("place", ["attribute key", "event attribute", "resource attribute"])
def test_sdk_encoder_logging_off_still_gives_fffd(path: str, place: str) -> None:
    # The SDK's encoder leaves a bad attribute out and says so only in its log; with that
    # log off we must find out another way.
    sdk = logging.getLogger("opentelemetry")
    before = sdk.level
    sdk.setLevel(logging.CRITICAL)
    try:
        got = SPAN_PATHS[path](build_spans(place, X))
    finally:
        sdk.setLevel(before)
    assert got == encode_spans(build_spans(place, R))


# --- log records ---------------------------------------------------------------------------

LOG_PLACES = [
    "body",
    "map body key",
    "map body value",
    "list body",
    "attribute key",
    "attribute value",
    "event name",
    "severity text",
    "resource attribute",
]


def build_logs(place: str, x: str) -> list[ReadableLogRecord]:
    def at(p: str) -> str:
        return x if place == p else ""

    provider = LoggerProvider(
        resource=Resource({"service.name": "gw", "team": f"desk{at('resource attribute')}1"}),
        shutdown_on_exit=False,
    )
    mem = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(mem))
    logger = provider.get_logger("wire.test", "1.0")
    for i in range(GOOD):
        logger.emit(
            timestamp=T0 + i,
            observed_timestamp=T0 + i,
            severity_text="INFO",
            body=f"order {i} filled",
            attributes={"symbol": "AAPL", "qty": i},
        )
    bodies: dict[str, Any] = {
        "map body key": {f"k{x}": "v"},
        "map body value": {"k": [f"a{x}", 1]},
        "list body": ["a", f"b{x}"],
    }
    logger.emit(
        timestamp=T0 + 500,
        observed_timestamp=T0 + 500,
        severity_text=f"WARN{at('severity text')}",
        body=bodies.get(place, f"warn {at('body')} inside"),
        attributes={f"k{at('attribute key')}": f"v{at('attribute value')}", "ok": "yes"},
        event_name=f"order.rejected{at('event name')}",
    )
    provider.shutdown()
    return list(mem.get_finished_logs())


def _grpc_logs(records: list[ReadableLogRecord]) -> ExportLogsServiceRequest:
    from otel._internal.grpc_exporters import GrpcLogExporter

    exporter = GrpcLogExporter(endpoint="127.0.0.1:1", insecure=True)
    try:
        return exporter._translate_data(records)
    finally:
        exporter.shutdown()


LOG_PATHS: dict[str, Callable[[list[ReadableLogRecord]], ExportLogsServiceRequest]] = {
    "lean": lambda r: ExportLogsServiceRequest.FromString(SpanEncoder().encode_logs(r)),
    "sdk encoder": lambda r: ExportLogsServiceRequest.FromString(
        encode_retry.encode_or_clean(_stock_logs, r, clean_batches.clean_logs, "log records")
    ),
    "grpc": _grpc_logs,
}


@pytest.mark.parametrize("path", list(LOG_PATHS))
@pytest.mark.parametrize("place", LOG_PLACES)
def test_log_batch_arrives_with_fffd_in_place(path: str, place: str) -> None:
    records = build_logs(place, X)
    got = LOG_PATHS[path](records)
    assert got == encode_logs(build_logs(place, R))
    n = sum(len(sl.log_records) for rl in got.resource_logs for sl in rl.scope_logs)
    assert n == GOOD + 1


# --- metrics -------------------------------------------------------------------------------

METRIC_PLACES = [
    "attribute key",
    "attribute value",
    "list value",
    "exemplar attribute",
    "description",
    "resource attribute",
]


def build_metrics(place: str, x: str) -> MetricsData:
    def at(p: str) -> str:
        return x if place == p else ""

    def number(attrs: dict[str, Any], value: int) -> NumberDataPoint:
        return NumberDataPoint(attrs, T0, T0 + 1, value)

    points = [number({"i": str(i)}, i) for i in range(GOOD)]
    points.append(number({f"k{at('attribute key')}": f"v{at('attribute value')}"}, 1))
    points.append(number({"list": [f"a{at('list value')}", "b"]}, 1))
    exemplar = Exemplar({f"who{at('exemplar attribute')}": "me"}, 0.2, T0 + 1, 7, 0xABC)
    histogram = HistogramDataPoint(
        {"route": "/orders"}, T0, T0 + 1, 1, 0.2, [0, 1, 0], [0.1, 0.5], 0.2, 0.2, [exemplar]
    )
    cumulative = AggregationTemporality.CUMULATIVE
    metrics = [
        Metric(
            "bad_strings.points",
            f"points {at('description')}",
            "1",
            Sum(points, cumulative, True),
        ),
        Metric("latency", "", "s", Histogram([histogram], cumulative)),
    ]
    resource = Resource({"service.name": "gw", "team": f"desk{at('resource attribute')}1"})
    scope = InstrumentationScope("trading", "1.0")
    return MetricsData([ResourceMetrics(resource, [ScopeMetrics(scope, metrics, "")], "")])


def _grpc_metrics(data: MetricsData) -> ExportMetricsServiceRequest:
    from otel._internal.grpc_exporters import GrpcMetricExporter

    exporter = GrpcMetricExporter(endpoint="127.0.0.1:1", insecure=True)
    try:
        return exporter._translate_data(data)
    finally:
        exporter.shutdown()


METRIC_PATHS: dict[str, Callable[[MetricsData], ExportMetricsServiceRequest]] = {
    "sdk encoder": lambda d: encode_retry.encode_or_clean(
        encode_metrics, d, clean_batches.clean_metrics, "metric points"
    ),
    "grpc": _grpc_metrics,
}


@pytest.mark.parametrize("path", list(METRIC_PATHS))
@pytest.mark.parametrize("place", METRIC_PLACES)
def test_metric_points_arrive_with_fffd_in_place(path: str, place: str) -> None:
    got = METRIC_PATHS[path](build_metrics(place, X))
    assert got == encode_metrics(build_metrics(place, R))
    (points, _) = got.resource_metrics[0].scope_metrics[0].metrics
    assert len(points.sum.data_points) == GOOD + 2


# --- the HTTP exporters, against a real HTTP receiver ---------------------------------------


@pytest.mark.parametrize("mode", ["lean", "sdk encoder", "unknown sdk"])
def test_http_exporters_deliver_every_item(
    otlp_receiver: OtlpReceiver, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.sdk._logs.export import LogRecordExportResult
    from opentelemetry.sdk.metrics.export import MetricExportResult
    from opentelemetry.sdk.trace.export import SpanExportResult

    from otel._internal.lean_exporter import (
        HttpMetricExporter,
        LeanHttpLogExporter,
        LeanHttpSpanExporter,
    )

    base = otlp_receiver.endpoint
    spans = LeanHttpSpanExporter(endpoint=f"{base}/v1/traces", lean=mode == "lean")
    logs = LeanHttpLogExporter(endpoint=f"{base}/v1/logs", lean=mode == "lean")
    metrics = HttpMetricExporter(endpoint=f"{base}/v1/metrics")
    if mode == "unknown sdk":  # only the SDK's whole export() can be used
        spans._lean_ok = logs._lean_ok = False
        monkeypatch.delattr(
            "opentelemetry.exporter.otlp.proto.http.metric_exporter._split_metrics_data"
        )
    try:
        assert spans.export(build_spans("everywhere", X)) is SpanExportResult.SUCCESS
        assert logs.export(build_logs("body", X)) is LogRecordExportResult.SUCCESS
        data = build_metrics("attribute value", X)
        assert metrics.export(data) is MetricExportResult.SUCCESS
    finally:
        for exporter in (spans, logs, metrics):
            exporter.shutdown()
    names = [span["name"] for _, span in otlp_receiver.spans()]
    assert len(names) == GOOD + 2 and f"bad {R} name" in names
    bodies = [
        rec["body"]["stringValue"]
        for req in otlp_receiver.logs
        for rl in req["resourceLogs"]
        for sl in rl["scopeLogs"]
        for rec in sl["logRecords"]
    ]
    assert len(bodies) == GOOD + 1 and f"warn {R} inside" in bodies
    points = otlp_receiver.metric_points("bad_strings.points")
    assert len(points) == GOOD + 2
    assert {"key": "k", "value": {"stringValue": f"v{R}"}} in [
        a for _, p in points for a in p["attributes"]
    ]


# --- console exporters ---------------------------------------------------------------------


def test_console_exporters_write_bad_text_to_a_strict_utf8_stream() -> None:
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", errors="strict")
    ConsoleSpanExporter(out=out).export(build_spans("everywhere", X))
    ConsoleLogRecordExporter(out=out).export(build_logs("body", X))
    ConsoleMetricExporter(out=out).export(build_metrics("attribute key", X))
    out.flush()
    written = raw.getvalue().decode("utf-8")  # JSON with ensure_ascii: \ud800 escapes
    assert written.count('"name": "bad \\ud800 name"') == 1
