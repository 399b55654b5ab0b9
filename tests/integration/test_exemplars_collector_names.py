"""Both metric paths give the same Prometheus series: our endpoint and OTLP -> our collector.

The same SDK (one MeterProvider, two readers) pushes over OTLP to the real collector with
the shipped local pipeline and serves our own ``/metrics``. Family names, sample names,
label names and ``le`` strings must match, so dashboards and alerts work on either path.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as parse_text

from otel._internal.catalogue import CATALOGUE
from otel._internal.meters import SymbolGuard, TradingMeters
from otel._internal.pull_endpoint import PrometheusEndpoint
from otel._internal.views import histogram_views
from tests.unit.test_meters_pull_endpoint import OM_ACCEPT, record_everything
from trading_otel_tools.servers.collector import CollectorServer
from trading_otel_tools.servers.prometheus import wait_for

pytestmark = pytest.mark.integration

CUMULATIVE = {
    kind: AggregationTemporality.CUMULATIVE
    for kind in (Counter, UpDownCounter, Histogram, ObservableCounter,
                 ObservableUpDownCounter, ObservableGauge)
}  # fmt: skip
# Labels one path adds from the resource or the scrape, not from the measurement.
_CONTEXT_LABELS = ("service_", "deployment_", "otel_scope_", "job", "instance")


@pytest.fixture(scope="module")
def both_paths(
    collector_factory: Callable[..., CollectorServer],
) -> Iterator[tuple[str, PrometheusEndpoint]]:
    collector = collector_factory("names", "local")
    endpoint = PrometheusEndpoint("127.0.0.1", 0)
    otlp = PeriodicExportingMetricReader(
        OTLPMetricExporter(
            endpoint=f"{collector.otlp_http_url}/v1/metrics", preferred_temporality=CUMULATIVE
        ),
        export_interval_millis=60_000,
    )
    provider = MeterProvider(
        metric_readers=[endpoint, otlp],
        views=histogram_views(),
        resource=Resource.create({"service.name": "names-test"}),
    )
    record_everything(TradingMeters(provider, SymbolGuard(None)), TracerProvider())
    provider.force_flush()
    try:
        yield collector.prometheus_url, endpoint
    finally:
        provider.shutdown()


def _series(text: str, om: bool = True) -> dict[str, dict[str, Any]]:
    """trading families -> {"type", "samples": {(sample name, label names, le)}}."""
    out: dict[str, dict[str, Any]] = {}
    parse = text_string_to_metric_families if om else parse_text
    for fam in parse(text):
        if not fam.name.startswith("trading_"):
            continue
        samples = set()
        for s in fam.samples:
            if s.name.endswith("_created"):
                continue
            names = tuple(sorted(k for k in s.labels if not k.startswith(_CONTEXT_LABELS)))
            samples.add((s.name, names, s.labels.get("le")))
        out[fam.name] = {"type": fam.type, "samples": samples}
    return out


def _scrape(url: str, om: bool = True) -> str:
    req = urllib.request.Request(url, headers={"Accept": OM_ACCEPT if om else "text/plain"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return str(resp.read().decode())


@pytest.mark.parametrize("om", [True, False], ids=["openmetrics", "text"])
def test_same_series_through_collector_and_endpoint(
    both_paths: tuple[str, PrometheusEndpoint], om: bool
) -> None:
    collector_url, endpoint = both_paths
    ours = _series(endpoint.scrape(OM_ACCEPT if om else None)[0].decode(), om)
    expected = len(CATALOGUE)
    via_collector = wait_for(
        lambda: (s := _series(_scrape(collector_url, om), om)) and len(s) >= expected and s,
        timeout=30,
        what="all trading metrics on the collector's Prometheus exporter",
    )
    assert via_collector.keys() == ours.keys()
    for name, fam in ours.items():
        assert via_collector[name]["type"] == fam["type"], name
        assert via_collector[name]["samples"] == fam["samples"], name


def test_collector_keeps_bucket_exemplars(both_paths: tuple[str, PrometheusEndpoint]) -> None:
    collector_url, _ = both_paths
    text = _scrape(collector_url)
    latency = [
        s
        for f in text_string_to_metric_families(text)
        if f.name == "trading_order_latency_seconds"
        for s in f.samples
        if s.exemplar is not None
    ]
    assert latency and all(s.name.endswith("_bucket") for s in latency)
    assert len(latency[0].exemplar.labels["trace_id"]) == 32
