"""Secret canaries through the real local stack: nothing the collector wrote holds them.

One stack (Postgres, Redis, broker, market data, signal service, gateway, the local-role
collector, Prometheus) on free ports, with API keys on. Each test plants a unique canary
in one place, finds its request by the trace id it sent in ``traceparent``, and checks
every sink the collector writes: the trace file, the log file and its Prometheus
endpoint (what Prometheus scrapes). Names (parameters, columns, JSON keys) must remain.

Two layers are covered:

* the library, in the services: query strings (``url.query``), headers, request bodies,
  SQL, exception messages, log messages (each proven by a name only the library masks,
  ``EXTRA_PARAM``, where the collector would mask the others too);
* the collector, for older clients that send raw OTLP with the canaries unmasked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from opentelemetry.instrumentation.utils import suppress_instrumentation

from otel._internal.sanitize import MASK
from tests.fixtures import collector_payloads as p
from tests.fixtures import secret_canaries as raw
from tests.fixtures.collector import wait_until
from trading_otel_tools.servers.prometheus import PrometheusServer
from trading_otel_tools.stack import StackConfig, down, up

pytestmark = pytest.mark.e2e

STACK = ("postgres", "redis", "broker-simulator", "market-data", "signal-service",
         "execution-gateway", "collector", "prometheus")  # fmt: skip
API_KEY = "e2e-canary-stack-key-0001"
GATEWAY = "execution-gateway"
#: The account the gateway trades for: stored and traced only as its hash.
ACCOUNT = "ACCTCANARYSQL7f3a"
#: Configured on top of the built-in list; the collector's pattern does not know it, so a
#: masked value proves the library masked it.
EXTRA_PARAM = "account_ref"
ENV = {
    "TRADING_OTEL_REDACT_QUERY_PARAMS": EXTRA_PARAM,
    "TRADING_OTEL_ACCOUNT": ACCOUNT,
    # Ship spans and logs every 0.5 s instead of every 5 s / 1 s: a faster test.
    "OTEL_BSP_SCHEDULE_DELAY": "500",
    "OTEL_BLRP_SCHEDULE_DELAY": "500",
}
Span = dict[str, Any]


@pytest.fixture(scope="module")
def stack(server_root: Path, collector_binary: Path) -> Iterator[StackConfig]:
    config = replace(
        StackConfig(server_root / "secret-canaries", only=STACK, api_key=API_KEY)
        .with_free_ports(),
        ready_timeout_s=90,
    )  # fmt: skip
    try:
        # The services inherit this process's environment (tools/trading_otel_tools/procs.py), so
        # the settings under test reach them the way a deployment sets them.
        with pytest.MonkeyPatch.context() as mp:
            for key, value in ENV.items():
                mp.setenv(key, value)
            up(config, install=False)
        yield config
    finally:
        down(config)


# --- helpers ------------------------------------------------------------------------


def trace_of(label: str) -> str:
    return hashlib.sha256(f"canary:{label}".encode()).hexdigest()[:32]


def traceparent(label: str) -> dict[str, str]:
    return {"traceparent": f"00-{trace_of(label)}-{'ab' * 8}-01"}


def call(stack: StackConfig, service: str, method: str, path: str, label: str,
         headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:  # fmt: skip
    all_headers = {**stack.auth_headers(), **traceparent(label), **(headers or {})}
    # httpx may be instrumented in this process by another test module; its client span
    # would replace our traceparent, and the request could not be found by its trace id.
    with suppress_instrumentation():
        return httpx.request(
            method, stack.url(service) + path, headers=all_headers, timeout=10, **kwargs
        )


def order(label: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": "AAPL", "side": "buy", "quantity": 1,
            "client_order_id": f"canary-{label}", **extra}  # fmt: skip


def spans_of(stack: StackConfig, label: str, service: str | None = None) -> list[Span]:
    trace = trace_of(label)
    return [
        s
        for res, s in p.spans_in(stack.telemetry_dir / "traces.jsonl")
        if s["traceId"] == trace and service in (None, p.attrs(res).get("service.name"))
    ]


def server_span(stack: StackConfig, label: str, service: str, path: str) -> Span:
    """Wait for ``service``'s server span of request ``label`` (then its trace is out)."""

    def find() -> Span | None:
        for s in spans_of(stack, label, service):
            if s.get("kind") == 2 and p.attrs(s).get("url.path") == path:
                return s
        return None

    return wait_until(find, 30, f"the {service} server span of {label!r} in traces.jsonl")


def logs_of(stack: StackConfig, label: str) -> list[Span]:
    trace = trace_of(label)
    logs = stack.telemetry_dir / "logs.jsonl"
    return [r for _, r in p.logs_in(logs) if r.get("traceId") == trace]


def collector_scrape(stack: StackConfig) -> str:
    return httpx.get(f"http://127.0.0.1:{stack.port('collector-prometheus')}/metrics").text


def assert_absent(stack: StackConfig, *canaries: str) -> None:
    """No canary in the trace file, the log file or the collector's Prometheus endpoint."""
    sinks = {
        "traces.jsonl": (stack.telemetry_dir / "traces.jsonl").read_text(),
        "logs.jsonl": (stack.telemetry_dir / "logs.jsonl").read_text()
        if (stack.telemetry_dir / "logs.jsonl").exists()
        else "",
        "the collector's Prometheus endpoint": collector_scrape(stack),
    }
    leaks = [(c, where) for c in canaries for where, text in sinks.items() if c in text]
    assert not leaks, f"canaries leaked: {leaks}"


# --- library layer: the services ----------------------------------------------------


def test_query_string_values_are_masked_names_kept(stack: StackConfig) -> None:
    c1, c2, c3, c4 = "QSCANARY1a", "QSCANARY2b", "QSCANARY3c", "QSCANARY4d"
    query = f"api_key={c1}&token={c2}&{EXTRA_PARAM}={c3}&api%5Fkey={c4}&qty=5"
    resp = call(stack, GATEWAY, "POST", f"/api/v1/orders?{query}", "query",
                json=order("query"))  # fmt: skip
    assert resp.status_code < 500, resp.text
    span = server_span(stack, "query", GATEWAY, "/api/v1/orders")
    assert p.attrs(span)["url.query"] == (
        f"api_key={MASK}&token={MASK}&{EXTRA_PARAM}={MASK}&api_key={MASK}&qty=5"
    )
    assert_absent(stack, c1, c2, c3, c4)


def test_headers_never_reach_telemetry(stack: StackConfig) -> None:
    canaries = {"Authorization": "HDRCANARY1e", "Cookie": "HDRCANARY2f", "X-Api-Key": "HDRCANARY3a"}
    headers = {
        "Authorization": f"Bearer {canaries['Authorization']}",  # a wrong key: 401
        "Cookie": f"session={canaries['Cookie']}",
        "X-Api-Key": canaries["X-Api-Key"],
    }
    resp = call(stack, GATEWAY, "POST", "/api/v1/orders", "headers", headers,
                json=order("headers"))  # fmt: skip
    assert resp.status_code == 401
    span = server_span(stack, "headers", GATEWAY, "/api/v1/orders")
    assert p.attrs(span)["http.response.status_code"] == "401"  # OTLP JSON: int64 as text
    # The refusal is logged inside the request's span, without the presented key.
    refused = wait_until(lambda: logs_of(stack, "headers"), 30, "the 'refused' log line")
    assert "invalid API key" in refused[0]["body"]["stringValue"]
    assert_absent(stack, *canaries.values())


def test_request_body_fields_and_malformed_bodies(stack: StackConfig) -> None:
    extra = order("body", password="BODYCANARY1b", api_key="BODYCANARY2c")
    resp = call(stack, GATEWAY, "POST", "/api/v1/orders", "body", json=extra)
    assert resp.status_code == 422 and "password" in resp.text  # the client is told which
    malformed = '{"symbol": "AAPL", "token": "BODYCANARY3d", "side": '
    resp = call(stack, GATEWAY, "POST", "/api/v1/orders", "malformed",
                {"Content-Type": "application/json"}, content=malformed)  # fmt: skip
    assert resp.status_code == 422
    for label in ("body", "malformed"):
        span = server_span(stack, label, GATEWAY, "/api/v1/orders")
        assert p.attrs(span)["http.response.status_code"] == "422"
    assert_absent(stack, "BODYCANARY1b", "BODYCANARY2c", "BODYCANARY3d")


def test_sql_carries_placeholders_and_the_account_only_as_a_hash(stack: StackConfig) -> None:
    client_id = "canary-sql-SQLCANARY5e"
    resp = call(stack, GATEWAY, "POST", "/api/v1/orders", "sql",
                json=order("sql", client_order_id=client_id))  # fmt: skip
    assert resp.status_code < 500, resp.text
    server_span(stack, "sql", GATEWAY, "/api/v1/orders")
    db = [s for s in spans_of(stack, "sql") if "db.query.text" in p.attrs(s)]
    texts = [p.attrs(s)["db.query.text"] for s in db]
    assert any("client_order_id = $1" in t for t in texts), texts  # column names kept
    assert any(t.startswith("INSERT INTO orders") for t in texts), texts
    # The client's order id is the order's business key (trading.order.client_id), but
    # no database span repeats it: statements hold placeholders only.
    assert not [t for t in texts if "SQLCANARY5e" in t]
    assert not [s for s in db if "SQLCANARY5e" in json.dumps(s)]
    assert_absent(stack, ACCOUNT)


def test_exception_messages_keep_names_not_values(stack: StackConfig) -> None:
    # A model registry entry a client of Redis wrote badly: reloading it fails with a
    # message that quotes the whole entry, canaries included.
    # The collector does not know EXTRA_PARAM: its value masked proves the library did it,
    # on the service span's exception event and status, before export.
    bad = {"version": "token=EXCCANARY6f", "window": 1, "threshold": 0.5,
           "published_at": 0, "api_key": "EXCCANARY7a", EXTRA_PARAM: "EXCCANARY8e"}  # fmt: skip
    client = redis.Redis.from_url(stack.redis_url)
    client.set("model:signal", json.dumps(bad))
    try:
        resp = call(stack, "signal-service", "POST", "/api/v1/model/reload", "exception")
        assert resp.status_code == 500
        span = server_span(stack, "exception", "signal-service", "/api/v1/model/reload")
        (event,) = [e for e in span.get("events", []) if e["name"] == "exception"]
        assert p.attrs(event)["exception.type"] == "ValueError"
        # The service's own model.reload span recorded the raw message and traceback.
        reload = wait_until(
            lambda: [s for s in spans_of(stack, "exception") if s["name"] == "model.reload"],
            30, "the model.reload span",
        )[0]  # fmt: skip
        message = p.attrs(reload["events"][0])["exception.message"]
        assert f'"api_key": "{MASK}"' in message and f"token={MASK}" in message
        library = f'"{EXTRA_PARAM}": "{MASK}"'
        assert library in message
        assert library in p.attrs(reload["events"][0])["exception.stacktrace"]
        assert library in reload["status"]["message"]
        # This log line names the exception type only (server_telemetry.py); exception text
        # on log records is covered by tests/unit/test_lib_scrub.py.
        wait_until(lambda: logs_of(stack, "exception"), 30, "the 'request failed' log line")
        assert_absent(stack, "EXCCANARY6f", "EXCCANARY7a", "EXCCANARY8e")
    finally:
        client.delete("model:signal")
        client.close()


def test_log_messages_keep_names_not_values(stack: StackConfig) -> None:
    # A malformed fault flag is logged with its raw value by every service that polls it.
    client = redis.Redis.from_url(stack.redis_url)
    client.set("trading:fault:pg_slow",
               f"api_key=LOGCANARY8b password: LOGCANARY9c {EXTRA_PARAM}=LOGCANARY0d",
               px=3000)  # fmt: skip
    client.close()

    def fault_logs() -> list[Span]:
        return [r for _, r in p.logs_in(stack.telemetry_dir / "logs.jsonl")
                if "malformed fault flag" in r["body"].get("stringValue", "")]  # fmt: skip

    body = wait_until(fault_logs, 30, "the malformed-fault log line")[0]["body"]["stringValue"]
    assert f"api_key={MASK}" in body and f"password: {MASK}" in body
    assert f"{EXTRA_PARAM}={MASK}" in body  # the library's mask: the collector's misses it
    assert_absent(stack, "LOGCANARY8b", "LOGCANARY9c", "LOGCANARY0d")


# --- collector layer: an older client sending raw OTLP ---------------------------------


def test_raw_otlp_from_an_old_client_is_masked_by_the_collector(stack: StackConfig) -> None:
    otlp = f"http://127.0.0.1:{stack.port('otlp-http')}"
    p.post(otlp, p.traces_request(raw.spans("old-client"), service="old-client"))
    p.post(otlp, p.logs_request(raw.logs(), service="old-client"))
    p.post(otlp, raw.metrics())
    traces = stack.telemetry_dir / "traces.jsonl"
    trace = p.trace_id("old-client").hex()
    span = wait_until(
        lambda: next((s for _, s in p.spans_in(traces) if s["traceId"] == trace), None),
        30, "the old client's span",
    )  # fmt: skip
    for key in ("url.query", "url.query.encoded", "url.full"):
        assert p.attrs(span)[key] == raw.EXPECTED[key]
    assert span["status"]["message"] == raw.EXPECTED["status"]
    logs = stack.telemetry_dir / "logs.jsonl"
    wait_until(
        lambda: [r for _, r in p.logs_in(logs) if p.attrs(r).get("log.label") == "canary-map"],
        30, "the old client's logs",
    )  # fmt: skip
    prom = PrometheusServer(stack.var_dir / "prometheus", stack.port("prometheus"), {})
    series = wait_until(
        lambda: prom.query('{__name__=~"legacy_requests.*", http_target!=""}'), 60,
        "legacy_requests scraped by Prometheus",
    )  # fmt: skip
    assert series[0]["metric"]["http_target"] == raw.EXPECTED["metric"]
    assert_absent(stack, *raw.CANARY.values())
