"""Scale-out: two agents route traces by trace id (load_balancing) to two real gateways.

Chain: test load -> agent x2 (common + agent + the k8s overlay's load_balancing exporter,
with a static resolver and a test CA instead of the cluster DNS name and the cluster CA)
-> gateway A and B (common + gateway, each with its own recorder as Tempo)
-> recorder A and B. Each trace's spans are spread over several requests and both
agents, so only routing by trace id keeps a trace whole. Spans are counted by id at the
recorders; span metrics are read from each gateway's Prometheus endpoint and from a real
Prometheus scraping both. The second test SIGKILLs gateway B mid-load and prints what
arrived where (docs/collector.md, "Scale-out", quotes the figures).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures import collector_payloads as p
from tests.fixtures.collector import (
    RECORDER_CONFIG,
    TOKEN,
    CollectorFactory,
    recorder_env,
    wait_until,
)
from tests.fixtures.prometheus import PrometheusFactory
from trading_otel_tools import home
from trading_otel_tools.servers.collector import CollectorServer, role_files

pytestmark = pytest.mark.integration

AGENT_K8S = home.path("deploy", "k8s", "config", "agent-k8s.yaml")
SPANS = 4  # spans per trace: a root and three children, one per request round
TRACES = 60  # per kind (error, ok) in the routing test
ERROR_SPAN = SPANS - 1  # the error status is on the last span, sent last
CALLS = "traces_span_metrics_calls"


@dataclass(frozen=True)
class ScaleOut:
    gateways: list[CollectorServer]  # A, B
    recorders: list[CollectorServer]  # Tempo stand-ins, one per gateway
    agents: list[CollectorServer]


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA): gRPC sends the token only on TLS."""
    cert, key = directory / "gateway.crt", directory / "gateway.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _agent_overlay(path: Path, gateways: Sequence[CollectorServer], ca: Path) -> Path:
    """The k8s agent overlay's load_balancing exporter and traces pipeline, verbatim except
    the resolver (static list instead of the headless Service) and TLS (the test CA)."""
    k8s = yaml.safe_load(AGENT_K8S.read_text())
    lb = copy.deepcopy(k8s["exporters"]["load_balancing"])
    lb["resolver"] = {"static": {"hostnames": [g.otlp_grpc_endpoint for g in gateways]}}
    # The test certificate names 127.0.0.1, the address the static list dials: no server
    # name override is needed, only the test CA.
    lb["protocol"]["otlp"]["tls"] = {"ca_file": str(ca)}
    overlay = {
        "exporters": {"load_balancing": lb},
        "service": {"pipelines": {"traces": k8s["service"]["pipelines"]["traces"]}},
    }
    path.write_text(yaml.safe_dump(overlay, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def scaleout(
    collector_factory: CollectorFactory, tmp_path_factory: pytest.TempPathFactory
) -> ScaleOut:
    tmp = tmp_path_factory.mktemp("scaleout")
    cert, key = _certificate(tmp)
    tls = tmp / "gateway-tls.yaml"
    tls.write_text(
        yaml.safe_dump(
            {"receivers": {"otlp": {"protocols": {"grpc": {"tls": {
                "cert_file": str(cert), "key_file": str(key)}}}}}}
        )
    )  # fmt: skip
    recorders, gateways = [], []
    for name in ("a", "b"):
        recorder = collector_factory(f"recorder-{name}", [RECORDER_CONFIG])
        env = recorder_env(recorder) | {
            "TRADING_OTEL_COLLECTOR_INSTANCE": f"gateway-{name}",
            # Only error traces are kept: a trace split over both gateways would show as
            # an error trace missing the spans that went to the gateway without the error.
            "TRADING_OTEL_BASELINE_SAMPLE_PERCENT": "0",
            "TRADING_OTEL_TAIL_DECISION_WAIT": "3s",
        }
        gateway = collector_factory(f"gateway-{name}", [*role_files("gateway"), tls], env=env)
        recorders.append(recorder)
        gateways.append(gateway)
    overlay = _agent_overlay(tmp / "agent-lb.yaml", gateways, cert)
    agents = [
        collector_factory(
            f"agent-{i}",
            [*role_files("agent"), overlay],
            env={
                "TRADING_OTEL_GATEWAY_ENDPOINT": gateways[0].otlp_http_url,
                "TRADING_OTEL_GATEWAY_TOKEN": TOKEN,
                "TRADING_OTEL_COLLECTOR_BATCH_TIMEOUT": "200ms",
            },
        )
        for i in range(2)
    ]
    return ScaleOut(gateways, recorders, agents)


# --- load -------------------------------------------------------------------------------


def _id(label: str, size: int) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:size]


def _spans(label: str, error: bool) -> list[Span]:
    """One trace: a root and SPANS-1 children, 10 ms in all (well under the slow policy)."""
    end = time.time_ns()
    start = end - 10_000_000
    tid = _id(f"trace:{label}", 16)
    spans = []
    for i in range(SPANS):
        failed = error and i == ERROR_SPAN
        spans.append(
            Span(
                trace_id=tid, span_id=_id(f"span:{label}/{i}", 8),
                parent_span_id=_id(f"span:{label}/0", 8) if i else b"",
                name="POST /orders" if i == 0 else f"step-{i}",
                start_time_unix_nano=start + i * 1000, end_time_unix_nano=end - i * 1000,
                status=Status(code=Status.STATUS_CODE_ERROR if failed else Status.STATUS_CODE_OK),
            )
        )  # fmt: skip
    return spans


def _request(spans: Iterable[Span]) -> p.ExportTraceServiceRequest:
    resource = Resource(
        attributes=[KeyValue(key="service.name", value=AnyValue(string_value=p.SERVICE))]
    )
    scope = ScopeSpans(scope=InstrumentationScope(name="scaleout-test"), spans=list(spans))
    return p.ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[scope])]
    )


def send(agents: Sequence[CollectorServer], labels: dict[str, bool], client: httpx.Client) -> None:
    """Send each trace's spans in SPANS rounds, span i of trace t through agent (t+i) % n."""
    traces = [(lb, _spans(lb, err)) for lb, err in labels.items()]
    for i in range(SPANS):
        for a, agent in enumerate(agents):
            batch = [s[i] for t, (_, s) in enumerate(traces) if (t + i) % len(agents) == a]
            if batch:
                p.post(agent.otlp_http_url, _request(batch), client=client)


def trace_hex(label: str) -> str:
    return _id(f"trace:{label}", 16).hex()


def spans_by_trace(recorder: CollectorServer) -> Counter[str]:
    return Counter(
        span["traceId"] for _, span in p.spans_in(recorder.telemetry_dir / "traces.jsonl")
    )


def span_calls(gateway: CollectorServer) -> dict[tuple[str, str], float]:
    """traces_span_metrics_calls_total on one gateway, by (collector_instance_id, status)."""
    text = httpx.get(gateway.prometheus_url).text
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != CALLS:
            continue
        for sample in family.samples:
            if sample.name == CALLS + "_total":
                key = (sample.labels.get("collector_instance_id", ""), sample.labels["status_code"])
                out[key] = out.get(key, 0.0) + sample.value
    return out


def at_least(items: list[dict[str, Any]], n: int) -> list[dict[str, Any]] | None:
    return items if len(items) >= n else None


def dashboard_span_metric_groupings() -> list[list[str]]:
    """The `sum by (...)` labels of every shipped query over span metrics."""
    texts = [f.read_text() for f in home.path("deploy", "grafana").rglob("*") if f.is_file()]
    pattern = re.compile(r"sum by \(([^)]*)\) \(rate\(traces_span_metrics_")
    found = [m.group(1) for text in texts for m in pattern.finditer(text)]
    assert found, "no shipped query over span metrics found"
    return [[label.strip() for label in by.split(",")] for by in found]


def _shape(spans: int) -> str:
    if not spans:
        return "absent"
    if spans == SPANS:
        return "whole"
    return "incomplete" if spans < SPANS else "duplicated"


# --- tests ------------------------------------------------------------------------------


def test_traces_stay_whole_and_span_metrics_do_not_collide(
    scaleout: ScaleOut, prometheus_factory: PrometheusFactory
) -> None:
    labels = {f"route-err-{i}": True for i in range(TRACES)}
    labels |= {f"route-ok-{i}": False for i in range(TRACES)}
    with httpx.Client() as client:
        send(scaleout.agents, labels, client)
    errors = {trace_hex(lb) for lb, err in labels.items() if err}
    oks = {trace_hex(lb) for lb, err in labels.items() if not err}

    def every_error_trace() -> list[Counter[str]] | None:
        seen = [spans_by_trace(r) for r in scaleout.recorders]
        return seen if set().union(*seen) >= errors else None

    wait_until(every_error_trace, 40, "every error trace at the recorders")
    time.sleep(4)  # one more decision period (3 s): stragglers of a split trace would land
    seen = [spans_by_trace(r) for r in scaleout.recorders]
    a, b = (set(s) for s in seen)
    print(f"error traces per gateway: A={len(a & errors)} B={len(b & errors)} of {TRACES}")
    # Routing by trace id: no trace on both gateways, each kept trace whole.
    assert not a & b, f"traces split over both gateways: {sorted(a & b)[:5]}"
    assert a | b == errors, "every error trace kept, and no ok trace (baseline 0 %)"
    assert not (a | b) & oks
    for counts in seen:
        assert set(counts.values()) <= {SPANS}, f"incomplete traces: {counts}"
    assert a and b, "both gateways got a share of the traces"

    # Span metrics: each gateway counts its own share, under its own instance label, and
    # the shares add up to every span sent (counted before sampling).
    total = TRACES * 2 * SPANS

    def all_calls() -> list[dict[tuple[str, str], float]] | None:
        calls = [span_calls(g) for g in scaleout.gateways]
        return calls if sum(v for c in calls for v in c.values()) >= total else None

    calls = wait_until(all_calls, 30, f"{total} span-metric calls over both gateways")
    print(f"span-metric calls per gateway: {[sum(c.values()) for c in calls]}")
    assert sum(v for c in calls for v in c.values()) == total
    for name, gateway_calls, kept in zip("ab", calls, (a, b), strict=True):
        assert {inst for inst, _ in gateway_calls} == {f"gateway-{name}"}
        # Error spans counted on a gateway = error traces that gateway kept (one each).
        assert gateway_calls.get((f"gateway-{name}", "STATUS_CODE_ERROR"), 0) == len(kept)

    # In a real Prometheus scraping both gateways, the new label keeps two writers apart,
    # and the shipped queries' `sum by (...)` (which leaves it out) adds them up again.
    prometheus = prometheus_factory(
        {"gateways": [g.prometheus_url.split("/")[2] for g in scaleout.gateways]}
    )
    instances = wait_until(
        lambda: at_least(prometheus.query(f"count by (collector_instance_id) ({CALLS}_total)"), 2),
        30, "span metrics from both gateways in Prometheus",
    )  # fmt: skip
    assert {s["metric"]["collector_instance_id"] for s in instances} == {"gateway-a", "gateway-b"}
    for by in dashboard_span_metric_groupings():
        assert "collector_instance_id" not in by
        series = prometheus.query(f"sum by ({', '.join(by)}) ({CALLS}_total)")
        assert sum(float(s["value"][1]) for s in series) == total, by


def test_a_gateway_killed_mid_load(scaleout: ScaleOut) -> None:
    """Measured, not asserted beyond what is deterministic: what a dead backend costs."""
    gateway_b = scaleout.gateways[1]
    calls_start = sum(span_calls(scaleout.gateways[0]).values())
    before = {f"kill-before-{i}": True for i in range(40)}
    during = {f"kill-during-{i}": True for i in range(40)}
    with httpx.Client() as client:
        send(scaleout.agents, before, client)
        time.sleep(0.5)  # B holds its share in the tail-sampling window (3 s)
        assert gateway_b.process is not None
        gateway_b.process.stop(sig=signal.SIGKILL)  # no drain
        send(scaleout.agents, during, client)
    time.sleep(8)  # decision wait + batches + a few retries
    sent_before = {trace_hex(lb) for lb in before}
    sent_during = {trace_hex(lb) for lb in during}

    def report(stage: str) -> tuple[Counter[str], Counter[str]]:
        a, b = (spans_by_trace(r) for r in scaleout.recorders)
        for what, ids in (("before the kill", sent_before), ("while B was down", sent_during)):
            seen = {
                name: Counter(_shape(c.get(t, 0)) for t in ids) for name, c in (("A", a), ("B", b))
            }
            missing = sum(1 for t in ids if t not in a and t not in b)
            print(f"{stage}: {len(ids)} error traces sent {what}: {seen}, missing {missing}")
        return a, b

    report("B down")
    gateway_b.start()
    back = time.monotonic()

    def none_missing() -> bool:
        a, b = (spans_by_trace(r) for r in scaleout.recorders)
        return all(t in a or t in b for t in sent_during)

    with contextlib.suppress(pytest.fail.Exception):
        wait_until(none_missing, 30, "the traces sent while B was down")
    time.sleep(4)  # one more decision period for stragglers
    print(f"B back for {time.monotonic() - back:.1f}s")
    a, b = report("B back")
    at_a = [a[t] for t in sent_during if t in a]
    routed_to_a = sum(1 for t in sent_before | sent_during if t in a)
    calls_a = sum(span_calls(scaleout.gateways[0]).values()) - calls_start
    print(
        f"A's share of the traces sent while B was down: {len(at_a)} traces, "
        f"{sum(at_a)} spans recorded for {len(at_a) * SPANS} sent; A's span-metric calls "
        f"{calls_a:.0f} for {routed_to_a * SPANS} spans routed to A"
    )
    assert not set(a) & set(b), "no trace on both gateways"
