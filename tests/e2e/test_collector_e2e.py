"""Services -> local collector -> real Prometheus 2.42, on free ports.

Checks the order latency histogram arrives with service labels, that the exemplars
Prometheus stores point at traces present in the collector's trace file, that the
collector path and the services' direct endpoints expose the same ``trading_*`` names,
and measures freshness (printed, never asserted).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.fixtures import collector_payloads as p
from tests.fixtures.collector import wait_until
from trading_otel_tools.servers.prometheus import PrometheusServer
from trading_otel_tools.stack import StackConfig, down, run_load, up
from trading_otel_tools.stack.components import SERVICE_METRICS_PORTS

pytestmark = pytest.mark.e2e

STACK = ("postgres", "redis", "broker-simulator", "market-data", "signal-service",
         "execution-gateway", "orchestrator", "collector", "prometheus")  # fmt: skip
_SUFFIX = re.compile(r"_(bucket|count|sum|created)$")


@pytest.fixture(scope="module")
def stack(server_root: Path, collector_binary: Path) -> Iterator[StackConfig]:
    config = replace(
        StackConfig(server_root / "collector-e2e", only=STACK).with_free_ports(),
        ready_timeout_s=90,
    )
    try:
        up(config, install=False)
        # Wait for the market-data feed's first prices, then send some real orders.
        wait_until(lambda: run_load(config, rate=5, duration_s=0.4).accepted, 30, "an order")
        run_load(config, rate=10, duration_s=2.0)
        yield config
    finally:
        down(config)


def prom(config: StackConfig) -> PrometheusServer:
    # Only its HTTP API helpers are used; the stack owns the process.
    return PrometheusServer(config.var_dir / "prometheus", config.port("prometheus"), {})


def families(names: set[str]) -> set[str]:
    return {_SUFFIX.sub("", n) for n in names if n.startswith("trading_")}


def test_order_latency_reaches_prometheus_with_service_labels(stack: StackConfig) -> None:
    series = wait_until(
        lambda: prom(stack).query('trading_order_latency_seconds_bucket{service_name!=""}'),
        60, "trading_order_latency_seconds_bucket via the collector",
    )  # fmt: skip
    labels = series[0]["metric"]
    assert labels["service_name"] == "execution-gateway"
    assert {"job", "instance", "le", "outcome", "side", "symbol"} <= set(labels)


def test_exemplar_trace_ids_exist_in_the_trace_file(stack: StackConfig) -> None:
    def exemplar_ids() -> set[str]:
        data = prom(stack).query_exemplars('trading_order_latency_seconds_bucket{service_name!=""}')
        return {
            ex["labels"]["trace_id"]
            for s in data for ex in s.get("exemplars", []) if "trace_id" in ex["labels"]
        }  # fmt: skip

    ids = wait_until(exemplar_ids, 60, "exemplars in Prometheus")
    traces = stack.telemetry_dir / "traces.jsonl"
    on_disk = wait_until(
        lambda: ids & {s["traceId"] for _, s in p.spans_in(traces)}, 30,
        "an exemplar's trace in traces.jsonl",
    )  # fmt: skip
    assert on_disk


@pytest.mark.parametrize("service", SERVICE_METRICS_PORTS)
def test_collector_path_and_direct_endpoint_expose_the_same_names(
    stack: StackConfig, service: str
) -> None:
    # Prometheus drops the direct endpoints' samples (deploy/prometheus: liveness only), so
    # the direct side is read from the service's own /metrics.
    def via_collector() -> set[str]:
        selector = f'{{__name__=~"trading_.+", service_name="{service}"}}'
        rows = prom(stack).query(f"count by (__name__) ({selector})")
        return families({r["metric"]["__name__"] for r in rows})

    def direct() -> set[str]:
        url = f"http://127.0.0.1:{stack.port(f'{service}-metrics')}/metrics"
        text = httpx.get(url, timeout=5).text
        return families({line.split("{")[0].split(" ")[0] for line in text.splitlines()
                         if line.startswith("trading_")})  # fmt: skip

    def same() -> tuple[set[str], set[str]] | None:
        a, b = via_collector(), direct()
        return (a, b) if a and a == b else None

    try:
        wait_until(same, 30, f"the same trading_* names for {service} on both paths")
    except pytest.fail.Exception:
        assert via_collector() == direct()  # show the difference
        raise


def test_freshness(stack: StackConfig, capsys: pytest.CaptureFixture[str]) -> None:
    api = prom(stack)
    traces = stack.telemetry_dir / "traces.jsonl"

    def order_count() -> float:
        rows = api.query('sum(trading_order_latency_seconds_count{service_name!=""})')
        return float(rows[0]["value"][1]) if rows else 0.0

    before_count = order_count()
    before_spans = sum(1 for _ in p.spans_in(traces))
    sent = time.monotonic()
    report = run_load(stack, rate=10, duration_s=0.5)
    assert report.sent and report.errors == 0
    wait_until(lambda: sum(1 for _ in p.spans_in(traces)) > before_spans, 60, "new spans")
    to_disk = time.monotonic() - sent
    wait_until(lambda: order_count() > before_count, 60, "the order count to move")
    to_query = time.monotonic() - sent
    with capsys.disabled():
        print(
            f"\n[collector e2e] freshness: order -> trace on disk {to_disk:.1f}s, "
            f"order -> metric queryable in Prometheus {to_query:.1f}s "
            "(p50/p95 over many orders: python -m bench.freshness)"
        )
