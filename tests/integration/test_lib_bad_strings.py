"""One bad string costs only itself: counted at a real collector.

A fresh interpreter runs ``otel.configure()`` against a recording collector and sends 100
good spans, log records and metric points beside items carrying lone surrogates (what
``surrogateescape`` decoding produces) in every text field. Everything must arrive, with
U+FFFD where the bad code points were. The Prometheus pull endpoint is scraped too.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import collector_payloads as p
from tests.fixtures.collector import wait_until
from tests.fixtures.lib import REPO
from trading_otel_tools.procs import free_port
from trading_otel_tools.servers.collector import CollectorServer

pytestmark = pytest.mark.integration

R = "\ufffd"
GOOD = 100

# Runs in the child. BAD_MODE=stock makes the lean exporters find an SDK shape they do
# not know, so every batch goes through the SDK exporter's own export().
SCRIPT = r"""
import base64, json, logging, os, sys, urllib.request
from opentelemetry.trace import Link, StatusCode
import otel
from otel._internal import lean_exporter

if os.environ["BAD_MODE"] == "stock":
    lean_exporter._usable = lambda exporter: False
t = otel.configure(service_name="bad-strings")
tracer = t.tracer_provider.get_tracer("bad.strings")
meter = t.meter_provider.get_meter("bad.strings")
log = logging.getLogger("bad.strings")

for i in range(100):
    with tracer.start_as_current_span(f"good-{i}", attributes={"i": i, "kind": "good"}):
        log.info("good %d", i, extra={"i": i})
with tracer.start_as_current_span("anchor") as anchor:
    pass
with tracer.start_as_current_span(
    "bad \ud800 name",
    attributes={"v\udc00": "x\ud800y", "list": ["ok", "a\udfffb"], "good": "kept"},
    links=[Link(anchor.get_span_context(), {"l\udc00": "w\ud800"})],
) as span:
    span.add_event("ev\ud800", {"e\udc00": "f\ud800"})
    span.set_status(StatusCode.ERROR, "status \ud800")
    log.warning("warn \ud800 inside", extra={"k\udc00": "v\ud800", "ok": "yes"})
    try:
        raise ValueError("boom \udcff")
    except ValueError:
        log.exception("failed \udcff")
if t.logger_provider is not None:
    t.logger_provider.get_logger("bad.strings").emit(
        body={"k\udc00": ["a\ud800", 1], "fine": "x"}, attributes={"a\ud800": "b"}
    )

counter = meter.create_counter("bad_strings.points", description="points \ud800")
for i in range(100):
    counter.add(1, {"i": str(i)})
counter.add(1, {"k\udc00": "v\ud800"})
counter.add(1, {"list": ["a\ud800", "b"]})

out = {}
if os.environ.get("OTEL_METRICS_EXPORTER") == "prometheus":
    port = t.metric_readers[0].port
    for name, accept in (("text", "text/plain"), ("om", "application/openmetrics-text")):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Accept": accept})
        with urllib.request.urlopen(req, timeout=10) as resp:
            out[name] = base64.b64encode(resp.read()).decode()
out["shutdown"] = otel.shutdown()
print(json.dumps(out))
"""

# name, protocol, lean path, a bad resource attribute (OTEL_RESOURCE_ATTRIBUTES holding a
# byte that is not UTF-8: os.environ decodes it to a lone surrogate)
RUNS = [
    ("http-lean", "http/protobuf", "lean", False),
    ("http-lean-bad-resource", "http/protobuf", "lean", True),
    ("http-stock", "http/protobuf", "stock", True),
    ("grpc", "grpc", "lean", False),
    ("grpc-bad-resource", "grpc", "lean", True),
]


def run_child(env: dict[str, str], bad_resource: bool) -> tuple[dict[str, Any], str]:
    full: dict[str | bytes, str | bytes] = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
        "OTEL_METRIC_EXPORT_INTERVAL": "60000",  # the final export at shutdown carries all
        "TRADING_OTEL_SHUTDOWN_TIMEOUT": "20",
        **env,
    }
    if bad_resource:
        full[b"OTEL_RESOURCE_ATTRIBUTES"] = b"team=desk\xff1,region=eu"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=full,  # type: ignore[arg-type]
        capture_output=True,
        timeout=120,
        cwd=REPO,
    )
    stderr = proc.stderr.decode("utf-8", "backslashreplace")
    assert proc.returncode == 0, stderr
    lines = proc.stdout.decode("utf-8").splitlines()  # stdout log lines are valid UTF-8
    return dict(json.loads(lines[-1])), stderr


@pytest.fixture(scope="module")
def sent(recorder: CollectorServer) -> Iterator[dict[str, str]]:
    """Run every child once; each run's service.name is ``bad-<run>``."""
    stderrs: dict[str, str] = {}
    for name, protocol, mode, bad_resource in RUNS:
        http = protocol == "http/protobuf"
        base = recorder.otlp_http_url if http else f"http://{recorder.otlp_grpc_endpoint}"
        env = {
            "OTEL_SERVICE_NAME": f"bad-{name}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_ENDPOINT": base,
            "BAD_MODE": mode,
            # console on one run, JSON on the others: both formatters see the surrogates
            "TRADING_OTEL_LOG_FORMAT": "console" if name == "grpc" else "json",
        }
        out, stderrs[name] = run_child(env, bad_resource)
        assert out["shutdown"], stderrs[name]
    yield stderrs


def _mine(resource: dict[str, Any], name: str) -> bool:
    return bool(p.attrs(resource).get("service.name") == f"bad-{name}")


def _values(value: dict[str, Any]) -> Any:
    """An OTLP JSON AnyValue as plain Python."""
    if "arrayValue" in value:
        return [_values(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return {kv["key"]: _values(kv["value"]) for kv in value["kvlistValue"].get("values", [])}
    return next(iter(value.values()), None)


def _attrs(obj: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: _values(a.get("value", {})) for a in obj.get("attributes", [])}


@pytest.mark.parametrize("run", [r[0] for r in RUNS])
def test_every_span_arrives_with_fffd_in_place(
    run: str, recorder: CollectorServer, sent: dict[str, str]
) -> None:
    traces = recorder.telemetry_dir / "traces.jsonl"
    found = wait_until(
        lambda: (s := [(r, x) for r, x in p.spans_in(traces) if _mine(r, run)])
        and len(s) >= GOOD + 2
        and s,
        20, f"{GOOD + 2} spans of run {run}",
    )  # fmt: skip
    names = [x["name"] for _, x in found]
    assert len(names) == GOOD + 2, names  # 100 good, the anchor, the bad one; no duplicates
    assert sorted(n for n in names if n.startswith("good-")) == sorted(
        f"good-{i}" for i in range(GOOD)
    )
    good = next(x for _, x in found if x["name"] == "good-7")
    assert _attrs(good) == {"i": "7", "kind": "good"}  # int64 is a JSON string in OTLP
    (bad,) = [x for _, x in found if x["name"] == f"bad {R} name"]
    assert _attrs(bad) == {f"v{R}": f"x{R}y", "list": ["ok", f"a{R}b"], "good": "kept"}
    (event,) = bad["events"]
    assert event["name"] == f"ev{R}" and _attrs(event) == {f"e{R}": f"f{R}"}
    (link,) = bad["links"]
    assert _attrs(link) == {f"l{R}": f"w{R}"}
    assert bad["status"] == {"code": 2, "message": f"status {R}"}
    resource = p.attrs(found[0][0])
    if "bad-resource" in run or run == "http-stock":
        assert resource["team"] == f"desk{R}1" and resource["region"] == "eu"
    assert "Logging error" not in sent[run]
    assert "Failed to encode" not in sent[run]


def _records(path: Path, run: str, scope: str) -> list[dict[str, Any]]:
    return [
        rec
        for doc in p.read_lines(path)
        for rl in doc.get("resourceLogs", [])
        if _mine(rl.get("resource", {}), run)
        for sl in rl.get("scopeLogs", [])
        if sl.get("scope", {}).get("name") == scope
        for rec in sl.get("logRecords", [])
    ]


@pytest.mark.parametrize("run", [r[0] for r in RUNS])
def test_every_log_record_arrives(
    run: str, recorder: CollectorServer, sent: dict[str, str]
) -> None:
    logs = recorder.telemetry_dir / "logs.jsonl"
    want = GOOD + 3  # the warning, the exception, the direct emit()
    records = wait_until(
        lambda: (r := _records(logs, run, "bad.strings")) and len(r) >= want and r,
        20, f"{want} log records of run {run}",
    )  # fmt: skip
    assert len(records) == want
    bodies = [_values(r.get("body", {})) for r in records]
    goods = [b for b in bodies if isinstance(b, str) and b.startswith("good ")]
    assert sorted(goods) == sorted(f"good {i}" for i in range(GOOD))
    (warning,) = [r for r in records if _values(r["body"]) == f"warn {R} inside"]
    attrs = _attrs(warning)
    assert attrs[f"k{R}"] == f"v{R}" and attrs["ok"] == "yes"
    assert warning["traceId"]  # logged inside the bad span: still correlated
    (failed,) = [r for r in records if _values(r["body"]) == f"failed {R}"]
    assert _attrs(failed)["exception.message"] == f"boom {R}"
    (direct,) = [r for r in records if isinstance(_values(r.get("body", {})), dict)]
    assert _values(direct["body"]) == {f"k{R}": [f"a{R}", "1"], "fine": "x"}
    assert _attrs(direct) == {f"a{R}": "b"}


@pytest.mark.parametrize("run", [r[0] for r in RUNS])
def test_every_metric_point_arrives(
    run: str, recorder: CollectorServer, sent: dict[str, str]
) -> None:
    metrics = recorder.telemetry_dir / "metrics.jsonl"

    def points() -> list[tuple[str, dict[str, Any]]]:
        out = []
        for doc in p.read_lines(metrics):
            for rm in doc.get("resourceMetrics", []):
                if not _mine(rm.get("resource", {}), run):
                    continue
                for sm in rm.get("scopeMetrics", []):
                    for m in sm.get("metrics", []):
                        if m["name"] == "bad_strings.points":
                            out += [(m.get("description", ""), dp) for dp in m["sum"]["dataPoints"]]
        return out

    found = wait_until(
        lambda: (x := points()) and len(x) >= GOOD + 2 and x, 20, f"metric points of run {run}"
    )
    assert len(found) == GOOD + 2
    assert {d for d, _ in found} == {f"points {R}"}
    labels = [_attrs(dp) for _, dp in found]
    assert sorted(int(a["i"]) for a in labels if "i" in a) == list(range(GOOD))
    assert {f"k{R}": f"v{R}"} in labels
    assert {"list": [f"a{R}", "b"]} in labels


def test_prometheus_endpoint_serves_utf8_with_fffd() -> None:
    port = free_port()
    out, stderr = run_child(
        {
            "OTEL_SERVICE_NAME": "bad-prom",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "prometheus",
            "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
            "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
            "BAD_MODE": "lean",
        },
        bad_resource=True,
    )
    assert "metrics collection failed" not in stderr
    for fmt in ("text", "om"):
        text = base64.b64decode(out[fmt]).decode("utf-8")  # strict: raises on bad bytes
        series = [x for x in text.splitlines() if x.startswith("bad_strings_points_total{")]
        assert len(series) == GOOD + 2, fmt
        assert any('i="42"' in x for x in series)
        assert any(f'k_="v{R}"' in x for x in series), series[-2:]
        assert any(f'list="[a{R},b]"' in x for x in series)
        assert f'team="desk{R}1"' in text  # target_info from the resource
        assert f"points {R}" in text  # HELP
    promtool = Path("/usr/bin/promtool")
    if promtool.exists():  # the text format, checked by Prometheus' own parser
        check = subprocess.run(
            [str(promtool), "check", "metrics"],
            input=base64.b64decode(out["text"]),
            capture_output=True,
            timeout=30,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        assert check.returncode == 0, check.stderr
