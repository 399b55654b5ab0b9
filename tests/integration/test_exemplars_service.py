"""End to end: a real uvicorn service, configured by environment alone, scraped by a real
Prometheus 2.42. The exemplar Prometheus stores carries the trace id of the request."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from trading_otel_tools.procs import ManagedProcess, free_port, http_probe
from trading_otel_tools.servers.prometheus import PrometheusServer, wait_for

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def service(server_root: Path) -> Iterator[tuple[str, str]]:
    """(base URL, metrics target) of the app under uvicorn, with our Prometheus endpoint."""
    port, metrics_port = free_port(), free_port()
    env = {
        "OTEL_SERVICE_NAME": "exemplar-app",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
        "PYTHONPATH": str(REPO),
    }
    proc = ManagedProcess(
        "exemplar-app",
        [sys.executable, "-m", "uvicorn", "tests.integration.exemplars_app:app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        server_root / "exemplar-app" / "app.log",
        ready=http_probe(f"http://127.0.0.1:{port}/health"),
        env=env, cwd=REPO, ports=(port, metrics_port),
    )  # fmt: skip
    proc.start(timeout=60)
    try:
        yield f"http://127.0.0.1:{port}", f"127.0.0.1:{metrics_port}"
    finally:
        proc.stop()


def _exemplars(prom: PrometheusServer, selector: str, trace_id: str) -> list[dict[str, Any]]:
    return [
        ex
        for series in prom.query_exemplars(selector)
        for ex in series["exemplars"]
        if ex["labels"].get("trace_id") == trace_id
    ]


def test_request_trace_id_is_an_exemplar_in_prometheus(
    service: tuple[str, str], prometheus_factory: Callable[..., PrometheusServer]
) -> None:
    base, target = service
    prom = prometheus_factory({"exemplar-app": [target]})
    answer = httpx.post(f"{base}/orders", timeout=10).json()
    trace_id = answer["trace_id"]
    assert trace_id != "0" * 32, "the request ran without a span"

    found = wait_for(
        lambda: _exemplars(prom, "trading_order_latency_seconds_bucket", trace_id),
        timeout=30,
        what=f"order latency exemplar with trace_id {trace_id}",
    )
    assert found[0]["labels"]["span_id"] == answer["span_id"]
    # The library's own server-duration histogram links to the same request.
    assert wait_for(
        lambda: _exemplars(prom, "http_server_request_duration_seconds_bucket", trace_id),
        timeout=30,
        what="http.server.request.duration exemplar",
    )
    [target_state] = [t for t in prom.targets() if t["labels"]["job"] == "exemplar-app"]
    assert target_state["health"] == "up" and target_state["lastError"] == ""
