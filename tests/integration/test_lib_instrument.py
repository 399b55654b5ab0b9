"""``opentelemetry-instrument uvicorn`` gives the same telemetry as ``otel.configure()``.

The same service runs twice as a real uvicorn process: once configuring itself in its
lifespan, once with no telemetry code under ``opentelemetry-instrument``. Both export
to a real OTLP/HTTP receiver; resource, span names and metric names must match.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.lib import BIN, OtlpReceiver, app_env, serve, wait_for
from trading_otel_tools.procs import free_port

pytestmark = pytest.mark.integration

#: Differ between any two processes by design.
VOLATILE = {"service.instance.id", "process.pid"}


def run_service(mode: str, receiver: OtlpReceiver, tmp_path: Path) -> None:
    port = free_port()
    uvicorn = [str(BIN / "uvicorn"), "--host", "127.0.0.1", "--port", str(port)]
    if mode == "explicit":
        argv = [*uvicorn, "tests.fixtures.lib_app:app"]
    else:
        argv = [str(BIN / "opentelemetry-instrument"), *uvicorn, "tests.fixtures.lib_app:bare_app"]
    proc = serve(argv, app_env(receiver, port), port, tmp_path / f"{mode}.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert client.get("/orders/1").status_code == 200
            assert client.get("/relay/2").status_code == 200
            assert client.get("/health").status_code == 200
    finally:
        proc.stop(timeout=20)  # SIGTERM: lifespan shutdown / atexit flush the pipeline
    # uvicorn re-raises SIGTERM after a graceful shutdown, hence -15.
    log = (tmp_path / f"{mode}.log").read_text()
    assert proc.proc is not None and proc.proc.returncode in (0, -15), log
    assert "Application shutdown complete" in log or mode == "instrument", log
    assert wait_for(lambda: len(receiver.spans()) >= 4, timeout=5)


def telemetry_of(receiver: OtlpReceiver) -> dict[str, Any]:
    spans = receiver.spans()
    resources = [r for r, _ in spans]
    return {
        "resource": {k: v for k, v in resources[0].items() if k not in VOLATILE},
        "span_names": Counter((s["name"], s["kind"]) for _, s in spans),
        "metric_names": receiver.metric_names(),
        "spans": [s for _, s in spans],
    }


def test_instrument_equals_configure(tmp_path: Path) -> None:
    explicit, instrumented = OtlpReceiver().start(), OtlpReceiver().start()
    try:
        run_service("explicit", explicit, tmp_path)
        run_service("instrument", instrumented, tmp_path)
        a, b = telemetry_of(explicit), telemetry_of(instrumented)
    finally:
        explicit.stop()
        instrumented.stop()
    assert a["resource"] == b["resource"]
    assert a["resource"]["service.name"] == "lib-app"
    assert a["resource"]["service.version"] == "1.0"
    assert a["span_names"] == b["span_names"]
    assert a["metric_names"] == b["metric_names"]
    assert {"http.server.request.duration", "http.client.request.duration"} <= a["metric_names"]
    for run in (a, b):
        server = [s for s in run["spans"] if s["kind"] == "SPAN_KIND_SERVER"]
        # /orders/1, /relay/2 and the relayed /orders/2; /health is excluded.
        assert sorted(s["name"] for s in server) == [
            "GET /orders/{order_id}",
            "GET /orders/{order_id}",
            "GET /relay/{order_id}",
        ]
        relay = next(s for s in server if s["name"] == "GET /relay/{order_id}")
        client = next(s for s in run["spans"] if s["kind"] == "SPAN_KIND_CLIENT")
        relayed = [s for s in server if s["traceId"] == relay["traceId"] and s is not relay]
        assert len(relayed) == 1, "the trace context did not travel over httpx"
        assert relayed[0]["parentSpanId"] == client["spanId"]
        assert client["parentSpanId"] == relay["spanId"]
