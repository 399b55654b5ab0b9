"""One benchmarked process: a FastAPI app in one setup, driven in-process or served.

The runner (``python -m bench``) starts this module once per case, prefixed with
``opentelemetry-instrument`` for the stock setup, so every setup starts from a clean
interpreter::

    python -m bench.worker --setup trading --endpoint order --mode inproc --n 3000 --out r.json
    python -m bench.worker --setup bare --mode serve --port 8123

Setups: ``bare`` (no SDK: the OpenTelemetry API is a no-op), ``stock`` (run under
``opentelemetry-instrument`` by the runner; this module does nothing extra) and ``trading``
(``otel.configure()`` with traces, metrics and logs exported over OTLP).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from opentelemetry import metrics, trace

SETUPS = ("bare", "stock", "trading")
ENDPOINTS = {"ping": "/ping", "order": "/order"}
QUERY = b"symbol=AAPL&side=buy"

log = logging.getLogger("bench.orders")


def _setup_logging(setup: str) -> None:
    logging.getLogger().setLevel(logging.INFO)
    if setup != "trading":
        # configure() installs its own stdout formatter; the others get a plain one, so
        # every setup writes the order's log line somewhere real.
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logging.getLogger().addHandler(handler)


def build_app(setup: str) -> FastAPI:
    """The benchmarked app: a minimal endpoint and an order-shaped one."""
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    if setup == "trading":
        from otel import get_meters, order_timer

        @app.get("/order")
        async def order(symbol: str = "AAPL", side: str = "buy") -> dict[str, str]:
            with order_timer(symbol, side, "market") as handle:  # histogram + counter
                handle.filled()
            get_meters().fills.add(1)  # second counter
            log.info("order filled", extra={"symbol": symbol, "side": side})
            return {"status": "filled"}

    else:
        meter = metrics.get_meter("bench")
        latency = meter.create_histogram("trading.order.latency", unit="s")
        orders = meter.create_counter("trading.orders", unit="{order}")
        fills = meter.create_counter("trading.fills", unit="{fill}")

        @app.get("/order")
        async def order(symbol: str = "AAPL", side: str = "buy") -> dict[str, str]:
            start = time.perf_counter()
            outcome = "filled"
            latency.record(
                time.perf_counter() - start,
                {"symbol": symbol, "side": side, "order_type": "market", "outcome": outcome},
            )
            orders.add(1, {"symbol": symbol, "side": side, "status": outcome})
            fills.add(1)
            log.info("order filled", extra={"symbol": symbol, "side": side})
            return {"status": outcome}

    return app


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": QUERY,
        "root_path": "",
        "headers": [(b"host", b"bench.local"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _drive(app: Any, path: str, n: int) -> None:
    """Send ``n`` GET requests straight into the ASGI app, one after another."""
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    for _ in range(n):
        await app(_scope(path), receive, send)
    if set(status) != {200}:
        raise RuntimeError(f"unexpected statuses {sorted(set(status))} from {path}")


def _flush() -> None:
    """Flush every provider, so the export work of the measured requests is counted."""
    from opentelemetry import _logs

    for provider in (
        trace.get_tracer_provider(),
        metrics.get_meter_provider(),
        _logs.get_logger_provider(),
    ):
        flush = getattr(provider, "force_flush", None)
        if flush is not None:
            flush()


def run_inproc(app: FastAPI, path: str, n: int, warmup: int) -> dict[str, float]:
    """Per request: wall time, request-thread CPU and process CPU (export included)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_drive(app, path, warmup))
        _flush()
        wall0, cpu0, thread0 = time.perf_counter(), time.process_time(), time.thread_time()
        loop.run_until_complete(_drive(app, path, n))
        wall1, thread1 = time.perf_counter(), time.thread_time()
        _flush()
        cpu1 = time.process_time()
    finally:
        loop.close()
    return {
        "wall_us": (wall1 - wall0) / n * 1e6,
        # CPU of the request thread alone: the request path's cost, without time spent
        # descheduled (the machine is shared) and without the export threads.
        "thread_us": (thread1 - thread0) / n * 1e6,
        # CPU of the whole process including the final flush: export work counted.
        "cpu_us": (cpu1 - cpu0) / n * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--setup", choices=SETUPS, required=True)
    parser.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="ping")
    parser.add_argument("--mode", choices=("inproc", "serve"), required=True)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    _setup_logging(args.setup)
    if args.setup == "trading":
        import otel

        if otel.configure(service_name="bench") is None:
            raise SystemExit("otel.configure() did not set up telemetry")
    app = build_app(args.setup)

    if args.mode == "inproc":
        result = run_inproc(app, ENDPOINTS[args.endpoint], args.n, args.warmup)
        if args.out is not None:
            args.out.write_text(json.dumps(result))
        else:
            print(json.dumps(result), file=sys.stderr)
        return

    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
