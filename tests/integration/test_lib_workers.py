"""Two real worker processes: own providers, distinct instance ids, no lost counts.

Each worker configures telemetry in its lifespan and exports to a real OTLP/HTTP
receiver. Summing each worker's final cumulative request count must give exactly
the number of requests sent: nothing lost, nothing counted twice.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fixtures.lib import BIN, OtlpReceiver, app_env, serve, wait_for
from trading_otel_tools.procs import free_port

pytestmark = pytest.mark.integration

REQUESTS = 40


def argv_for(server: str, port: int) -> list[str]:
    app = "tests.fixtures.lib_app:app"
    if server == "gunicorn-preload":
        # configure() runs in the master, before the fork: each worker must still get
        # its own identity on the providers it inherits.
        return [str(BIN / "gunicorn"), "--preload", "-w", "2",
                "-k", "uvicorn.workers.UvicornWorker", "-b", f"127.0.0.1:{port}",
                "--graceful-timeout", "15", "tests.fixtures.lib_preload_app:app"]  # fmt: skip
    if server == "uvicorn":
        return [str(BIN / "uvicorn"), "--host", "127.0.0.1", "--port", str(port),
                "--workers", "2", app]  # fmt: skip
    return [str(BIN / "gunicorn"), "-w", "2", "-k", "uvicorn.workers.UvicornWorker",
            "-b", f"127.0.0.1:{port}", "--graceful-timeout", "15", app]  # fmt: skip


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn", "gunicorn-preload"])
def test_two_workers_count_every_request_once(
    server: str, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / f"{server}.log"
    proc = serve(argv_for(server, port), app_env(otlp_receiver, port), port, log)
    try:
        # /health answers as soon as one worker is up: wait for the second, or all the
        # requests may go to the first.
        assert wait_for(lambda: log.read_text().count("Application startup complete") >= 2, 30), (
            log.read_text()
        )
        # No keep-alive: every request is a new connection, so both workers accept some.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=10) as c:
            for i in range(REQUESTS):
                assert c.get(f"/orders/{i}").status_code == 200
    finally:
        proc.stop(timeout=30)

    workers = {r["service.instance.id"]: r["process.pid"] for r in otlp_receiver.log_resources()}
    assert len(workers) == 2, log.read_text()
    assert len(set(workers.values())) == 2

    final: dict[str, int] = {}
    for resource, point in otlp_receiver.metric_points("http.server.request.duration"):
        route = next(
            a["value"]["stringValue"] for a in point["attributes"] if a["key"] == "http.route"
        )
        if route == "/orders/{order_id}":
            iid = resource["service.instance.id"]
            # Cumulative temporality: the last (largest) count is the worker's total.
            final[iid] = max(final.get(iid, 0), int(point["count"]))
    assert set(final) <= set(workers), "metrics from an unknown instance"
    assert sum(final.values()) == REQUESTS, (final, log.read_text()[-3000:])
