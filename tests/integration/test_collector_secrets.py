"""The collector masks secret name=value pairs that older clients send unmasked.

Raw OTLP with a canary in ``url.query``, ``url.full``, a span event, a span status, a log
body (string and map), a log attribute and a metric data point attribute goes through the
real local-role collector; what it exported (trace and log files, the Prometheus
endpoint) must keep the parameter names and hold none of the canaries.
"""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures import collector_payloads as p
from tests.fixtures.collector import CollectorFactory, wait_until
from tests.fixtures.secret_canaries import CANARY, EXPECTED, logs, metrics, spans
from trading_otel_tools.servers.collector import CollectorServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local(collector_factory: CollectorFactory) -> CollectorServer:
    server = collector_factory(
        "secrets", "local", env={"TRADING_OTEL_COLLECTOR_BATCH_TIMEOUT": "200ms"}
    )
    p.post(server.otlp_http_url, p.traces_request(spans()))
    p.post(server.otlp_http_url, p.logs_request(logs()))
    p.post(server.otlp_http_url, metrics())
    return server


def assert_no_canary(text: str, where: str) -> None:
    leaked = {place: c for place, c in CANARY.items() if c in text}
    assert not leaked, f"canaries leaked into {where}: {leaked}"


def test_span_attributes_events_and_status_keep_names_not_values(local: CollectorServer) -> None:
    traces = local.telemetry_dir / "traces.jsonl"
    _, span = wait_until(lambda: next(p.spans_in(traces), None), 20, "the span in traces.jsonl")
    assert_no_canary(traces.read_text(), "traces.jsonl")
    attrs = p.attrs(span)
    for key in ("url.query", "url.query.encoded", "url.full"):
        assert attrs[key] == EXPECTED[key]
    assert p.attrs(span["events"][0])["exception.message"] == EXPECTED["event"]
    assert span["status"]["message"] == EXPECTED["status"]


def test_log_bodies_and_attributes_keep_names_not_values(local: CollectorServer) -> None:
    path = local.telemetry_dir / "logs.jsonl"
    records = wait_until(
        lambda: (r := list(p.logs_in(path))) and len(r) >= 2 and r, 20, "both logs"
    )
    assert_no_canary(path.read_text(), "logs.jsonl")
    by_label = {p.attrs(rec)["log.label"]: rec for _, rec in records}
    text = by_label["canary-string"]
    assert text["body"]["stringValue"] == EXPECTED["log.body"]
    assert p.attrs(text)["http.target"] == EXPECTED["log.attribute"]
    body_map = by_label["canary-map"]["body"]["kvlistValue"]["values"]
    assert p.attrs({"attributes": body_map})["request"] == EXPECTED["log.body.map"]


def test_metric_attributes_keep_names_not_values(local: CollectorServer) -> None:
    def scraped() -> str | None:
        text = httpx.get(local.prometheus_url, timeout=5).text
        return text if "legacy_requests" in text else None

    text = wait_until(scraped, 20, "legacy_requests on the Prometheus endpoint")
    assert_no_canary(text, "the Prometheus endpoint")
    assert f'http_target="{EXPECTED["metric"]}"' in text
