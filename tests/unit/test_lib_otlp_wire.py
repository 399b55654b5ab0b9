"""The lean span encoder writes the same OTLP message as the SDK's encoder."""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)
from opentelemetry.trace.span import NonRecordingSpan

from otel._internal.otlp_wire import SpanEncoder


def _spans() -> list[ReadableSpan]:
    out: list[ReadableSpan] = []
    for resource in (
        Resource({"service.name": "gw", "n": 3}),
        Resource({"service.name": "risk"}, "https://example/schema"),
    ):
        mem = InMemorySpanExporter()
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(mem))
        tracer = provider.get_tracer("otel.server", "1.0", schema_url="https://s/1")
        other = provider.get_tracer("orders")
        remote = SpanContext(
            0x0AF7651916CD43DD8448EB211C80319C,
            0xB7AD6B7169203331,
            is_remote=True,
            trace_flags=TraceFlags(1),
            trace_state=TraceState([("vendor", "v1")]),
        )
        with tracer.start_as_current_span(
            "GET /orders/{id}",
            context=set_span_in_context(NonRecordingSpan(remote)),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "GET", "server.port": 8080, "ok": True},
        ) as server:
            server.set_attributes(
                {
                    "ratio": 0.25,
                    "neg": -0.0,
                    "big": -(1 << 40),
                    "tags": ["a", "b"],
                    "flags": [True, False],
                    "ids": [1, 2],
                    "huge": (1 << 63) - 1,
                    "unicode": "prix €",
                }
            )
            server.add_event("retry", {"attempt": 2})
            with other.start_as_current_span(
                "db", kind=SpanKind.CLIENT, links=[Link(remote, {"why": "batch"})]
            ) as child:
                child.set_status(StatusCode.ERROR, "timeout")
            with other.start_as_current_span("ok") as fine:
                fine.set_status(StatusCode.OK)
        provider.get_tracer("x").start_span("").end()  # empty name, no attributes
        provider.shutdown()
        out += mem.get_finished_spans()
    return out


def test_same_message_as_the_sdk_encoder() -> None:
    spans = _spans()
    encoder = SpanEncoder()
    for _ in range(2):  # the second pass reads the cached attribute encodings
        ours = ExportTraceServiceRequest.FromString(encoder.encode(spans))
        assert ours == encode_spans(spans)
    assert len(ours.resource_spans) == 2


def test_empty_batch_is_an_empty_request() -> None:
    assert SpanEncoder().encode([]) == b""


def test_exporter_posts_the_lean_encoding_to_a_real_http_receiver() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.sdk.trace.export import SpanExportResult

    from otel._internal.lean_exporter import LeanHttpSpanExporter

    bodies: list[bytes] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        exporter = LeanHttpSpanExporter(
            endpoint=f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        )
        spans = _spans()
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
    finally:
        server.shutdown()
        server.server_close()
    (body,) = bodies
    assert ExportTraceServiceRequest.FromString(body) == encode_spans(spans)


def _log_records() -> list[Any]:
    import logging

    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import (
        InMemoryLogRecordExporter,
        SimpleLogRecordProcessor,
    )

    mem = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource({"service.name": "gw"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(mem))
    handler = LoggingHandler(logger_provider=provider)
    log = logging.getLogger("wire.test")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    tracer = TracerProvider().get_tracer("t")
    try:
        with tracer.start_as_current_span("place"):
            log.info("order filled", extra={"symbol": "AAPL", "qty": 5, "px": 1.5, "ok": True})
        log.warning("no span", extra={"otel.event.name": "order.rejected"})
        try:
            raise ValueError("bad qty")
        except ValueError:
            log.exception("failed")
        provider.get_logger("direct", "2.0").emit(body={"k": [1, 2]}, attributes={"b": b"x"})
        provider.get_logger("direct").emit(body=None)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    provider.shutdown()
    return list(mem.get_finished_logs())


def test_log_records_same_message_as_the_sdk_encoder() -> None:
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    records = _log_records()
    assert len(records) == 5
    encoder = SpanEncoder()
    for _ in range(2):
        ours = ExportLogsServiceRequest.FromString(encoder.encode_logs(records))
        assert ours == encode_logs(records)


def _bad_text_spans() -> list[ReadableSpan]:
    """The spans above, and one with a lone surrogate in every text field."""
    mem = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "gw", "team": "desk\udcff"}))
    provider.add_span_processor(SimpleSpanProcessor(mem))
    tracer = provider.get_tracer("orders\ud800")
    with tracer.start_as_current_span(
        "bad \ud800 name",
        attributes={"v\udc00": "x\ud800y", "list": ["ok", "a\udfffb"], "n": 1},
        links=[Link(SpanContext(1, 2, is_remote=True), {"l\udc00": "w"})],
    ) as span:
        span.add_event("ev\ud800", {"e\udc00": "f\ud800"})
        span.set_status(StatusCode.ERROR, "status \ud800")
    provider.shutdown()
    return _spans() + list(mem.get_finished_spans())


def test_bad_text_gives_the_same_message_on_both_paths() -> None:
    from otel._internal.clean_batches import clean_logs, clean_spans
    from otel._internal.encode_retry import encode_or_clean
    from otel._internal.lean_exporter import _stock_logs, _stock_spans

    spans = _bad_text_spans()
    lean = ExportTraceServiceRequest.FromString(SpanEncoder().encode(spans))
    stock = encode_or_clean(_stock_spans, spans, clean_spans, "spans")
    assert lean == ExportTraceServiceRequest.FromString(stock)
    bad = lean.resource_spans[-1].scope_spans[0].spans[0]
    assert bad.name == "bad \ufffd name"
    assert len([s for rs in lean.resource_spans for ss in rs.scope_spans for s in ss.spans]) == 9

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    mem = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource({"service.name": "gw"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(mem))
    provider.get_logger("direct").emit(
        body={"k\udc00": ["a\ud800", 1]}, attributes={"a\ud800": "b"}, event_name="e\ud800"
    )
    provider.shutdown()
    records = _log_records() + list(mem.get_finished_logs())
    lean_logs = ExportLogsServiceRequest.FromString(SpanEncoder().encode_logs(records))
    stock_logs = encode_or_clean(_stock_logs, records, clean_logs, "log records")
    assert lean_logs == ExportLogsServiceRequest.FromString(stock_logs)
    assert sum(len(sl.log_records) for rl in lean_logs.resource_logs for sl in rl.scope_logs) == 6
