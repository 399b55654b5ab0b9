"""``investigate`` against a real Prometheus 2.42 with exemplar storage.

A small endpoint we control serves ``trading_order_latency_seconds`` in OpenMetrics with
exemplars we choose: fast orders first (the baseline), then slow ones (the spike). The
trace files hold matching traces (one slow trace is left out on purpose). Prometheus
scrapes every second, so the whole scenario takes about 20 seconds, once per module.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trading_otel_tools.cli import app as cli_app
from trading_otel_tools.investigate import (
    ExemplarStorageError,
    InvestigateOptions,
    investigate,
    render_text,
)
from trading_otel_tools.procs import ManagedProcess, free_port, http_probe
from trading_otel_tools.servers.prometheus import PrometheusServer, scrape_config, wait_for

pytestmark = pytest.mark.integration

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, float("inf"))
BASELINE_S, SPIKE_S, TICK = 10.0, 8.0, 0.25


@dataclass
class Histogram:
    """Cumulative bucket counts and the latest exemplar per bucket, served as OpenMetrics."""

    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    exemplars: dict[int, tuple[str, str, float, float]] = field(default_factory=dict)
    total: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, value: float, trace_id: str, span_id: str) -> None:
        with self.lock:
            first = next(i for i, le in enumerate(BUCKETS) if value <= le)
            for i in range(first, len(BUCKETS)):
                self.counts[i] += 1
            self.exemplars[first] = (trace_id, span_id, value, time.time())
            self.total += value

    def exposition(self) -> bytes:
        # The same histogram twice: with exemplars, and (as an untraced service would
        # expose it) without any.
        lines = [*self._family("trading_order_latency_seconds", True),
                 *self._family("untraced_latency_seconds", False), "# EOF"]  # fmt: skip
        return ("\n".join(lines) + "\n").encode()

    def _family(self, name: str, exemplars: bool) -> list[str]:
        lines = [f"# TYPE {name} histogram", f"# UNIT {name} seconds"]
        with self.lock:
            for i, le in enumerate(BUCKETS):
                le_text = "+Inf" if le == float("inf") else repr(le)
                line = f'{name}_bucket{{le="{le_text}"}} {self.counts[i]}'
                if exemplars and i in self.exemplars:
                    tid, sid, v, ts = self.exemplars[i]
                    line += f' # {{trace_id="{tid}",span_id="{sid}"}} {v} {ts:.3f}'
                lines.append(line)
            lines += [f"{name}_count {self.counts[-1]}", f"{name}_sum {self.total}"]
        return lines


def _span(tid: str, sid: str, parent: str, name: str, kind: int, start: float, end: float,
          status: int = 0) -> dict[str, Any]:  # fmt: skip
    return {"traceId": tid, "spanId": sid, "parentSpanId": parent, "name": name, "kind": kind,
            "startTimeUnixNano": str(int(start * 1e9)), "endTimeUnixNano": str(int(end * 1e9)),
            "attributes": [], "status": {"code": status}}  # fmt: skip


def _resource(service: str) -> dict[str, Any]:
    return {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}


def order_lines(tid: str, end: float, latency: float, broker: float) -> tuple[str, str]:
    """One order as the collector's file exporter writes it: a traces line and a logs line."""
    start = end - latency
    root, risk, sub, srv = (tid[:12] + suffix for suffix in ("0001", "0002", "0003", "0004"))
    gw = [
        _span(tid, root, "", "POST /api/v1/orders", 2, start, end),
        _span(tid, risk, root, "risk.check", 1, start + 0.001, start + 0.004),
        _span(tid, sub, root, "broker.submit", 3, start + 0.005, start + 0.005 + broker),
    ]
    bk = [_span(tid, srv, sub, "POST /orders", 2, start + 0.006, start + 0.004 + broker)]
    traces = {"resourceSpans": [
        {"resource": _resource("execution-gateway"), "scopeSpans": [{"spans": gw}]},
        {"resource": _resource("broker-sim"), "scopeSpans": [{"spans": bk}]},
    ]}  # fmt: skip
    severity = (13, "WARN", f"slow broker answer after {broker * 1000:.0f} ms") if latency > 0.25 \
        else (9, "INFO", "order filled")  # fmt: skip
    logs = {"resourceLogs": [{"resource": _resource("execution-gateway"), "scopeLogs": [
        {"logRecords": [{"timeUnixNano": str(int(end * 1e9)), "severityNumber": severity[0],
                         "severityText": severity[1], "body": {"stringValue": severity[2]},
                         "traceId": tid, "spanId": root}]}]}]}  # fmt: skip
    return json.dumps(traces) + "\n", json.dumps(logs) + "\n"


@dataclass
class Scenario:
    prometheus: PrometheusServer
    no_exemplars_url: str
    telemetry: Path
    began: float
    spike_began: float
    ended: float
    missing_trace: str
    slow_traces: set[str]


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[str, Histogram]]:
    hist = Histogram()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = hist.exposition()
            self.send_response(200)
            self.send_header("Content-Type", "application/openmetrics-text; version=1.0.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", hist
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def plain_prometheus(target: tuple[str, Histogram], server_root: Path) -> Iterator[str]:
    """A second Prometheus on the same target, started WITHOUT exemplar storage."""
    root = server_root / "investigate-prom-plain"
    root.mkdir(parents=True, exist_ok=True)
    import yaml

    (root / "prom.yml").write_text(yaml.safe_dump(scrape_config({"app": [target[0]]})))
    port = free_port()
    proc = ManagedProcess(
        "prometheus-no-exemplars",
        ["prometheus", f"--config.file={root / 'prom.yml'}",
         f"--storage.tsdb.path={root / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        root / "prometheus.log", ready=http_probe(f"http://127.0.0.1:{port}/-/ready"),
        ports=(port,),
    )  # fmt: skip
    proc.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def scenario(
    target: tuple[str, Histogram],
    plain_prometheus: str,
    prometheus_factory: Callable[..., PrometheusServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> Scenario:
    address, hist = target
    prom = prometheus_factory({"app": [address]}, interval="1s")
    wait_for(
        lambda: prom.query("up") and prom.query("up")[0]["value"][1] == "1", what="first scrape"
    )
    telemetry = tmp_path_factory.mktemp("telemetry")
    traces, logs = [], []
    slow: set[str] = set()
    began = time.time()
    n = 0
    while time.time() - began < BASELINE_S + SPIKE_S:
        n += 1
        tid = f"{n:08x}" + "ab" * 12
        spiking = time.time() - began >= BASELINE_S
        latency, broker = (0.82, 0.8) if spiking else (0.02, 0.012)
        now = time.time()
        hist.observe(latency, tid, tid[:12] + "0001")
        t_line, l_line = order_lines(tid, now, latency, broker)
        traces.append(t_line)
        logs.append(l_line)
        if spiking:
            slow.add(tid)
        time.sleep(TICK)
    # The last slow order was sampled out: its exemplar exists, its trace does not. Being
    # the last, no later observation replaces its exemplar before the next scrape.
    missing = "ffffffff" + "ab" * 12
    hist.observe(0.82, missing, missing[:12] + "0001")
    slow.add(missing)
    ended = time.time()
    # Rotated backup plus the live file, as the collector's file exporter leaves them.
    half = len(traces) // 2
    (telemetry / "traces-2026-11-23T09-00-00.000.jsonl").write_text("".join(traces[:half]))
    (telemetry / "traces.jsonl").write_text("".join(traces[half:]))
    (telemetry / "logs.jsonl").write_text("".join(logs))
    time.sleep(3.0)  # more scrapes, so the last observations are in Prometheus
    return Scenario(prom, plain_prometheus, telemetry, began, began + BASELINE_S, ended, missing,
                    slow)  # fmt: skip


def _options(s: Scenario, **kw: Any) -> InvestigateOptions:
    base: dict[str, Any] = dict(
        start=s.began, end=s.ended + 2, slo=0.25, prometheus=s.prometheus.url,
        telemetry_dir=s.telemetry, rate_window="5s", step=1.0, grafana="http://grafana:3000",
    )  # fmt: skip
    base.update(kw)
    return InvestigateOptions(**base)


def test_spike_window_and_top_cause(scenario: Scenario) -> None:
    report = investigate(_options(scenario))
    assert len(report.windows) == 1
    w = report.windows[0]
    assert scenario.spike_began - 1 <= w.start <= scenario.spike_began + 6
    assert w.peak > 0.5
    assert report.top is not None
    assert report.top.label == "broker.submit"
    assert report.top.top_in == len([t for t in report.slow if t.analysis])
    assert report.top.median_slow_s == pytest.approx(0.8, abs=0.01)
    assert report.top.median_baseline_s is not None and report.top.median_baseline_s < 0.02
    assert {t.trace_id for t in report.slow} <= scenario.slow_traces
    # The exemplar of the sampled-out trace is reported, per id, as missing.
    assert scenario.missing_trace in {t.trace_id for t in report.missing}
    assert all(t.role == "baseline" or t.trace_id in scenario.slow_traces for t in report.missing)
    found = [t for t in report.slow if t.analysis]
    assert found and all(t.logs and t.logs[0].severity_text == "WARN" for t in found)
    assert all(t.trace_link and "tempo" in t.trace_link for t in report.traces)
    text = render_text(report)
    assert "SLO breached in 1 window(s)" in text
    assert f"{scenario.missing_trace} (slow" in text and "sampled out" in text


def test_quiet_period_reports_no_breach(scenario: Scenario) -> None:
    report = investigate(_options(scenario, end=scenario.spike_began - 0.5))
    assert not report.breached and report.traces == [] and report.top is None
    assert report.peak is not None and report.peak[1] < 0.05
    assert render_text(report).splitlines()[-1].startswith("No SLO breach: p99 stayed at or under")


def test_cli_json_output(scenario: Scenario, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    result = CliRunner().invoke(cli_app, [
        "investigate", "--start", str(scenario.began), "--end", str(scenario.ended + 2),
        "--prometheus", scenario.prometheus.url, "--telemetry-dir", str(scenario.telemetry),
        "--rate-window", "5s", "--json", "--html", str(html),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["breached"] is True
    assert data["top_cause"]["label"] == "broker.submit"
    assert scenario.missing_trace in data["missing_trace_ids"]
    page = html.read_text()
    assert page.count("<svg") == 1 + sum(
        1 for t in data["traces"] if t["role"] == "slow" and t["found"]
    )


def test_prometheus_without_exemplar_storage_is_explained(scenario: Scenario) -> None:
    with pytest.raises(ExemplarStorageError, match="--enable-feature=exemplar-storage"):
        investigate(_options(scenario, prometheus=scenario.no_exemplars_url))


def test_cli_exit_code_when_exemplar_storage_is_off(scenario: Scenario) -> None:
    result = CliRunner().invoke(cli_app, [
        "investigate", "--start", str(scenario.began), "--end", str(scenario.ended + 2),
        "--prometheus", scenario.no_exemplars_url, "--rate-window", "5s",
    ])  # fmt: skip
    assert result.exit_code == 1
    assert "exemplar storage" in result.stderr


def test_exemplar_storage_on_but_no_exemplars_is_explained(scenario: Scenario) -> None:
    with pytest.raises(ExemplarStorageError, match="exemplar storage is on, but Prometheus holds"):
        investigate(_options(scenario, metric="untraced_latency_seconds"))


def test_range_without_orders_says_so(scenario: Scenario) -> None:
    report = investigate(_options(scenario, start=scenario.began - 120, end=scenario.began - 60))
    assert not report.breached and report.peak is None
    assert report.notes and "observations between" in report.notes[0]
    assert "there was no data to compute it" in render_text(report)


def test_bad_lines_in_the_files_are_noted_not_fatal(scenario: Scenario, tmp_path: Path) -> None:
    telemetry = tmp_path / "telemetry"
    shutil.copytree(scenario.telemetry, telemetry)
    with (telemetry / "traces.jsonl").open("ab") as fh:
        fh.write(b"\xff\xfe not json\n")
    with (telemetry / "logs.jsonl").open("ab") as fh:  # JSON once read with U+FFFD
        fh.write(b'{"resourceLogs": [{"resource": {"attributes": [{"key": "k", "value": '
                 b'{"stringValue": "caf\xc3 \xff"}}]}}]}\n')  # fmt: skip
    clean = investigate(_options(scenario))
    report = investigate(_options(scenario, telemetry_dir=telemetry))
    assert report.top == clean.top
    assert [t.trace_id for t in report.missing] == [t.trace_id for t in clean.missing]
    notes = "\n".join(report.notes)
    assert f"1 line(s) unreadable and skipped: {telemetry / 'traces.jsonl'} (1)" in notes
    assert f"1 line(s) not valid UTF-8 (bad bytes read as U+FFFD, records kept): " \
        f"{telemetry / 'logs.jsonl'} (1)" in notes  # fmt: skip
    assert "unreadable and skipped" in render_text(report)
