"""Micro-benchmark: one trading histogram record vs prometheus_client, in ns per op.

Each case records a latency histogram with the order attributes inside an active,
sampled span (so exemplar sampling is on the measured path). Cases run interleaved in
several rounds and the best round is kept; each is timed in thread CPU time, which
filters out most of the noise from other processes sharing the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from prometheus_client import Histogram as PromHistogram

from otel._internal.catalogue import BY_KEY
from otel._internal.meters import TradingMeters
from otel._internal.views import histogram_views


@dataclass
class MicroResult:
    name: str
    ns_per_op: float


def _time(fn: Callable[[], None], n: int) -> float:
    # Thread CPU time, not wall time: on a shared machine, time spent descheduled is
    # not the cost of the call.
    start = time.thread_time_ns()
    for _ in range(n):
        fn()
    return (time.thread_time_ns() - start) / n


def run(n: int = 50_000, rounds: int = 5) -> list[MicroResult]:
    """Measure each case; returns best-of-``rounds`` ns/op per case."""
    spec = BY_KEY["order_latency"]
    buckets = spec.buckets or ()
    attrs = {"symbol": "AAPL", "side": "buy", "order_type": "market"}
    attrs4 = {**attrs, "outcome": "filled"}

    # Stock SDK, same buckets, default exemplar reservoir.
    stock_mp = MeterProvider(
        metric_readers=[InMemoryMetricReader()],
        views=[
            View(instrument_name=spec.name, aggregation=ExplicitBucketHistogramAggregation(buckets))
        ],
    )
    stock = stock_mp.get_meter("bench").create_histogram(spec.name, unit="s")

    ours_mp = MeterProvider(metric_readers=[InMemoryMetricReader()], views=histogram_views())
    meters = TradingMeters(ours_mp)
    bound = meters.order_latency.bind(attrs4)

    registry = CollectorRegistry()
    prom = PromHistogram(
        "bench_order_latency_seconds", "x", list(attrs), buckets=buckets, registry=registry
    )
    prom_child = prom.labels(*attrs.values())

    cases: dict[str, Callable[[], None]] = {
        "otel sdk Histogram.record (stock)": lambda: stock.record(0.012, attrs),
        "trading meter .record(**attrs)": lambda: meters.order_latency.record(0.012, attrs4),
        "trading meter bound recorder": lambda: bound(0.012),
        "prometheus_client .labels().observe()": lambda: prom.labels(*attrs.values()).observe(
            0.012
        ),
        "prometheus_client bound child .observe()": lambda: prom_child.observe(0.012),
    }
    best: dict[str, float] = {k: float("inf") for k in cases}
    tracer = TracerProvider().get_tracer("bench")
    with tracer.start_as_current_span("order"):
        for fn in cases.values():
            _time(fn, 1000)  # warm: creates aggregations and binds the fast path
        for _ in range(rounds):
            for name, fn in cases.items():
                best[name] = min(best[name], _time(fn, n))
    stock_mp.shutdown()
    ours_mp.shutdown()
    return [MicroResult(k, v) for k, v in best.items()]


if __name__ == "__main__":
    for r in run():
        print(f"{r.name:45s} {r.ns_per_op:8.0f} ns")
