"""The per-metric series cap (transform/series_cap in collector/config/common.yaml).

One OTLP request brings 100 000 series of one counter (and 5 000 of one histogram) to a
real collector of each role that exposes metrics. The Prometheus exporter must then
expose ONE overflow series for each, holding the sum of every point, while a metric
with exactly the cap passes unchanged. Sizes and series counts are asserted; scrape time
and collector RSS are printed, never asserted (the machine is shared).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from tests.fixtures import collector_payloads as p
from tests.fixtures.collector import TOKEN, CollectorFactory, recorder_env, wait_until
from trading_otel_tools.servers.collector import CollectorServer

pytestmark = pytest.mark.integration

CAP = 2000  # the default of TRADING_OTEL_COLLECTOR_MAX_SERIES_PER_METRIC
FLOOD = 100_000
HISTOGRAM_FLOOD = 5_000
#: Uncapped, the 100 000 series made a 15.6 MB body; capped, the cap-sized metric and the
#: host metrics of the local role stay far below this.
MAX_BODY_BYTES = 1_000_000
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def flood_request(round_: int) -> ExportMetricsServiceRequest:
    """One request: 100 000 counter series, 5 000 histogram series, ``CAP`` gauge series.

    Point i of the counter is worth ``round_ * (i % 7 + 1)``; every point shares one
    timestamp, as an SDK's collection does. ``round_`` grows the cumulative values.
    """
    now = time.time_ns()
    start = now - 60_000_000_000

    def attrs(i: int) -> list[KeyValue]:
        return [_kv("order.id", f"ord-{i:06d}"), _kv("side", "buy")]

    counter = Metric(
        name="cap.flood.requests", unit="{request}",
        sum=Sum(aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE, is_monotonic=True,
                data_points=[NumberDataPoint(attributes=attrs(i), start_time_unix_nano=start,
                                             time_unix_nano=now, as_int=round_ * (i % 7 + 1))
                             for i in range(FLOOD)]),
    )  # fmt: skip
    histogram = Metric(
        name="cap.flood.latency", unit="s",
        histogram=Histogram(
            aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE,
            data_points=[HistogramDataPoint(attributes=attrs(i), start_time_unix_nano=start,
                                            time_unix_nano=now, count=round_, sum=0.5 * round_,
                                            explicit_bounds=[0.1, 1.0],
                                            bucket_counts=[0, round_, 0])
                         for i in range(HISTOGRAM_FLOOD)]),
    )  # fmt: skip
    at_cap = Metric(
        name="cap.edge.positions", unit="{position}",
        sum=Sum(aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE, is_monotonic=False,
                data_points=[NumberDataPoint(attributes=[_kv("symbol", f"SYM{i:04d}")],
                                             start_time_unix_nano=start, time_unix_nano=now,
                                             as_int=i)
                             for i in range(CAP)]),
    )  # fmt: skip
    resource = Resource(attributes=[_kv("service.name", "cap-flood")])
    scope = ScopeMetrics(
        scope=InstrumentationScope(name="series-cap-test"), metrics=[counter, histogram, at_cap]
    )
    return ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=[scope])]
    )


def series(body: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of every sample line of ``name`` in an exposition body."""
    pattern = re.compile(rf"^{name}\{{(.*?)\}} (\S+)", re.M)
    return {labels: float(value) for labels, value in pattern.findall(body)}


def rss_kib(server: CollectorServer) -> int | None:
    assert server.process is not None and server.process.pid is not None
    status = Path(f"/proc/{server.process.pid}/status")
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


@pytest.mark.parametrize("role", ["local", "gateway"])
def test_one_metric_cannot_flood_the_prometheus_exporter(
    role: str, collector_factory: CollectorFactory, recorder: CollectorServer
) -> None:
    env = {"TRADING_OTEL_COLLECTOR_BATCH_TIMEOUT": "200ms"}
    token = None
    if role == "gateway":
        env |= recorder_env(recorder)
        token = TOKEN
    collector = collector_factory(f"cap-{role}", role, env=env)
    print(f"\n[{role}] RSS after start: {rss_kib(collector)} KiB")

    for round_ in (1, 2):
        request = flood_request(round_)
        sent = time.monotonic()
        p.post(collector.otlp_http_url, request, token)
        print(f"[{role}] round {round_}: sent {request.ByteSize() / 1e6:.1f} MB of OTLP "
              f"in {time.monotonic() - sent:.2f} s")  # fmt: skip
        want = float(round_ * sum(i % 7 + 1 for i in range(FLOOD)))

        def scraped(want: float = want) -> str | None:
            body = httpx.get(collector.prometheus_url, headers=OPENMETRICS, timeout=30).text
            values = series(body, "cap_flood_requests_total")
            return body if list(values.values()) == [want] else None

        body = wait_until(scraped, 60, f"the overflow series of cap_flood_requests_total = {want}")
        began = time.monotonic()
        resp = httpx.get(collector.prometheus_url, headers=OPENMETRICS, timeout=30)
        took = time.monotonic() - began
        print(f"[{role}] round {round_}: /metrics {len(resp.content)} bytes, scrape {took:.3f} s, "
              f"RSS {rss_kib(collector)} KiB")  # fmt: skip

        # 100 000 counter series became one, labelled as overflow, holding every point.
        flood = series(body, "cap_flood_requests_total")
        assert len(flood) == 1
        (labels,) = flood
        assert 'otel_metric_overflow="true"' in labels and "order_id" not in labels
        # 5 000 histogram series became one too: its count is every point's count.
        counts = series(body, "cap_flood_latency_seconds_count")
        assert list(counts.values()) == [float(round_ * HISTOGRAM_FLOOD)]
        # A metric with exactly CAP series is untouched.
        edge = series(body, "cap_edge_positions")
        assert len(edge) == CAP
        assert not any("otel_metric_overflow" in lb for lb in edge)
        assert len(resp.content) < MAX_BODY_BYTES
