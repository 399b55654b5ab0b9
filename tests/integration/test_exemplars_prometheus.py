"""A real Prometheus 2.42 scrapes our endpoint and stores the exemplars it serves."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.exemplar import TraceBasedExemplarFilter
from opentelemetry.sdk.trace import TracerProvider

from otel._internal.meters import TradingMeters, order_timer
from otel._internal.pull_endpoint import OPENMETRICS_CONTENT_TYPE, PrometheusEndpoint
from otel._internal.views import histogram_views
from trading_otel_tools.servers.prometheus import PrometheusServer, wait_for

pytestmark = pytest.mark.integration


@dataclass
class App:
    endpoint: PrometheusEndpoint
    meters: TradingMeters
    tracer_provider: TracerProvider

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.endpoint.port}"


@pytest.fixture(scope="module")
def app() -> Iterator[App]:
    """An in-process 'service': SDK providers plus our endpoint on a free port."""
    endpoint = PrometheusEndpoint("127.0.0.1", 0)
    provider = MeterProvider(
        metric_readers=[endpoint],
        views=histogram_views(),
        exemplar_filter=TraceBasedExemplarFilter(),
    )
    tracer_provider = TracerProvider()
    endpoint.start()
    try:
        yield App(endpoint, TradingMeters(provider), tracer_provider)
    finally:
        provider.shutdown()
        tracer_provider.shutdown()


# A gauge carrying an exemplar: the one thing our endpoint must never produce.
_BAD_EXPOSITION = (
    b"# TYPE bad_gauge gauge\n"
    b'bad_gauge 1 # {trace_id="0123456789abcdef0123456789abcdef"} 1\n'
    b"# EOF\n"
)


@pytest.fixture(scope="module")
def bad_target() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", OPENMETRICS_CONTENT_TYPE)
            self.end_headers()
            self.wfile.write(_BAD_EXPOSITION)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def prometheus(
    app: App, bad_target: str, prometheus_factory: Callable[..., PrometheusServer]
) -> PrometheusServer:
    return prometheus_factory({"app": [app.target], "bad": [bad_target]})


def _target(prom: PrometheusServer, job: str) -> dict[str, Any] | None:
    for t in prom.targets():
        if t["labels"].get("job") == job and t["health"] != "unknown":
            return t
    return None


def test_exemplar_reaches_prometheus_with_the_span_trace_id(
    app: App, prometheus: PrometheusServer
) -> None:
    tracer = app.tracer_provider.get_tracer("test")
    with (
        tracer.start_as_current_span("place_order") as span,
        order_timer("AAPL", "buy", "limit", meters=app.meters) as order,
    ):
        order.filled()
    ctx = span.get_span_context()
    trace_id, span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"

    def found() -> list[dict[str, Any]]:
        series = prometheus.query_exemplars('trading_order_latency_seconds_bucket{symbol="AAPL"}')
        return [
            ex for s in series for ex in s["exemplars"] if ex["labels"].get("trace_id") == trace_id
        ]

    exemplars = wait_for(found, timeout=30, what=f"exemplar with trace_id {trace_id}")
    assert exemplars[0]["labels"]["span_id"] == span_id
    counted = prometheus.query_exemplars('trading_orders_total{status="filled"}')
    assert any(ex["labels"]["trace_id"] == trace_id for s in counted for ex in s["exemplars"])


def test_scrape_of_our_endpoint_is_healthy(app: App, prometheus: PrometheusServer) -> None:
    # Every instrument kind recorded inside a span: only _bucket/_total may get exemplars.
    with app.tracer_provider.get_tracer("test").start_as_current_span("mixed"):
        app.meters.pnl.set(12.5, kind="daily")
        app.meters.websocket_connections.add(1)
        app.meters.fill_slippage.record(3.0)
        app.meters.fills.add(1)
    target = wait_for(lambda: _target(prometheus, "app"), timeout=30, what="app target scraped")
    assert target["health"] == "up", target
    assert target["lastError"] == ""
    up = wait_for(lambda: prometheus.query('trading_pnl_usd{kind="daily"}'), timeout=30)
    assert float(up[0]["value"][1]) == 12.5


def test_prometheus_rejects_whole_scrape_for_exemplar_on_gauge(
    prometheus: PrometheusServer,
) -> None:
    """The control: proves the _bucket/_total rule our endpoint is built around is real."""
    target = wait_for(lambda: _target(prometheus, "bad"), timeout=30, what="bad target scraped")
    assert target["health"] == "down"
    assert "exemplar" in target["lastError"].lower(), target
