"""Order latency with telemetry off, with a live collector, and with a dead collector.

``python -m bench.bench_dead_collector [--orders N] [--concurrency C]``

Starts a private Postgres, Redis and broker simulator, then the execution gateway three
times as a real process: (a) ``OTEL_SDK_DISABLED=true``; (b) traces, metrics and logs
exported over OTLP/HTTP to a local sink (``bench.sink``); (c) the same exports aimed at a
port where nothing listens. Each run sends the same orders (sequentially, then with C in
flight) and prints client-side p50/p95/p99 and throughput side by side, with the ratio to
(a). Figures are only comparable within one run: the machine's load moves them all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from trading_otel_tools.procs import ManagedProcess, free_port, http_probe, tcp_ok
from trading_otel_tools.servers.postgres import PostgresServer
from trading_otel_tools.servers.redis import RedisServer

PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRADING_OTEL_"))}


def _service(name: str, port: int, env: dict[str, str], log: Path) -> ManagedProcess:
    return ManagedProcess(
        name, [PY, "-m", "services", name, "--port", str(port)], log,
        ready=http_probe(f"http://127.0.0.1:{port}/ready"), env=env, cwd=ROOT, ports=(port,),
    )  # fmt: skip


def _pct(data: list[float], q: float) -> float:
    s = sorted(data)
    return s[max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))] * 1000


async def _orders(url: str, n: int, concurrency: int) -> tuple[list[float], float, int]:
    """Send n orders with ``concurrency`` in flight; (latencies s, elapsed s, failures)."""
    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        while not queue.empty():
            i = queue.get_nowait()
            body = {"symbol": ("AAPL", "MSFT")[i % 2], "side": ("buy", "sell")[i // 2 % 2],
                    "quantity": 1, "type": "market",
                    "client_order_id": f"b-{uuid.uuid4().hex}"}  # fmt: skip
            start = time.perf_counter()
            resp = await client.post("/api/v1/orders", json=body)
            latencies.append(time.perf_counter() - start)
            if resp.status_code != 201:
                failures += 1

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return latencies, time.perf_counter() - start, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-dead-collector-"))
    root.chmod(0o755)
    pg = PostgresServer(root / "pg", free_port())
    rd = RedisServer(root / "redis", free_port())
    procs: list[ManagedProcess] = []
    try:
        pg.start()
        rd.start()
        base = _clean_env() | {
            "TRADING_OTEL_PG_DSN": pg.dsn, "TRADING_OTEL_REDIS_URL": rd.url,
            "TRADING_OTEL_STALE_AFTER": "86400", "TRADING_OTEL_MAX_POSITION": "1e9",
            "TRADING_OTEL_MAX_EXPOSURE_USD": "1e12", "OTEL_SDK_DISABLED": "true",
        }  # fmt: skip
        broker_port = free_port()
        broker = _service("broker-simulator", broker_port, base, root / "broker.log").start(60)
        procs.append(broker)
        sink_grpc, sink_http = free_port(), free_port()
        sink = ManagedProcess(
            "otlp-sink", [PY, "-m", "bench.sink", "--grpc-port", str(sink_grpc),
                          "--http-port", str(sink_http), "--counts", str(root / "counts.json")],
            root / "sink.log", ready=tcp_ok(sink_http), cwd=ROOT, ports=(sink_grpc, sink_http),
        ).start(30)  # fmt: skip
        procs.append(sink)

        async def prices() -> None:
            r = aioredis.from_url(rd.url)
            for sym, p in (("AAPL", 190.0), ("MSFT", 410.0)):
                await r.set(f"md:last:{sym}", json.dumps({"p": p, "t": time.time()}))
            await r.aclose()

        asyncio.run(prices())
        export = {
            "OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "TRADING_OTEL_SHUTDOWN_TIMEOUT": "2",
        }  # fmt: skip
        setups = {
            "(a) telemetry disabled": {},
            "(b) live collector (sink)": export
            | {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_http}"},
            "(c) dead collector": export
            | {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}"},
        }
        rows: list[tuple[str, float, float, float, float, float, float, int]] = []
        for label, extra in setups.items():
            port = free_port()
            env = base | {"TRADING_OTEL_BROKER_URL": f"http://127.0.0.1:{broker_port}",
                          "OTEL_SERVICE_NAME": "execution-gateway"} | extra  # fmt: skip
            gw = _service("execution-gateway", port, env, root / f"gateway-{len(rows)}.log")
            gw.start(60)
            try:
                url = f"http://127.0.0.1:{port}"
                asyncio.run(_orders(url, 30, 1))  # warm-up: connections, prepared statements
                seq, _, f1 = asyncio.run(_orders(url, args.orders // 2, 1))
                par, elapsed, f2 = asyncio.run(_orders(url, args.orders, args.concurrency))
            finally:
                gw.stop(20)
            rows.append((label, _pct(seq, 50), _pct(seq, 95), _pct(seq, 99),
                         _pct(par, 50), _pct(par, 99), len(par) / elapsed, f1 + f2))  # fmt: skip
        base_row = rows[0]
        print(f"\norder latency, client side ({args.orders // 2} sequential orders; "
              f"{args.orders} with {args.concurrency} in flight)")  # fmt: skip
        print(f"{'setup':28} {'seq p50':>8} {'p95':>8} {'p99':>8} | {'conc p50':>8} "
              f"{'p99':>8} {'orders/s':>9} {'vs (a)':>7} {'failed':>6}")  # fmt: skip
        for label, p50, p95, p99, cp50, cp99, rps, failed in rows:
            print(f"{label:28} {p50:8.2f} {p95:8.2f} {p99:8.2f} | {cp50:8.2f} {cp99:8.2f} "
                  f"{rps:9.1f} {rps / base_row[6]:7.2f} {failed:6d}")  # fmt: skip
        print("(ms; 'vs (a)' is throughput relative to telemetry disabled)")
    finally:
        for p in reversed(procs):
            p.stop()
        rd.stop()
        pg.stop()


if __name__ == "__main__":
    main()
