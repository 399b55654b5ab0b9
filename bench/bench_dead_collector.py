"""Order latency and gateway CPU: telemetry off, live collector, dead collector, stock SDK.

``python -m bench.bench_dead_collector [--orders N] [--concurrency C]``

Starts a private Postgres, Redis and broker simulator, then the execution gateway as a real
process once per setup: (a) ``OTEL_SDK_DISABLED=true``; (b) traces, metrics and logs
exported over OTLP/HTTP to a local sink (``bench.sink``, at nice 19); (c) the same exports
aimed at a port where nothing listens (connections refused); (d) aimed at a port that
accepts TCP connections into its backlog and never answers (a black hole: every export
waits for its timeout); (e) the same gateway app under stock ``opentelemetry-instrument``
(its distro, configurator and contrib instrumentors, ``otel.configure()`` not run; see
``bench.stock_gateway``) exporting to the same sink over OTLP/HTTP. Each run sends the same
orders (sequentially, then with C in flight) and prints client-side p50/p95/p99 and
throughput with the ratio to (a), the gateway's process CPU per order in the concurrent
phase, and the spans and logs the sink received per order. Figures are only comparable
within one run: the machine's load moves them all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from bench.common import PY, ROOT, Sink, clean_env, cpu_seconds, percentile
from trading_otel_tools.procs import ManagedProcess, free_port, http_probe
from trading_otel_tools.servers.postgres import PostgresServer
from trading_otel_tools.servers.redis import RedisServer


def _service(name: str, port: int, env: dict[str, str], log: Path) -> ManagedProcess:
    return ManagedProcess(
        name, [PY, "-m", "services", name, "--port", str(port)], log,
        ready=http_probe(f"http://127.0.0.1:{port}/ready"), env=env, cwd=ROOT, ports=(port,),
    )  # fmt: skip


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


@dataclass
class Row:
    label: str
    seq: list[float]
    par: list[float]
    elapsed: float
    failed: int
    cpu_ms: float  # gateway process CPU per order in the concurrent phase
    spans: float  # received by the sink per order (whole run)
    logs: float

    @property
    def rps(self) -> float:
        return len(self.par) / self.elapsed


def _settle(sink: Sink, quiet_s: float = 2.0, limit_s: float = 8.0) -> None:
    """Wait until the sink has received nothing new for ``quiet_s`` (batches still queued
    in the gateway leave within the SDK's 5 s schedule delay), or ``limit_s`` passes."""

    def spans_and_logs() -> tuple[int, int]:
        counts = sink.counts()  # metrics arrive every second anyway
        return counts["spans"], counts["logs"]

    deadline = time.monotonic() + limit_s
    last, since = spans_and_logs(), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
        time.sleep(0.25)
        now = spans_and_logs()
        if now != last:
            last, since = now, time.monotonic()


def _black_hole() -> socket.socket:
    """A port that completes TCP handshakes (into its backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)  # never accept()ed: a request sent here waits for its timeout
    return sock


def render(rows: list[Row], orders: int, concurrency: int) -> str:
    """The printed table."""
    base = rows[0]
    lines = [
        f"order latency, client side ({orders // 2} sequential orders; "
        f"{orders} with {concurrency} in flight)",
        f"{'setup':34} {'seq p50':>7} {'p95':>6} {'p99':>6} | {'conc p50':>8} {'p99':>6} "
        f"{'orders/s':>8} {'vs (a)':>6} | {'CPU/order':>9} {'telemetry':>9} "
        f"{'spans':>5} {'logs':>4} {'failed':>6}",
    ]
    for r in rows:
        tele = "-" if r is base else f"{r.cpu_ms - base.cpu_ms:+9.2f}"
        seq = [percentile(r.seq, q) * 1000 for q in (50, 95, 99)]
        par = [percentile(r.par, q) * 1000 for q in (50, 99)]
        lines.append(
            f"{r.label:34} {seq[0]:7.2f} {seq[1]:6.2f} {seq[2]:6.2f} | "
            f"{par[0]:8.2f} {par[1]:6.2f} {r.rps:8.1f} {r.rps / base.rps:6.2f} | "
            f"{r.cpu_ms:9.2f} {tele:>9} {r.spans:5.1f} {r.logs:4.1f} {r.failed:6d}"
        )
    lines += [
        "(ms; 'vs (a)': throughput relative to telemetry disabled; CPU/order: gateway process",
        " CPU (all threads, /proc) per order in the concurrent phase; telemetry: the same minus",
        " (a); spans/logs: received by the sink per order sent)",
    ]
    return "\n".join(lines)


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
    hole = _black_hole()
    try:
        pg.start()
        rd.start()
        base = clean_env() | {
            "TRADING_OTEL_PG_DSN": pg.dsn, "TRADING_OTEL_REDIS_URL": rd.url,
            "TRADING_OTEL_STALE_AFTER": "86400", "TRADING_OTEL_MAX_POSITION": "1e9",
            "TRADING_OTEL_MAX_EXPOSURE_USD": "1e12", "OTEL_SDK_DISABLED": "true",
        }  # fmt: skip
        broker_port = free_port()
        broker = _service("broker-simulator", broker_port, base, root / "broker.log").start(60)
        procs.append(broker)
        sink = Sink(root)
        sink.proc.start(30)
        procs.append(sink.proc)

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
        live = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.http_endpoint}
        # The stock distro and configurator, chosen explicitly (ours is installed too).
        stock = {"OTEL_PYTHON_DISTRO": "distro", "OTEL_PYTHON_CONFIGURATOR": "configurator"}
        setups: dict[str, tuple[dict[str, str], bool]] = {
            "(a) telemetry disabled": ({}, False),
            "(b) live collector (sink)": (export | live, False),
            "(c) dead collector (refused)": (
                export | {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}"},
                False,
            ),
            "(d) dead collector (black hole)": (
                export | {"OTEL_EXPORTER_OTLP_ENDPOINT":
                          f"http://127.0.0.1:{hole.getsockname()[1]}"},
                False,
            ),
            "(e) opentelemetry-instrument, live": (export | live | stock, True),
        }  # fmt: skip
        rows: list[Row] = []
        for label, (extra, stock_run) in setups.items():
            print(f"{label} ...", flush=True)
            port = free_port()
            env = base | {"TRADING_OTEL_BROKER_URL": f"http://127.0.0.1:{broker_port}",
                          "OTEL_SERVICE_NAME": "execution-gateway"} | extra  # fmt: skip
            log = root / f"gateway-{len(rows)}.log"
            if stock_run:
                argv = [str(Path(PY).parent / "opentelemetry-instrument"), PY, "-m",
                        "bench.stock_gateway", "--port", str(port)]  # fmt: skip
                gw = ManagedProcess(
                    "execution-gateway", argv, log, env=env, cwd=ROOT, ports=(port,),
                    ready=http_probe(f"http://127.0.0.1:{port}/ready"),
                )  # fmt: skip
            else:
                gw = _service("execution-gateway", port, env, log)
            before = sink.counts()
            gw.start(60)
            assert gw.pid is not None
            try:
                url = f"http://127.0.0.1:{port}"
                asyncio.run(_orders(url, 30, 1))  # warm-up: connections, prepared statements
                seq, _, f1 = asyncio.run(_orders(url, args.orders // 2, 1))
                cpu0 = cpu_seconds(gw.pid)
                par, elapsed, f2 = asyncio.run(_orders(url, args.orders, args.concurrency))
                cpu = cpu_seconds(gw.pid) - cpu0
                if extra.get("OTEL_EXPORTER_OTLP_ENDPOINT") == live["OTEL_EXPORTER_OTLP_ENDPOINT"]:
                    _settle(sink)
            finally:
                gw.stop(20)
            # The sink counts a batch before answering it: a margin for a POST in flight.
            time.sleep(0.5)
            after = sink.counts()
            sent = 30 + args.orders // 2 + args.orders
            rows.append(Row(label, seq, par, elapsed, f1 + f2, cpu / len(par) * 1000,
                            (after["spans"] - before["spans"]) / sent,
                            (after["logs"] - before["logs"]) / sent))  # fmt: skip
        print()
        print(render(rows, args.orders, args.concurrency))
    finally:
        hole.close()
        for p in reversed(procs):
            p.stop()
        rd.stop()
        pg.stop()


if __name__ == "__main__":
    main()
