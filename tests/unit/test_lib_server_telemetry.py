"""The single FastAPI server path: one span and one duration series per request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.trace import SpanKind

from otel._internal import server_common, server_telemetry
from otel._internal.sanitize import MASK, SENSITIVE_QUERY_PARAMS, set_sensitive_params
from tests.fixtures.lib import MemoryTelemetry, memory_telemetry

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def make_app(**telemetry: Any) -> FastAPI:
    app = FastAPI(telemetry=telemetry or None)

    @app.get("/orders/{order_id}")
    async def get_order(order_id: int) -> dict[str, int]:
        return {"order_id": order_id}

    @app.post("/orders")
    async def post_order(body: dict[str, Any]) -> dict[str, Any]:
        return body

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("account ACC-991 has 12.5 left")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> str:
        return ""

    @app.get("/internal/debug")
    async def debug() -> str:
        return ""

    return app


#: Built at import, i.e. long before any telemetry is installed.
EARLY_APP = make_app()

REQUESTS: list[tuple[str, str, dict[str, str], Any]] = [
    ("GET", "/orders/7?q=1&sig=secret", {}, None),
    ("POST", "/orders", {"host": "gw.example:8443"}, {"symbol": "AAPL"}),
    ("GET", "/missing", {}, None),
    ("GET", "/boom", {}, None),
    ("PURGE", "/orders/7", {}, None),
    ("GET", "/orders/8", {"traceparent": TRACEPARENT}, None),
]


async def send_all(app: FastAPI, requests: list[tuple[str, str, dict[str, str], Any]]) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for method, url, headers, body in requests:
            await client.request(method, url, headers=headers, json=body)


def server_spans(mt: MemoryTelemetry) -> list[Any]:
    return [s for s in mt.spans.get_finished_spans() if s.kind == SpanKind.SERVER]


def summary(mt: MemoryTelemetry) -> tuple[list[Any], list[Any]]:
    spans = sorted(
        (
            (s.name, s.kind, s.status.status_code, dict(s.attributes or {}),
             s.parent.span_id if s.parent else None)
            for s in server_spans(mt)
        ),
        key=repr,
    )  # fmt: skip
    points = sorted(
        ((dict(p.attributes), p.count) for p in mt.points("http.server.request.duration")),
        key=repr,
    )
    return spans, points


async def test_same_span_and_metric_as_fastapi_native_telemetry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Upstream: FastAPI's own implementation, given explicit providers, with our path off
    # (another fixture may have installed ours for the whole session).
    monkeypatch.setattr(server_telemetry, "_active", None)
    upstream = memory_telemetry()
    native_app = make_app(
        tracer_provider=upstream.telemetry.tracer_provider,
        meter_provider=upstream.telemetry.meter_provider,
        logs=False,
        operation_spans=False,
    )
    await send_all(native_app, REQUESTS)

    ours = memory_telemetry()
    undo = server_telemetry.install(
        server_telemetry.ServerTelemetry(
            ours.telemetry.tracer_provider, ours.telemetry.meter_provider
        )
    )
    try:
        await send_all(make_app(), REQUESTS)
    finally:
        undo()
    up_spans, up_points = summary(upstream)
    our_spans, our_points = summary(ours)
    assert len(our_spans) == len(REQUESTS)
    assert our_spans == up_spans
    assert our_points == up_points
    by_route = {s[3].get("http.route"): s for s in our_spans}
    assert by_route["/orders/{order_id}"][0] in (
        "GET /orders/{order_id}",
        "HTTP /orders/{order_id}",
    )
    assert "REDACTED" in next(s[3]["url.query"] for s in our_spans if "url.query" in s[3])
    for t in (upstream, ours):
        t.telemetry.shutdown(5)


@pytest.mark.parametrize("built", ["before", "after"])
async def test_one_server_span_and_one_series_per_request(
    memtel: MemoryTelemetry, built: str
) -> None:
    app = EARLY_APP if built == "before" else make_app()
    await send_all(app, [("GET", "/orders/1", {}, None)] * 3)
    spans = memtel.spans.get_finished_spans()
    # No receive/send or operation spans: exactly the three server spans.
    assert [s.name for s in spans] == ["GET /orders/{order_id}"] * 3
    assert all(s.kind == SpanKind.SERVER for s in spans)
    (point,) = memtel.points("http.server.request.duration")
    assert point.count == 3


async def test_health_metrics_and_configured_urls_are_excluded() -> None:
    mt = memory_telemetry({"OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": "^/internal"})
    s = mt.telemetry.settings
    undo = server_telemetry.install(
        server_telemetry.ServerTelemetry(
            mt.telemetry.tracer_provider,
            mt.telemetry.meter_provider,
            excluded=s.excluded_paths_regex(),
        )
    )
    try:
        paths = ["/health", "/metrics", "/internal/debug", "/orders/3"]
        await send_all(make_app(), [("GET", p, {}, None) for p in paths])
    finally:
        undo()
    assert [sp.attributes["url.path"] for sp in server_spans(mt)] == ["/orders/3"]
    assert [p.attributes["http.route"] for p in mt.points("http.server.request.duration")] == [
        "/orders/{order_id}"
    ]
    mt.telemetry.shutdown(5)


async def test_operation_spans_only_when_enabled() -> None:
    mt = memory_telemetry({"TRADING_OTEL_FASTAPI_OPERATION_SPANS": "true"})
    undo = server_telemetry.install(
        server_telemetry.ServerTelemetry(
            mt.telemetry.tracer_provider, mt.telemetry.meter_provider, operation_spans=True
        )
    )
    try:
        await send_all(make_app(), [("GET", "/orders/1", {}, None)])
    finally:
        undo()
    names = {s.name for s in mt.spans.get_finished_spans()}
    assert "GET /orders/{order_id}" in names
    assert "fastapi.endpoint" in names
    assert len(server_spans(mt)) == 1
    mt.telemetry.shutdown(5)


async def test_incoming_trace_context_is_the_parent(memtel: MemoryTelemetry) -> None:
    await send_all(make_app(), [("GET", "/orders/9", {"traceparent": TRACEPARENT}, None)])
    (span,) = server_spans(memtel)
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None and format(span.parent.span_id, "016x") == "b7ad6b7169203331"


async def test_duration_carries_an_exemplar_of_the_server_span(memtel: MemoryTelemetry) -> None:
    await send_all(make_app(), [("GET", "/orders/9", {}, None)])
    (span,) = server_spans(memtel)
    (point,) = memtel.points("http.server.request.duration")
    assert [e.trace_id for e in point.exemplars] == [span.context.trace_id]
    assert [e.span_id for e in point.exemplars] == [span.context.span_id]
    assert point.explicit_bounds[0] < 0.01  # seconds-scale buckets, not milliseconds


async def test_exception_message_on_the_span_holds_no_values(memtel: MemoryTelemetry) -> None:
    await send_all(make_app(), [("GET", "/boom", {}, None)])
    (span,) = server_spans(memtel)
    assert span.attributes["error.type"] == "RuntimeError"
    (event,) = [e for e in span.events if e.name == "exception"]
    message = event.attributes["exception.message"]
    assert "991" not in message and "12.5" not in message
    assert message.startswith("account ACC-? has ? left")


async def test_app_opt_out_is_respected(memtel: MemoryTelemetry) -> None:
    await send_all(make_app(tracing=False, metrics=False), [("GET", "/orders/1", {}, None)])
    assert memtel.spans.get_finished_spans() == ()
    assert memtel.points("http.server.request.duration") == []


async def test_unhandled_exception_logs_one_line_inside_the_span(memtel: MemoryTelemetry) -> None:
    from otel._internal.logs import setup_logging
    from otel._internal.settings import Settings

    undo = setup_logging(
        Settings.from_env({"TRADING_OTEL_LOG_STDOUT": "false"}), memtel.telemetry.logger_provider
    )
    try:
        await send_all(make_app(), [("GET", "/boom", {}, None)])
    finally:
        undo()
    (span,) = server_spans(memtel)
    (record,) = [
        r.log_record
        for r in memtel.logs.get_finished_logs()
        if str(r.log_record.body).startswith("request failed")
    ]
    assert record.body == "request failed: GET /boom raised RuntimeError"
    assert record.trace_id == span.context.trace_id
    assert record.span_id == span.context.span_id


async def test_fastapi_auto_configure_adds_no_second_exporter(
    memtel: MemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.telemetry import _runtime

    monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", "true")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    app = make_app()
    assert app._telemetry["auto_configure"] is True
    before = len(_runtime._configured)
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert len(_runtime._configured) == before


@pytest.mark.parametrize(
    "raw",
    [
        b"symbol=AAPL&side=buy",
        b"a+b=c~d&x=",
        b"sig=abc&a=1",
        b"X-Amz-Signature=zz&qty=5",
        b"a=%41&b=%20",
        b"flag",
        b"a=1&&b=2",
        b"q=caf\xe9",
    ],
)
def test_url_query_fast_path_matches_the_parse_and_encode_round_trip(raw: bytes) -> None:
    from urllib.parse import parse_qsl, urlencode

    from fastapi.telemetry import _asgi

    # Every name FastAPI masks, we mask too (case-insensitively, plus our own list).
    secret = {k.lower() for k in _asgi._SENSITIVE_QUERY_PARAMETERS} | SENSITIVE_QUERY_PARAMS
    assert secret == SENSITIVE_QUERY_PARAMS
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    expected = urlencode([(k, MASK if k.lower() in secret else v) for k, v in pairs])
    assert server_common.query(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"api_key=CANARYKEY444&token=CANARYTOK555", "api_key=REDACTED&token=REDACTED"),
        (b"API_KEY=a&qty=5&Sig=b&qty=6", "API_KEY=REDACTED&qty=5&Sig=REDACTED&qty=6"),
        (b"api%5Fkey=a&token=b&token=c", "api_key=REDACTED&token=REDACTED&token=REDACTED"),
        (b"password=p%20w&apikey=x&access_token=y",
         "password=REDACTED&apikey=REDACTED&access_token=REDACTED"),
        (b"secret&signature=s&key=", "secret=REDACTED&signature=REDACTED&key=REDACTED"),
        (b"monkey=1&keys=2&tokens=3", "monkey=1&keys=2&tokens=3"),
    ],
)  # fmt: skip
def test_url_query_masks_sensitive_values_and_keeps_names(raw: bytes, expected: str) -> None:
    assert server_common.query(raw) == expected


async def test_configured_query_params_are_masked_on_the_server_span(
    memtel: MemoryTelemetry,
) -> None:
    undo = set_sensitive_params(["Account_Ref"])
    try:
        await send_all(
            make_app(),
            [("GET", "/orders/7?account_ref=ACC-1&api_key=K-1&qty=5", {}, None)],
        )
    finally:
        undo()
    (span,) = server_spans(memtel)
    assert span.attributes["url.query"] == "account_ref=REDACTED&api_key=REDACTED&qty=5"
    assert server_common.query(b"account_ref=x") == "account_ref=x"  # undone


@pytest.mark.parametrize("key", ["url.full", "http.url"])
def test_httpx_client_span_url_is_masked_by_the_request_hook(key: str) -> None:
    # Contrib calls the hook with the span already holding the URL it recorded.
    from otel._internal.instrumentation import _mask_client_url

    mt = memory_telemetry()
    tracer = mt.telemetry.tracer_provider.get_tracer("test")
    url = "http://broker:8005/api/v1/orders?api_key=CK1&qty=5&X-Amz-Signature=S2"
    with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes={key: url}) as span:
        _mask_client_url(span, None)
    (finished,) = mt.spans.get_finished_spans()
    assert finished.attributes[key] == (
        "http://broker:8005/api/v1/orders?api_key=REDACTED&qty=5&X-Amz-Signature=REDACTED"
    )
    mt.telemetry.shutdown(5)
