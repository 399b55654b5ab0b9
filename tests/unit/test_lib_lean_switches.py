"""Each lean path has a switch back to the stock path, and both give the same telemetry.

``TRADING_OTEL_LEAN_SERVER`` (and a FastAPI without the lean path's internals),
``TRADING_OTEL_LEAN_METRICS`` and ``TRADING_OTEL_LEAN_ENCODER``; ``TRADING_OTEL_LEAN_SPANS``
is in ``test_lean_trace.py``. Each test runs the same workload through both paths and
compares what comes out, without timestamps and ids.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from otel._internal import server_telemetry
from otel._internal.meters import TradingMeters
from tests.fixtures.lib import MemoryTelemetry, OtlpReceiver, memory_telemetry, wait_for
from tests.unit.test_lib_server_telemetry import REQUESTS, make_app, send_all


@pytest.fixture(autouse=True)
def stable_http_conventions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Contrib's HTTP conventions as ``configure()`` sets them (before any instrumentation).

    Contrib reads OTEL_SEMCONV_STABILITY_OPT_IN once per process; other tests here may
    have made it read the old conventions, so it reads again.
    """
    from opentelemetry.instrumentation import _semconv

    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    stability = _semconv._OpenTelemetrySemanticConventionStability
    monkeypatch.setattr(stability, "_initialized", False)
    monkeypatch.setattr(stability, "_OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING", {})


#: Attributes only contrib's middleware writes (the lean path leaves the client out).
CONTRIB_ONLY = {"client.address", "client.port", "user_agent.original"}


def _server(mt: MemoryTelemetry) -> tuple[list[Any], list[Any]]:
    spans = sorted(
        (
            (s.name, s.kind, s.status.status_code,
             {k: v for k, v in (s.attributes or {}).items() if k not in CONTRIB_ONLY})
            for s in mt.spans.get_finished_spans()
        ),
        key=repr,
    )  # fmt: skip
    points = sorted(
        ((dict(p.attributes), p.count, len(p.exemplars) > 0)
         for p in mt.points("http.server.request.duration")),
        key=repr,
    )  # fmt: skip
    return spans, points


async def _serve(lean: bool) -> tuple[list[Any], list[Any]]:
    mt = memory_telemetry()
    undo = server_telemetry.install(
        server_telemetry.ServerTelemetry(mt.telemetry.tracer_provider, mt.telemetry.meter_provider),
        lean=lean,
    )
    try:
        assert server_telemetry.active_path() == ("lean" if lean else "middleware")
        early, late = EARLY, make_app()
        await send_all(early, REQUESTS)
        await send_all(late, REQUESTS[:1])
    finally:
        undo()
    out = _server(mt)
    mt.telemetry.shutdown(5)
    return out


#: Built before anything is installed, as a service's module-level app is.
EARLY = make_app()


def _error_type_of_raised(spans: list[Any], points: list[Any]) -> None:
    # A raised exception: the lean path names its type, the middleware path the 500
    # FastAPI's error middleware sent (it ended the span before the exception surfaced).
    for _, _, _, attrs in spans:
        if attrs.get("error.type") == "RuntimeError":
            attrs["error.type"] = "500"
    for attrs, _, _ in points:
        if attrs.get("error.type") == "RuntimeError":
            attrs["error.type"] = "500"


async def test_lean_server_off_gives_the_same_spans_and_durations() -> None:
    lean_spans, lean_points = await _serve(lean=True)
    mw_spans, mw_points = await _serve(lean=False)
    assert len(mw_spans) == len(REQUESTS) + 1  # one server span per request, no doubles
    assert {s[1] for s in mw_spans} == {SpanKind.SERVER}
    _error_type_of_raised(lean_spans, lean_points)
    assert mw_spans == lean_spans
    assert mw_points == lean_points
    assert sum(count for _, count, _ in mw_points) == len(REQUESTS) + 1


async def test_missing_fastapi_internals_fall_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(server_telemetry, "detect", lambda *_: None)
    monkeypatch.setattr(server_telemetry, "_warned", False)
    mt = memory_telemetry()
    caplog.set_level(logging.WARNING, "otel.server")
    undos = [
        server_telemetry.install(
            server_telemetry.ServerTelemetry(
                mt.telemetry.tracer_provider, mt.telemetry.meter_provider
            )
        )
        for _ in range(2)
    ]
    try:
        assert server_telemetry.active_path() == "middleware"
        await send_all(EARLY, [("GET", "/orders/1", {}, None)] * 2)
    finally:
        for undo in reversed(undos):
            undo()
    assert len([r for r in caplog.records if "lean server path" in r.getMessage()]) == 1
    spans = mt.spans.get_finished_spans()
    assert [(s.name, s.kind) for s in spans] == [("GET /orders/{order_id}", SpanKind.SERVER)] * 2
    (point,) = mt.points("http.server.request.duration")
    assert point.count == 2
    assert {e.span_id for e in point.exemplars} <= {s.context.span_id for s in spans}
    mt.telemetry.shutdown(5)

    # Back on the lean path, the same early app loses contrib's layer at its next request.
    from otel._internal import native_hooks

    monkeypatch.setattr(server_telemetry, "detect", native_hooks.detect)
    lean = memory_telemetry()
    undo = server_telemetry.install(
        server_telemetry.ServerTelemetry(
            lean.telemetry.tracer_provider, lean.telemetry.meter_provider
        )
    )
    try:
        await send_all(EARLY, [("GET", "/orders/1", {}, None)])
    finally:
        undo()
    assert type(EARLY.middleware_stack).__name__ != "ServerMiddleware"
    assert [s.instrumentation_scope.name for s in lean.spans.get_finished_spans()] == [
        server_telemetry.SCOPE_NAME
    ]
    lean.telemetry.shutdown(5)


def _trading_points(lean: bool) -> list[Any]:
    mt = memory_telemetry({"TRADING_OTEL_LEAN_METRICS": "true" if lean else "false"})
    meters = TradingMeters(mt.telemetry.meter_provider)
    tracer = mt.telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("order"):
        for latency in (0.004, 0.02, 0.02, 0.3, 2.0):
            meters.order_latency.record(
                latency, symbol="AAPL", side="buy", order_type="market", outcome="filled"
            )
        meters.orders.add(3, symbol="AAPL", side="buy", status="filled")
        meters.positions_open.add(2)
    meters.order_latency.record(
        0.5, symbol="MSFT", side="sell", order_type="limit", outcome="rejected"
    )
    # The pre-bound fast path is in use exactly when the switch is on.
    bound = meters.orders.bind(symbol="AAPL", side="buy", status="filled")
    assert (bound._storages is not None) is lean
    out = []
    data = mt.reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    shape: Any = (
                        (tuple(p.bucket_counts), p.count, p.sum)
                        if hasattr(p, "bucket_counts")
                        else p.value
                    )
                    exemplars = sorted(
                        (e.value, e.trace_id is not None) for e in getattr(p, "exemplars", [])
                    )
                    out.append((m.name, sorted(dict(p.attributes).items()), shape, exemplars))
    mt.telemetry.shutdown(5)
    return sorted(out, key=repr)


def test_lean_metrics_off_gives_the_same_series_buckets_and_exemplars() -> None:
    lean, stock = _trading_points(True), _trading_points(False)
    assert stock == lean
    assert {name for name, *_ in lean} == {
        "trading.order.latency",
        "trading.orders",
        "trading.positions.open",
    }
    # Exemplars only for what was recorded inside the span, one per bucket it hit.
    latency = [p for p in lean if p[0] == "trading.order.latency"]
    assert sorted(len(p[3]) for p in latency) == [0, 4]


def _normalised(receiver: OtlpReceiver) -> tuple[list[Any], list[Any], list[Any]]:
    drop = {"traceId", "spanId", "parentSpanId", "startTimeUnixNano", "endTimeUnixNano",
            "timeUnixNano", "observedTimeUnixNano", "flags"}  # fmt: skip

    def clean(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if k not in drop}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj

    def scrub_resource(reqs: list[dict[str, Any]], key: str) -> list[Any]:
        out = []
        for req in reqs:
            for r in req.get(key, []):
                attrs = {
                    a["key"]: a["value"]
                    for a in r.get("resource", {}).get("attributes", [])
                    if a["key"] != "service.instance.id"
                }
                out.append((sorted(attrs.items(), key=repr), clean(r.get("scope" + key[8:], []))))
        return sorted(out, key=repr)

    return (
        scrub_resource(receiver.traces, "resourceSpans"),
        scrub_resource(receiver.logs, "resourceLogs"),
        scrub_resource(receiver.metrics, "resourceMetrics"),
    )


def _export(receiver: OtlpReceiver, lean: bool) -> tuple[list[Any], list[Any], list[Any]]:
    mt = memory_telemetry(
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "TRADING_OTEL_LEAN_ENCODER": "true" if lean else "false",
        }
    )
    t = mt.telemetry
    tracer = t.tracer_provider.get_tracer("switch-test")
    with (
        tracer.start_as_current_span("parent", attributes={"symbol": "AAPL", "qty": 5}),
        tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as span,
    ):
        span.set_attribute("bad", "lone \udc80 surrogate")
        span.add_event("retry", {"attempt": 2})
        span.set_status(trace.StatusCode.ERROR, "broker timeout")
    assert t.logger_provider is not None
    t.logger_provider.get_logger("switch-test").emit(
        body="order \udc80 filled", attributes={"symbol": "AAPL"}
    )
    t.meter_provider.get_meter("switch-test").create_counter("switch.orders").add(2, {"k": "v"})
    assert t.shutdown(10)
    assert wait_for(lambda: bool(receiver.traces and receiver.logs and receiver.metrics))
    out = _normalised(receiver)
    receiver.traces.clear()
    receiver.logs.clear()
    receiver.metrics.clear()
    return out


def test_lean_encoder_off_sends_the_same_spans_logs_and_metrics(
    otlp_receiver: OtlpReceiver,
) -> None:
    lean = _export(otlp_receiver, lean=True)
    stock = _export(otlp_receiver, lean=False)
    assert stock == lean
    spans = repr(lean[0])
    assert "child" in spans and "parent" in spans and "retry" in spans
    # Bad text is cleaned on both paths, not dropped: the batch arrived with it.
    assert "lone \ufffd surrogate" in spans
    assert "order \ufffd filled" in repr(lean[1])


async def test_stock_server_path_without_contrib_middleware_keeps_the_lean_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Without opentelemetry-instrumentation-asgi (no `fastapi` extra) the stock path
    # cannot run: TRADING_OTEL_LEAN_SERVER=false warns and keeps the lean path's spans.
    monkeypatch.setattr(
        server_telemetry,
        "_installed",
        lambda module: module != "opentelemetry.instrumentation.asgi",
    )
    mt = memory_telemetry()
    caplog.set_level(logging.WARNING, "otel.server")
    undo = server_telemetry.install(
        server_telemetry.ServerTelemetry(mt.telemetry.tracer_provider, mt.telemetry.meter_provider),
        lean=False,
    )
    try:
        assert server_telemetry.active_path() == "lean"
        await send_all(EARLY, [("GET", "/orders/1", {}, None)])
    finally:
        undo()
    warnings = [r.getMessage() for r in caplog.records if "instrumentation-asgi" in r.getMessage()]
    assert len(warnings) == 1 and "using the lean path instead" in warnings[0]
    spans = mt.spans.get_finished_spans()
    assert [(s.name, s.kind) for s in spans] == [("GET /orders/{order_id}", SpanKind.SERVER)]
    mt.telemetry.shutdown(5)
