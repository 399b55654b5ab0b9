"""Collector roles under bad input: a missing telemetry directory, and invalid UTF-8.

- The local role's file exporters create ``TRADING_OTEL_TELEMETRY_DIR`` when it is
  missing (``create_directory``), so the collector starts and telemetry lands there.
- OTLP strings must be UTF-8, but the receiver does not check. Raw bytes that are not
  UTF-8, in span names, attribute keys and values, log bodies and log attributes, are
  posted beside good records to the local role and to the gateway (whose Tempo and Loki
  are played by the recorder fixture). ``transform/utf8`` turns each bad byte into U+FFFD,
  so every good record arrives on a line that is valid UTF-8 and JSON, and a metric
  point with a bad label value is served (repaired) instead of dropped. Python's protobuf
  refuses such strings, so each payload is encoded with placeholders of the same length,
  whose bytes are then replaced in the serialized request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.fixtures import collector_payloads as p
from tests.fixtures.collector import (
    RECORDER_CONFIG,
    TOKEN,
    CollectorFactory,
    recorder_env,
    wait_until,
)
from trading_otel_tools.servers.collector import CollectorServer

pytestmark = pytest.mark.integration

#: Bad bytes per place: a stray byte pair, a truncated 2-byte sequence and an encoded
#: surrogate (what a lone surrogate becomes with "surrogatepass").
BAD = {
    "value": b"px \xff\xfe q\xc3(r \xed\xa0\x80 s",
    "key": b"key.\xff\xc3(x",
    "name": b"order \xfe\xff ok",
}
#: What the collector makes of them: each invalid byte becomes one U+FFFD.
REPAIRED = {
    "value": "px \ufffd\ufffd q\ufffd(r \ufffd\ufffd\ufffd s",
    "key": "key.\ufffd\ufffd(x",
    "name": "order \ufffd\ufffd ok",
}


def ph(place: str) -> str:
    """The placeholder for ``place``: ASCII, as long as its bad bytes."""
    return f"@{place}@".ljust(len(BAD[place]), "_")


GOOD = 4  # good records beside each bad one


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _crafted(request: Message, places: tuple[str, ...]) -> bytes:
    """``request`` serialized, with the placeholders of ``places`` replaced by bad bytes."""
    raw = request.SerializeToString()
    for place in places:
        bad = BAD[place]
        # Same length, so every protobuf length prefix stays right.
        assert ph(place).encode() in raw, place
        raw = raw.replace(ph(place).encode(), bad)
    return raw


def _post(server: CollectorServer, path: str, body: bytes, token: str | None = None) -> None:
    headers = {"Content-Type": "application/x-protobuf"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    resp = httpx.post(server.otlp_http_url + path, content=body, headers=headers)
    resp.raise_for_status()  # accepted whole: the receiver does not check UTF-8


def _assert_strict_utf8(path: Path) -> None:
    # A strict decode of the whole file: one bad byte anywhere raises here.
    path.read_bytes().decode("utf-8")


def _no_bad_lines(path: Path) -> None:
    """Fail at once (not at the deadline) if a written line is not UTF-8 JSON."""
    skipped = p.read_export(path).skipped
    if skipped:
        pytest.fail(
            f"{skipped} line(s) of {path.name} are not UTF-8 JSON: their good records are lost"
        )


@pytest.fixture(scope="module")
def local(
    collector_factory: CollectorFactory, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CollectorServer, Path]:
    """The local role, told to write telemetry into a directory that does not exist."""
    telemetry = tmp_path_factory.mktemp("bad-input") / "not" / "created" / "yet"
    assert not telemetry.parent.exists()
    server = collector_factory(
        "bad-input",
        "local",
        env={
            "TRADING_OTEL_TELEMETRY_DIR": str(telemetry),
            "TRADING_OTEL_COLLECTOR_BATCH_TIMEOUT": "200ms",
        },
    )
    return server, telemetry


@dataclass(frozen=True)
class Target:
    """A role under test: where to send, with which token, and where its output lands."""

    server: CollectorServer
    out: Path
    token: str | None = None


@pytest.fixture(scope="module", params=["local", "gateway"])
def target(request: pytest.FixtureRequest, collector_factory: CollectorFactory) -> Target:
    """The local role's files, or what the gateway exports (to the recorder, as Tempo/Loki)."""
    if request.param == "local":
        server, telemetry = request.getfixturevalue("local")
        return Target(server, telemetry)
    recorder = collector_factory("bad-input-recorder", [RECORDER_CONFIG])
    env = recorder_env(recorder) | {"TRADING_OTEL_BASELINE_SAMPLE_PERCENT": "100"}
    gateway = collector_factory("bad-input-gateway", "gateway", env=env)
    return Target(gateway, recorder.telemetry_dir, TOKEN)


def test_missing_telemetry_directory_is_created_and_telemetry_lands_in_it(
    local: tuple[CollectorServer, Path],
) -> None:
    server, telemetry = local
    assert telemetry.is_dir()  # the exporters made it at startup
    assert server.telemetry_dir != telemetry  # the launcher made only its own default
    label = "missing-dir"
    p.post(server.otlp_http_url, p.traces_request(p.order_spans(label, "fast")))
    wait_until(
        lambda: any(s["traceId"] == p.trace_id(label).hex()
                    for _, s in p.spans_in(telemetry / "traces.jsonl")),
        20, "the span in the created directory",
    )  # fmt: skip


def _spans(label: str) -> list[Span]:
    end = time.time_ns()
    spans = []
    for i in range(GOOD + 1):
        bad = i == GOOD // 2
        attrs = [_kv("good.index", str(i)), _kv("trading.symbol", "AAPL")]
        if bad:
            attrs += [_kv("bad.value", ph("value")), _kv(ph("key"), "fine")]
        spans.append(Span(
            trace_id=p.trace_id(f"{label}-{i}"), span_id=p.span_id(f"{label}-{i}"),
            name=ph("name") if bad else f"good span {i}", kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=end - 1_000_000, end_time_unix_nano=end, attributes=attrs,
        ))  # fmt: skip
    return spans


def test_invalid_utf8_in_spans_is_repaired_and_every_good_span_arrives(target: Target) -> None:
    label = "bad-utf8-spans"
    body = _crafted(p.traces_request(_spans(label)), ("value", "key", "name"))
    _post(target.server, "/v1/traces", body, target.token)
    path = target.out / "traces.jsonl"
    wanted = {p.trace_id(f"{label}-{i}").hex(): i for i in range(GOOD + 1)}

    def arrived() -> dict[int, dict[str, Any]] | None:
        _no_bad_lines(path)
        got = {wanted[s["traceId"]]: s for _, s in p.spans_in(path) if s["traceId"] in wanted}
        return got if len(got) == len(wanted) else None

    spans = wait_until(arrived, 20, f"all {len(wanted)} spans in traces.jsonl")
    _assert_strict_utf8(path)
    for i, span in spans.items():
        attrs = p.attrs(span)
        assert attrs["good.index"] == str(i) and attrs["trading.symbol"] == "AAPL"
        if i == GOOD // 2:
            assert span["name"] == REPAIRED["name"]
            assert attrs["bad.value"] == REPAIRED["value"]
            assert attrs[REPAIRED["key"]] == "fine"
        else:
            assert span["name"] == f"good span {i}"


def _records(label: str) -> list[LogRecord]:
    now = time.time_ns()
    records = []
    for i in range(GOOD + 2):
        attrs = [_kv("log.label", label), _kv("good.index", str(i))]
        body = f"good body {i}"
        if i == 1:
            body = ph("value")
        if i == 2:
            attrs += [_kv("bad.value", ph("value")), _kv(ph("key"), "fine")]
        records.append(LogRecord(time_unix_nano=now, severity_text="INFO",
                                 body=AnyValue(string_value=body), attributes=attrs))  # fmt: skip
    return records


def test_invalid_utf8_in_logs_is_repaired_and_every_good_record_arrives(target: Target) -> None:
    label = "bad-utf8-logs"
    body = _crafted(p.logs_request(_records(label)), ("value", "key"))
    _post(target.server, "/v1/logs", body, target.token)
    path = target.out / "logs.jsonl"
    total = GOOD + 2

    def arrived() -> dict[int, dict[str, Any]] | None:
        _no_bad_lines(path)
        got = {int(p.attrs(r)["good.index"]): r for _, r in p.logs_in(path)
               if p.attrs(r).get("log.label") == label}  # fmt: skip
        return got if len(got) == total else None

    records = wait_until(arrived, 20, f"all {total} log records in logs.jsonl")
    _assert_strict_utf8(path)
    for i, rec in records.items():
        body = rec["body"]["stringValue"]
        assert body == (REPAIRED["value"] if i == 1 else f"good body {i}")
    bad_attrs = p.attrs(records[2])
    assert bad_attrs["bad.value"] == REPAIRED["value"]
    assert bad_attrs[REPAIRED["key"]] == "fine"


def test_invalid_utf8_in_a_metric_label_is_repaired_not_dropped(
    local: tuple[CollectorServer, Path],
) -> None:
    # Without the repair the Prometheus exporter drops the point ("label value ... is not
    # valid UTF-8", logged on every scrape); its neighbours are served either way.
    server, _ = local
    now = time.time_ns()
    points = [
        NumberDataPoint(
            start_time_unix_nano=now - 1_000_000_000, time_unix_nano=now, as_int=i + 1,
            attributes=[_kv("good_index", str(i))] + ([_kv("bad", ph("value"))] if i == 1 else []),
        )
        for i in range(3)
    ]  # fmt: skip
    metric = Metric(
        name="bad_input_orders",
        sum=Sum(data_points=points, is_monotonic=True,
                aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE),
    )  # fmt: skip
    request = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
        resource=Resource(attributes=[_kv("service.name", "bad-input")]),
        scope_metrics=[ScopeMetrics(metrics=[metric])],
    )])  # fmt: skip
    _post(server, "/v1/metrics", _crafted(request, ("value",)))

    def series() -> list[str] | None:
        body = httpx.get(server.prometheus_url).content.decode("utf-8")  # strict
        lines = [line for line in body.splitlines() if line.startswith("bad_input_orders_total{")]
        return lines if len(lines) == 3 else None

    lines = wait_until(series, 20, "the three bad_input_orders series")
    assert sum(f'bad="{REPAIRED["value"]}"' in line for line in lines) == 1
