"""Freshness: how long after an order's 201 it is counted in Prometheus and traced on disk.

``python -m bench.freshness [--orders N] [--gap S] [--env VAR=VALUE ...]``

Starts a private local stack (``trading_otel_tools.stack.up`` on free ports: Postgres,
Redis, broker simulator, market data, the execution gateway, our collector with its
``local`` config and Prometheus with ``prometheus.local.yml``), exactly as
``trading-otel up`` configures them. It then sends N orders one at a time through the
real gateway, paced ``--gap`` seconds apart (jittered, seeded), and watches two places
every 50 ms:

- **Prometheus**: ``sum(trading_orders_total{service_name="execution-gateway"})``. Only
  this bench sends orders, every answered order is counted once (``order_timer``
  records before the response), and orders go one at a time, so the k-th order is
  queryable once the sum reaches ``base + k``.
- **the collector's trace file** (``var/telemetry/traces.jsonl``): the trace id the
  gateway returns in the order's body. "Root on disk" is the gateway's server span (the
  trace's root, which ends last in the gateway); "whole trace" is the last of the trace's
  spans from every service (the broker simulator's too), known once the run has settled.

Prints p50/p95/max of each delay, from the client's receipt of the response, plus the
gateway's CPU per order and while idle (``/proc``). Figures only, never pass/fail.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from bench.common import cpu_seconds, percentile
from trading_otel_tools.stack import StackConfig, down, status, up

#: What the freshness path needs; the orchestrator and signal service would send orders.
STACK = ("postgres", "redis", "broker-simulator", "market-data", "execution-gateway",
         "collector", "prometheus")  # fmt: skip
COUNT_QUERY = 'sum(trading_orders_total{service_name="execution-gateway"})'
POLL_S = 0.05


@dataclass
class Watch:
    """What the watcher thread saw, with the monotonic time it first saw it."""

    count_seen: list[tuple[float, float]] = field(default_factory=list)  # (time, sum)
    spans: dict[str, dict[str, tuple[float, str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def count(self) -> float:
        """The last sum seen (0 before the first answer)."""
        return self.count_seen[-1][1] if self.count_seen else 0.0

    def first_time_count(self, at_least: float) -> float | None:
        with self.lock:
            return next((t for t, v in self.count_seen if v >= at_least), None)


class Watcher(threading.Thread):
    """Polls Prometheus and tails the trace file until stopped."""

    def __init__(self, prom_url: str, traces: Path) -> None:
        super().__init__(daemon=True, name="freshness-watch")
        self.prom_url, self.traces = prom_url, traces
        self.seen = Watch()
        self.stopped = threading.Event()
        self._offset = 0
        self._rest = b""

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stopped.is_set():
                self._poll_prometheus(client)
                self._tail_traces()
                self.stopped.wait(POLL_S)

    def _poll_prometheus(self, client: httpx.Client) -> None:
        try:
            resp = client.get(f"{self.prom_url}/api/v1/query", params={"query": COUNT_QUERY})
            rows = resp.json()["data"]["result"]
        except (httpx.HTTPError, ValueError, KeyError):
            return
        now = time.monotonic()
        value = float(rows[0]["value"][1]) if rows else 0.0
        with self.seen.lock:
            if value != self.seen.count or not self.seen.count_seen:
                self.seen.count_seen.append((now, value))

    def _tail_traces(self) -> None:
        try:
            with self.traces.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        now = time.monotonic()
        self._offset += len(chunk)
        data = self._rest + chunk
        lines, _, self._rest = data.rpartition(b"\n")
        for line in lines.splitlines():
            if not line.strip():
                continue
            doc = json.loads(line)
            with self.seen.lock:
                for rs in doc.get("resourceSpans", []):
                    for ss in rs.get("scopeSpans", []):
                        for span in ss.get("spans", []):
                            trace = self.seen.spans.setdefault(span["traceId"], {})
                            trace.setdefault(span["spanId"], (now, span.get("parentSpanId", "")))


def _wait(what: str, check: object, timeout_s: float) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"freshness: timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Order:
    answered: float  # monotonic time the client had the response
    expected: float  # the count Prometheus must reach
    trace_id: str


def send(client: httpx.Client, i: int) -> tuple[bool, str]:
    """One order; (counted by the gateway, trace id from the body)."""
    body = {"symbol": "AAPL", "side": ("buy", "sell")[i % 2], "quantity": 1,
            "type": "market", "client_order_id": f"fresh-{uuid.uuid4().hex[:20]}"}  # fmt: skip
    resp = client.post("/api/v1/orders", json=body)
    try:
        doc = resp.json()
    except ValueError:
        return False, ""
    return "status" in doc, str(doc.get("trace_id", ""))


@dataclass
class Result:
    """Per-order delays in seconds from the 201 at the client, and the gateway's CPU."""

    trace_ids: list[str]
    prometheus: list[float]
    root_on_disk: list[float]
    whole_on_disk: list[float]
    cpu_per_order_s: float
    idle_cpu_s_per_s: float


def run(
    orders: int,
    gap_s: float = 0.25,
    *,
    seed: int = 1,
    env: dict[str, str] | None = None,
    idle_s: float = 10.0,
    settle_s: float = 6.0,
) -> Result:
    """Start the stack, send ``orders`` orders and watch them arrive (see the module doc).

    ``idle_s`` is the window in which the gateway's idle CPU is read; ``settle_s`` how long
    no new span of the measured traces may arrive before a trace counts as whole.
    """
    root = Path(tempfile.mkdtemp(prefix="bench-freshness-"))
    root.chmod(0o755)  # Postgres runs as its own user under it
    config = replace(StackConfig(root / "var", only=STACK).with_free_ports(), ready_timeout_s=90,
                     service_env=tuple((env or {}).items()))  # fmt: skip
    try:
        up(config, install=False, report=lambda _: None)
        gw_pid = next(s.pid for s in status(config) if s.name == "execution-gateway")
        assert gw_pid is not None
        watcher = Watcher(f"http://127.0.0.1:{config.port('prometheus')}",
                          config.telemetry_dir / "traces.jsonl")  # fmt: skip
        watcher.start()
        counted = 0
        rng = random.Random(seed)
        with httpx.Client(base_url=config.url("execution-gateway"), timeout=30,
                          headers=config.auth_headers()) as client:  # fmt: skip
            # Warm-up: market data's first prices, connections, the series' first scrape.
            def warm() -> bool:
                nonlocal counted
                ok, _ = send(client, counted)
                counted += ok
                return counted >= 5

            _wait("five answered orders", warm, 60)
            _wait("the warm-up orders in Prometheus", lambda: watcher.seen.count >= counted, 60)
            # The measured orders count from what Prometheus holds now, not from the
            # client's tally: an order the gateway counted without a status in its answer
            # would otherwise make every later delay too short.
            base = watcher.seen.count
            idle_cpu0, idle_t0 = cpu_seconds(gw_pid), time.monotonic()
            time.sleep(idle_s)
            idle_cpu = (cpu_seconds(gw_pid) - idle_cpu0) / max(time.monotonic() - idle_t0, 1e-9)
            sent: list[Order] = []
            cpu0 = cpu_seconds(gw_pid)
            for i in range(orders):
                ok, trace_id = send(client, i)
                answered = time.monotonic()
                if not ok:
                    raise SystemExit(f"freshness: order {i} was not answered with a status")
                counted += 1
                sent.append(Order(answered, base + i + 1, trace_id))
                time.sleep(rng.uniform(0.5 * gap_s, 1.5 * gap_s))
            cpu_per_order = (cpu_seconds(gw_pid) - cpu0) / orders
        _wait("every order in Prometheus", lambda: watcher.seen.count >= base + orders, 60)
        ids = {o.trace_id for o in sent}

        def traces_settled() -> bool:
            with watcher.seen.lock:
                arrivals = [t for i in ids for t, _ in watcher.seen.spans.get(i, {}).values()]
                roots = sum(any(not p for _, p in watcher.seen.spans.get(i, {}).values())
                            for i in ids)  # fmt: skip
            return roots == len(ids) and time.monotonic() - max(arrivals) > settle_s

        _wait(f"every order's trace on disk (and {settle_s:g} s without new spans)",
              traces_settled, 90)  # fmt: skip
        watcher.stopped.set()
        watcher.join()
    finally:
        down(config, report=lambda _: None)
        shutil.rmtree(root, ignore_errors=True)
    result = Result([o.trace_id for o in sent], [], [], [], cpu_per_order, idle_cpu)
    for o in sent:
        t = watcher.seen.first_time_count(o.expected)
        assert t is not None
        result.prometheus.append(t - o.answered)
        spans = watcher.seen.spans[o.trace_id]
        result.root_on_disk.append(min(t for t, parent in spans.values() if not parent)
                                   - o.answered)  # fmt: skip
        result.whole_on_disk.append(max(t for t, _ in spans.values()) - o.answered)
    return result


def report(result: Result, gap_s: float) -> None:
    """Print the figures."""
    print(f"\nfreshness over {len(result.trace_ids)} orders, one at a time, ~{gap_s:g} s apart "
          "(seconds from the 201 at the client)")  # fmt: skip
    print(f"{'delay':44} {'p50':>6} {'p95':>6} {'max':>6}")
    for label, data in (("order counted in Prometheus (query answers)", result.prometheus),
                        ("trace root span in traces.jsonl", result.root_on_disk),
                        ("whole trace (every service) in traces.jsonl",
                         result.whole_on_disk)):  # fmt: skip
        print(
            f"{label:44} {percentile(data, 50):6.2f} {percentile(data, 95):6.2f} {max(data):6.2f}"
        )
    print(f"gateway CPU: {result.cpu_per_order_s * 1000:.1f} ms per order while sending, "
          f"{result.idle_cpu_s_per_s * 1000:.1f} ms/s idle (exports, P&L loop)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=120)
    parser.add_argument("--gap", type=float, default=0.25, help="seconds between orders")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--env", action="append", default=[], metavar="VAR=VALUE",
                        help="set in every service's environment (e.g. to measure "
                        "OTEL_METRIC_EXPORT_INTERVAL=5000); repeatable")  # fmt: skip
    args = parser.parse_args()
    if args.orders < 1 or args.gap < 0:
        parser.error("--orders must be at least 1 and --gap at least 0")
    bad = [item for item in args.env if "=" not in item or item.startswith("=")]
    if bad:
        parser.error(f"--env takes VAR=VALUE, not {bad[0]!r}")
    env = dict(item.split("=", 1) for item in args.env)
    if env:
        print("services' environment on top of the stack's: "
              + " ".join(f"{k}={v}" for k, v in env.items()))  # fmt: skip
    report(run(args.orders, args.gap, seed=args.seed, env=env), args.gap)


if __name__ == "__main__":
    main()
