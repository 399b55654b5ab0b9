"""Pipeline contract tests: fixed OTLP payloads through the shipped configs.

Tempo and Loki are played by a second collector (collector/fixtures/recorder.yaml) that
writes exactly what it receives to files; the assertions read those files.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from tests.fixtures import collector_payloads as p
from tests.fixtures.collector import (
    RECORDER_CONFIG,
    TOKEN,
    CollectorFactory,
    recorder_env,
    wait_until,
)
from trading_otel_tools.procs import free_port
from trading_otel_tools.servers.collector import CollectorServer
from trading_otel_tools.servers.prometheus import PrometheusServer, scrape_config

pytestmark = pytest.mark.integration

T = TypeVar("T")
Ids = dict[str, list[str]]
Local = tuple[CollectorServer, Ids]
Gateway = tuple[CollectorServer, CollectorServer, Ids]

FAST, SLOW, ERRORS, REJECTED = 200, 4, 4, 4
BASELINE_PERCENT = 25
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


def no_secret_in(*files: Path) -> None:
    for file in files:
        text = file.read_text()
        for secret in p.SECRETS:
            assert secret not in text, f"{secret!r} leaked into {file}"


def send_order_mix(base_url: str, token: str | None = None) -> dict[str, list[str]]:
    """Send the fixed trace mix and one log per trace; returns trace ids (hex) by kind."""
    ids: dict[str, list[str]] = {}
    counts: dict[p.Kind, int] = {"fast": FAST, "slow": SLOW, "error": ERRORS, "rejected": REJECTED}
    for kind, count in counts.items():
        labels = [f"{kind}-{i}" for i in range(count)]
        spans = [s for i, lb in enumerate(labels) for s in p.order_spans(lb, kind, secret=i < 2)]
        p.post(base_url, p.traces_request(spans), token)
        p.post(base_url, p.logs_request(p.log_record(lb, secret=True) for lb in labels), token)
        ids[kind] = [p.trace_id(lb).hex() for lb in labels]
    return ids


def at_least(items: list[T], n: int) -> list[T] | None:
    return items if len(items) >= n else None


def containing(text: str, needle: str) -> str | None:
    return text if needle in text else None


def scrape(url: str) -> str:
    resp = httpx.get(url, headers=OPENMETRICS)
    resp.raise_for_status()
    assert resp.headers["content-type"].startswith("application/openmetrics-text")
    return resp.text


def exemplar_trace_ids(text: str, series: str) -> set[str]:
    pattern = re.compile(rf'^{series}\{{.*\}} \S+ # \{{.*trace_id="([0-9a-f]{{32}})"', re.M)
    return set(pattern.findall(text))


# --- local.yaml: the embedded default ------------------------------------------------


@pytest.fixture(scope="module")
def local(collector_factory: CollectorFactory) -> Local:
    server = collector_factory(
        "local", "local", env={"TRADING_OTEL_COLLECTOR_BATCH_TIMEOUT": "200ms"}
    )
    ids = send_order_mix(server.otlp_http_url)
    p.post(server.otlp_http_url, p.latency_metrics("slow-0"))
    return server, ids


def test_local_writes_every_span_without_secrets(local: Local) -> None:
    server, ids = local
    traces = server.telemetry_dir / "traces.jsonl"
    want = {t for kind in ids.values() for t in kind}
    got = wait_until(
        lambda: (s := {span["traceId"] for _, span in p.spans_in(traces)}) >= want and s,
        20, "all traces in traces.jsonl",
    )  # fmt: skip
    assert got == want  # the local collector does not sample
    no_secret_in(traces)
    placed = [span for _, span in p.spans_in(traces) if span["name"] == "place_order"]
    masked = [p.attrs(s) for s in placed if "trading.api_key" in p.attrs(s)]
    assert masked and all(a["trading.api_key"] == "****" for a in masked)
    assert all(
        a["trading.order.outcome"] in ("filled", "rejected", "error") for a in map(p.attrs, placed)
    )


def test_local_logs_keep_service_and_trace_context(local: Local) -> None:
    server, ids = local
    logs = server.telemetry_dir / "logs.jsonl"
    total = sum(len(v) for v in ids.values())
    records = wait_until(
        lambda: at_least(list(p.logs_in(logs)), total), 20, "all logs in logs.jsonl"
    )
    no_secret_in(logs)
    for resource, rec in records:
        label = p.attrs(rec)["log.label"]
        assert p.attrs(resource)["service.name"] == p.SERVICE
        assert rec["traceId"] == p.trace_id(label).hex()
        assert rec["spanId"] == p.span_id(label).hex()
        assert "****" in rec["body"]["stringValue"]


def test_local_prometheus_endpoint_shows_exemplars(local: Local) -> None:
    server, _ = local
    series = "trading_order_latency_seconds_bucket"
    text = wait_until(
        lambda: containing(scrape(server.prometheus_url), series), 20, f"{series} exported"
    )
    assert exemplar_trace_ids(text, "trading_order_latency_seconds_bucket") == {
        p.trace_id("slow-0").hex()
    }
    bucket = next(
        line
        for line in text.splitlines()
        if line.startswith("trading_order_latency_seconds_bucket")
    )
    assert f'service_name="{p.SERVICE}"' in bucket and 'job="trading/' in bucket
    assert "process_pid" not in text  # only service.* resource attributes become labels


# --- gateway.yaml: auth, span metrics, tail sampling, Tempo/Loki fan-out --------------


@pytest.fixture(scope="module")
def gateway(collector_factory: CollectorFactory) -> Gateway:
    recorder = collector_factory("recorder", [RECORDER_CONFIG])
    env = recorder_env(recorder) | {"TRADING_OTEL_BASELINE_SAMPLE_PERCENT": str(BASELINE_PERCENT)}
    server = collector_factory("gateway", "gateway", env=env)
    ids = send_order_mix(server.otlp_http_url, TOKEN)
    return server, recorder, ids


def test_gateway_requires_the_bearer_token(gateway: Gateway) -> None:
    server = gateway[0]
    request = p.traces_request(p.order_spans("unauthenticated", "error"))
    for token in (None, "wrong-token"):
        with pytest.raises(httpx.HTTPStatusError) as err:
            p.post(server.otlp_http_url, request, token)
        assert err.value.response.status_code == 401


def test_gateway_tail_sampling_keeps_what_matters(gateway: Gateway) -> None:
    _, recorder, ids = gateway
    traces = recorder.telemetry_dir / "traces.jsonl"
    must_keep = set(ids["slow"] + ids["error"] + ids["rejected"])
    kept = wait_until(
        lambda: (s := {span["traceId"] for _, span in p.spans_in(traces)}) >= must_keep and s,
        30, "slow, error and rejected traces at the Tempo stand-in",
    )  # fmt: skip
    # Every trace was sent at once, so decisions fall together; one more decision period
    # (1 s) plus a batch lets any straggling batch of fast traces land before counting.
    time.sleep(2)
    kept = {span["traceId"] for _, span in p.spans_in(traces)}
    fast_kept = len(kept & set(ids["fast"]))
    print(f"baseline {BASELINE_PERCENT}%: kept {fast_kept}/{FAST} fast traces")
    # Binomial(200, 0.25): mean 50, sd 6.1; the trace ids are fixed so this is stable.
    expected = FAST * BASELINE_PERCENT / 100
    assert abs(fast_kept - expected) <= 4 * (expected * (1 - BASELINE_PERCENT / 100)) ** 0.5
    assert kept <= must_keep | set(ids["fast"])
    # Whole traces are kept: both spans of each kept trace arrive.
    per_trace: dict[str, int] = {}
    for _, span in p.spans_in(traces):
        per_trace[span["traceId"]] = per_trace.get(span["traceId"], 0) + 1
    assert set(per_trace.values()) == {2}
    no_secret_in(traces)


def test_gateway_logs_reach_loki_with_context(gateway: Gateway) -> None:
    _, recorder, ids = gateway
    logs = recorder.telemetry_dir / "logs.jsonl"
    total = sum(len(v) for v in ids.values())
    records = wait_until(
        lambda: at_least(list(p.logs_in(logs)), total),
        30,
        "every log at the Loki stand-in (/otlp/v1/logs)",
    )
    assert len(records) == total  # logs are never sampled
    no_secret_in(logs)
    for resource, rec in records:
        label = p.attrs(rec)["log.label"]
        assert p.attrs(resource)["service.name"] == p.SERVICE
        assert (rec["traceId"], rec["spanId"]) == (p.trace_id(label).hex(), p.span_id(label).hex())


def test_gateway_span_metrics_count_every_span_with_exemplars(
    gateway: Gateway,
) -> None:
    server, _, ids = gateway

    def calls() -> str | None:
        text = scrape(server.prometheus_url)
        return text if "traces_span_metrics_calls_total{" in text else None

    text = wait_until(calls, 30, "span metrics on the gateway's Prometheus endpoint")
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith("traces_span_metrics_calls_total{")
            and 'span_name="place_order"' in line
        ):
            total += float(line.split("}", 1)[1].split()[0])
    # Computed before sampling: every order is counted, not just the sampled ones.
    assert total == sum(len(v) for v in ids.values())
    assert 'trading_order_outcome="rejected"' in text

    # The connector attaches exemplars only to the flush that follows the spans (then
    # clears them), so send a fresh trace and look right after the next flush.
    sent: list[str] = []

    def exemplars() -> set[str]:
        label = f"exemplar-{len(sent)}"
        p.post(server.otlp_http_url, p.traces_request(p.order_spans(label, "slow")), TOKEN)
        sent.append(p.trace_id(label).hex())
        time.sleep(1.2)
        found = exemplar_trace_ids(
            scrape(server.prometheus_url), "traces_span_metrics_duration_seconds_bucket"
        )
        return found & set(sent)

    assert wait_until(exemplars, 20, "an exemplar on traces_span_metrics_duration_seconds")


# --- remote-write.yaml: metrics and exemplars pushed into a real Prometheus 2.42 ---------


def test_remote_write_reaches_prometheus(
    collector_factory: CollectorFactory, server_root: Path
) -> None:
    prometheus = PrometheusServer(
        server_root / "collector-remote-write-prometheus", free_port(), scrape_config({})
    ).start()
    try:
        env = {
            "TRADING_OTEL_GATEWAY_TOKEN": TOKEN,
            "TRADING_OTEL_PROM_REMOTE_WRITE_URL": f"{prometheus.url}/api/v1/write",
            "TRADING_OTEL_COLLECTOR_BATCH_TIMEOUT": "200ms",
        }
        gateway = collector_factory("gateway-rw", "gateway-remote-write", env=env)
        p.post(gateway.otlp_http_url, p.latency_metrics("rw-0"), TOKEN)
        series = wait_until(
            lambda: prometheus.query('trading_order_latency_seconds_bucket{le="0.25"}'),
            30, "trading_order_latency_seconds_bucket written into Prometheus",
        )  # fmt: skip
        labels = series[0]["metric"]
        assert labels["service_name"] == p.SERVICE and labels["outcome"] == "filled"
        assert float(series[0]["value"][1]) == 2  # cumulative: buckets 0.01 and 0.25
        stored = wait_until(
            lambda: prometheus.query_exemplars("trading_order_latency_seconds_bucket"),
            10, "exemplars stored by Prometheus from remote write",
        )  # fmt: skip
        trace_ids = {e["labels"]["trace_id"] for s in stored for e in s["exemplars"]}
        assert trace_ids == {p.trace_id("rw-0").hex()}
        gateway.stop()
    finally:
        prometheus.stop()
