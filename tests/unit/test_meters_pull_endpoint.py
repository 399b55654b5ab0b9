"""The Prometheus endpoint: exposed names, naming rules, exemplars and content negotiation.

Naming tests run against what the endpoint actually serves, not only the declarations.
"""

from __future__ import annotations

import logging
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from otel._internal.catalogue import CATALOGUE, MetricSpec
from otel._internal.meters import SymbolGuard, TradingMeters
from otel._internal.pull_endpoint import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    PrometheusEndpoint,
    prom_name,
)
from otel._internal.views import histogram_views

OM_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)  # what Prometheus 2.42 sends


def valid_attributes(spec: MetricSpec) -> dict[str, str]:
    return {a.name: "AAPL" if a.is_symbol else (a.values or ("",))[0] for a in spec.attributes}


def record_everything(meters: TradingMeters, tracer_provider: TracerProvider) -> None:
    """One measurement on every catalogue instrument, inside a sampled span."""
    with tracer_provider.get_tracer("test").start_as_current_span("work"):
        for spec in CATALOGUE:
            inst = getattr(meters, spec.key)
            value = (spec.buckets or (1.0,))[0] / 2 if spec.kind == "histogram" else 1
            {"counter": inst.add, "updowncounter": inst.add, "histogram": inst.record,
             "gauge": inst.set}[spec.kind](value, valid_attributes(spec))  # fmt: skip


@pytest.fixture
def endpoint() -> Iterator[PrometheusEndpoint]:
    ep = PrometheusEndpoint("127.0.0.1", 0)
    provider = MeterProvider(metric_readers=[ep], views=histogram_views())
    record_everything(TradingMeters(provider, SymbolGuard(None)), TracerProvider())
    yield ep
    provider.shutdown()


def openmetrics(ep: PrometheusEndpoint) -> str:
    body, ctype = ep.scrape(OM_ACCEPT)
    assert ctype == OPENMETRICS_CONTENT_TYPE
    return body.decode()


def trading_families(text: str, om: bool) -> dict[str, Any]:
    parse = parse_openmetrics if om else parse_text
    return {f.name: f for f in parse(text) if f.name.startswith("trading")}


def exposed_names(text: str, om: bool) -> set[str]:
    """Base names as PromQL sees them (counters with ``_total``)."""
    names = set()
    for fam in trading_families(text, om).values():
        names.add(fam.name + "_total" if fam.type == "counter" else fam.name)
    return names


# --- names --------------------------------------------------------------------------------


@pytest.mark.parametrize("om", [True, False], ids=["openmetrics", "text"])
def test_every_catalogue_prom_name_is_exposed(endpoint: PrometheusEndpoint, om: bool) -> None:
    body, _ = endpoint.scrape(OM_ACCEPT if om else None)
    assert exposed_names(body.decode(), om) == {spec.prom_name for spec in CATALOGUE}


@pytest.mark.parametrize("om", [True, False], ids=["openmetrics", "text"])
def test_exposed_names_follow_the_naming_rules(endpoint: PrometheusEndpoint, om: bool) -> None:
    body, _ = endpoint.scrape(OM_ACCEPT if om else None)
    families = trading_families(body.decode(), om)
    by_prom = {spec.prom_name: spec for spec in CATALOGUE}
    for fam in families.values():
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        spec = by_prom[name]
        assert name.startswith("trading_")
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        expected_type = {"updowncounter": "gauge"}.get(spec.kind, spec.kind)
        assert fam.type == expected_type, name
        assert name.endswith("_total") == (spec.kind == "counter"), name
        # Units: seconds are the only time unit, and only a seconds metric ends so.
        assert name.removesuffix("_total").endswith("_seconds") == (spec.unit == "s"), name
        assert not re.search(r"_(milliseconds|ms|microseconds|minutes)(_|$)", name), name
        if spec.kind == "histogram":
            assert spec.buckets, name
            sample_names = {s.name for s in fam.samples}
            assert sample_names == {f"{name}_bucket", f"{name}_sum", f"{name}_count"}


def test_durations_are_seconds_histograms() -> None:
    for spec in CATALOGUE:
        if "duration" in spec.name or "latency" in spec.name:
            assert spec.kind == "histogram" and spec.unit == "s", spec.name


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        ("http.server.request.duration", "s", "histogram", "http_server_request_duration_seconds"),
        ("trading.orders", "{order}", "counter", "trading_orders_total"),
        ("trading.pnl_usd", "{USD}", "gauge", "trading_pnl_usd"),
        ("cpu.utilization", "1", "gauge", "cpu_utilization_ratio"),
        ("net.io", "By/s", "gauge", "net_io_bytes_per_second"),
        ("queue.latency", "ms", "histogram", "queue_latency_milliseconds"),
        ("already.seconds", "s", "gauge", "already_seconds"),
        ("jobs.total", "{job}", "counter", "jobs_total"),
        ("2xx.responses", "", "counter", "_2xx_responses_total"),
        ("weird..name!", "", "gauge", "weird_name"),
    ],
)
def test_prom_name_translation(name: str, unit: str, kind: str, expected: str) -> None:
    assert prom_name(name, unit, kind) == expected


# --- exemplars ----------------------------------------------------------------------------


def exemplar_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#") and " # {" in line]


def test_exemplars_only_on_bucket_and_total_series(endpoint: PrometheusEndpoint) -> None:
    lines = exemplar_lines(openmetrics(endpoint))
    assert lines, "no exemplars at all"
    for line in lines:
        series = line.split("{", 1)[0].split(" ", 1)[0]
        assert series.endswith(("_bucket", "_total")), line


def test_every_latency_histogram_and_counter_carries_the_span(
    endpoint: PrometheusEndpoint,
) -> None:
    text = openmetrics(endpoint)
    lines = exemplar_lines(text)
    with_exemplar = {line.split("{", 1)[0] for line in lines}
    for spec in CATALOGUE:
        if spec.kind == "histogram":
            assert f"{spec.prom_name}_bucket" in with_exemplar, spec.prom_name
        if spec.kind == "counter":
            assert spec.prom_name in with_exemplar, spec.prom_name
        if spec.kind in ("gauge", "updowncounter"):
            assert spec.prom_name not in with_exemplar
    # The OpenMetrics parser accepts every exemplar (it rejects malformed ones).
    families = trading_families(text, om=True)
    exemplars = [s.exemplar for f in families.values() for s in f.samples if s.exemplar]
    assert len(exemplars) == len(lines)
    assert len({e.labels["trace_id"] for e in exemplars}) == 1
    assert all(re.fullmatch(r"[0-9a-f]{32}", e.labels["trace_id"]) for e in exemplars)
    assert all(re.fullmatch(r"[0-9a-f]{16}", e.labels["span_id"]) for e in exemplars)


def test_exemplar_sits_on_the_bucket_of_its_value() -> None:
    ep = PrometheusEndpoint("127.0.0.1", 0)
    provider = MeterProvider(metric_readers=[ep], views=histogram_views())
    meters = TradingMeters(provider)
    with TracerProvider().get_tracer("t").start_as_current_span("s"):
        meters.risk_check_duration.record(0.003)  # bucket (0.0025, 0.005]
        meters.risk_check_duration.record(99.0)  # +Inf bucket
    lines = exemplar_lines(openmetrics(ep))
    buckets = sorted(re.search(r'le="([^"]+)"', line).group(1) for line in lines)  # type: ignore[union-attr]
    assert buckets == ["+Inf", "0.005"]
    provider.shutdown()


def test_no_exemplars_outside_a_span() -> None:
    ep = PrometheusEndpoint("127.0.0.1", 0)
    provider = MeterProvider(metric_readers=[ep], views=histogram_views())
    TradingMeters(provider).risk_check_duration.record(0.003)
    assert exemplar_lines(openmetrics(ep)) == []
    provider.shutdown()


# --- formats and HTTP ---------------------------------------------------------------------


def test_plain_text_when_openmetrics_is_not_asked(endpoint: PrometheusEndpoint) -> None:
    body, ctype = endpoint.scrape("text/plain")
    text = body.decode()
    assert ctype == TEXT_CONTENT_TYPE
    assert "# EOF" not in text and exemplar_lines(text) == []
    assert "# TYPE trading_orders_total counter" in text


def test_bucket_bounds_are_spelled_like_the_collector(endpoint: PrometheusEndpoint) -> None:
    # client_golang, which the collector uses: le="1.0" in OpenMetrics, le="1" in text.
    text = openmetrics(endpoint)
    assert text.endswith("# EOF\n")
    assert 'le="1.0"' in text and 'le="0.25"' in text and 'le="+Inf"' in text
    assert 'le="1"' not in text
    plain = endpoint.scrape(None)[0].decode()
    assert 'le="1"' in plain and 'le="0.25"' in plain and 'le="1.0"' not in plain


def test_same_name_from_two_scopes_is_one_family() -> None:
    ep = PrometheusEndpoint("127.0.0.1", 0)
    provider = MeterProvider(metric_readers=[ep])
    for scope in ("a", "b"):
        provider.get_meter(scope).create_counter("jobs", unit="{job}").add(1)
    text = openmetrics(ep)
    assert text.count("# TYPE jobs counter") == 1
    [fam] = [f for f in parse_openmetrics(text) if f.name == "jobs"]
    assert {s.labels["otel_scope_name"] for s in fam.samples} == {"a", "b"}
    provider.shutdown()


def test_http_endpoint_negotiates_and_releases_its_port(endpoint: PrometheusEndpoint) -> None:
    endpoint.start()
    url = f"http://127.0.0.1:{endpoint.port}/metrics"
    req = urllib.request.Request(url, headers={"Accept": OM_ACCEPT})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.headers["Content-Type"] == OPENMETRICS_CONTENT_TYPE
        assert resp.read().decode().endswith("# EOF\n")
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.headers["Content-Type"] == TEXT_CONTENT_TYPE
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/nope", timeout=5)
    assert err.value.code == 404
    err.value.close()
    endpoint.shutdown()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)


@pytest.mark.parametrize("om", [True, False], ids=["openmetrics", "text"])
def test_label_values_and_help_are_escaped(om: bool) -> None:
    ep = PrometheusEndpoint("127.0.0.1", 0)
    provider = MeterProvider(metric_readers=[ep])
    meter = provider.get_meter("t")
    nasty = 'a "quoted" \\ back\nslash'
    meter.create_counter("jobs", description='help with "quotes"\nand lines').add(1, {"v": nasty})
    meter.create_histogram("waits", unit="s").record(0.3, {"v": nasty})
    body, _ = ep.scrape(OM_ACCEPT if om else None)
    parse = parse_openmetrics if om else parse_text
    families = {f.name: f for f in parse(body.decode())}
    assert families["jobs"].samples[0].labels["v"] == nasty
    assert {s.labels["v"] for s in families["waits_seconds"].samples} == {nasty}
    provider.shutdown()


@pytest.mark.parametrize("om", [True, False], ids=["openmetrics", "text"])
def test_bad_text_is_served_as_fffd_beside_the_good_series(
    om: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # A lone surrogate (surrogateescape decoding of a bad byte) cannot be UTF-8 encoded;
    # it used to fail the whole scrape with a 500.
    from opentelemetry.sdk.resources import Resource

    ep = PrometheusEndpoint("127.0.0.1", 0)
    resource = Resource({"service.name": "gw", "team": "desk\udcff1"})
    provider = MeterProvider(metric_readers=[ep], resource=resource, views=histogram_views())
    meter = provider.get_meter("t")
    jobs = meter.create_counter("jobs", description="help \ud800")
    jobs.add(1, {"v": "good"})
    jobs.add(1, {"v\udc00": "bad \ud800 value", "list": ["a\udfff", "b"]})
    with TracerProvider().get_tracer("t").start_as_current_span("s"):
        meter.create_histogram("waits", unit="s").record(0.3, {"v": "x\ud800"})
    with caplog.at_level(logging.WARNING, "otel.exporters"):
        body, _ = ep.scrape(OM_ACCEPT if om else None)
    text = body.decode("utf-8")  # strict: the body is valid UTF-8
    families = {f.name: f for f in (parse_openmetrics if om else parse_text)(text)}
    labels = [s.labels for s in families["jobs"].samples if s.name.startswith("jobs")]
    assert {"v": "good", "otel_scope_name": "t"} in labels
    assert {"v_": "bad \ufffd value", "list": "[a\ufffd,b]", "otel_scope_name": "t"} in labels
    assert families["jobs"].documentation == "help \ufffd"
    assert "desk\ufffd1" in text
    waits = [s for s in families["waits_seconds"].samples if s.labels.get("v") == "x\ufffd"]
    assert waits
    if om:  # the exemplar is still on its bucket
        assert [s for s in waits if s.exemplar is not None]
    assert len([r for r in caplog.records if r.name == "otel.exporters"]) <= 1
    provider.shutdown()
