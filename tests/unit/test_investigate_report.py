"""Text, JSON and HTML rendering of a report, the time helpers, spike windows and errors."""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trading_otel_tools.cli import app as cli_app
from trading_otel_tools.investigate import (
    InvestigateOptions,
    PrometheusError,
    Report,
    TraceReport,
    investigate,
    render_html,
    render_json,
    render_text,
)
from trading_otel_tools.investigate.analysis import analyze
from trading_otel_tools.investigate.links import trace_link
from trading_otel_tools.investigate.model import Exemplar, LogEntry, SpikeWindow
from trading_otel_tools.investigate.sources import FileLogSource, FileTraceSource
from trading_otel_tools.investigate.spikes import choose_step, find_windows, latency_query
from trading_otel_tools.investigate.summary import top_cause
from trading_otel_tools.investigate.timeparse import (
    format_ms,
    parse_duration,
    parse_instant,
)
from trading_otel_tools.procs import free_port

FIXTURES = Path(__file__).parents[1] / "fixtures" / "investigate"
SLOW = "5b8efff798038103d269b633813fc60c"
FAST = "0af7651916cd43dd8448eb211c80319c"
MISSING = "0123456789abcdef0123456789abcdef"
T0 = 1_795_000_000.0


def make_report(grafana: str | None = None, breached: bool = True) -> Report:
    """A report over the fixture traces, assembled without Prometheus."""
    opts = InvestigateOptions(start=T0 - 600, end=T0 + 300, telemetry_dir=FIXTURES,
                              grafana=grafana)  # fmt: skip
    spike = 0.9 if breached else 0.2
    points = [(T0 - 600 + 15 * i, 0.02 if not 40 <= i < 44 else spike) for i in range(60)]
    windows = find_windows(points, opts.slo, 15) if breached else []
    found = FileTraceSource(FIXTURES).fetch([SLOW, FAST])
    logs = FileLogSource(FIXTURES).fetch([found[SLOW]])
    slow = TraceReport(SLOW, "slow", Exemplar(SLOW, "00f0e0d0c0b01001", 0.8205, T0, {"le": "1"}))
    slow.analysis = analyze(found[SLOW], slow.exemplar.span_id)
    slow.logs = logs[SLOW]
    slow.log_query = '{service_name="execution-gateway"} | trace_id="' + SLOW + '"'
    if grafana:
        slow.trace_link = trace_link(grafana, SLOW, T0 - 300, T0 + 300)
    gone = TraceReport(MISSING, "slow", Exemplar(MISSING, "", 0.95, T0 + 5, {}),
                       missing_reason="not found in fixtures (sampled out...)")  # fmt: skip
    base = TraceReport(FAST, "baseline", Exemplar(FAST, "", 0.03, T0 - 400, {}))
    base.analysis = analyze(found[FAST])
    traces = [slow, gone, base] if breached else []
    top = top_cause([slow.analysis], [base.analysis]) if breached else None
    return Report(opts, latency_query(opts.metric, 0.99, "1m"), 15, points, windows,
                  max(points, key=lambda p: p[1]), traces, top, "fixtures", "fixtures")  # fmt: skip


def test_text_report_has_windows_cause_waterfall_logs_and_missing() -> None:
    text = render_text(make_report())
    assert "SLO breached in 1 window(s):\n  1. 2026-11-18T11:06:40Z to 2026-11-18T11:07:25Z" in text
    assert "Top cause: `broker.submit` accounts for 99% of latency in 1 of 1 slow order " in text
    assert "against 24 ms in 1 baseline trace outside the spike.\n  (call from execution-gateway" \
        " to broker-sim, remote time included)\n" in text  # fmt: skip
    assert "Traces not found (1):\n  0123456789abcdef0123456789abcdef (slow, 950 ms" in text
    waterfall = text[text.index("Trace 5b8e") :]
    rows = [line[2:46].strip() for line in waterfall.splitlines()[2:8]]
    statement = "SELECT quantity, avg_price FROM positions WHERE account = $1"
    assert rows == ["POST /api/v1/orders", "risk.check", "SELECT trading: " + statement[:23] + "…",
                    "GET breaker:daily_loss", "broker.submit", "POST /orders"]  # fmt: skip
    logs = waterfall[waterfall.index("logs (3") :].splitlines()
    assert "WARNING broker-sim: injected latency 800 ms" in logs[1]
    assert "WARNING execution-gateway: slow broker answer: 812 ms" in logs[2]
    assert "INFO    execution-gateway: order filled" in logs[3]
    assert "Grafana" not in text  # no --grafana, no links


def test_text_report_links_only_with_grafana() -> None:
    text = render_text(make_report(grafana="http://grafana:3000/"))
    link = re.search(r"trace in Grafana: (\S+)", text)
    assert link is not None
    assert link.group(1).startswith("http://grafana:3000/explore?schemaVersion=1&orgId=1&panes=")
    assert "%22uid%22%3A%22tempo%22" in link.group(1) and SLOW in link.group(1)


def test_text_report_without_breach_names_the_peak() -> None:
    text = render_text(make_report(breached=False))
    assert text.endswith("No SLO breach: p99 stayed at or under 250 ms; the peak was 200 ms at "
                         "2026-11-18T11:06:40Z.\n")  # fmt: skip


def test_json_report_carries_the_same_content() -> None:
    data = json.loads(render_json(make_report()))
    assert data["breached"] is True and data["schema_version"] == 1
    assert data["windows"][0]["start_time"] == "2026-11-18T11:06:40Z"
    assert data["top_cause"]["label"] == "broker.submit"
    assert data["top_cause"]["top_in"] == 1 and data["top_cause"]["slow_traces"] == 1
    assert data["missing_trace_ids"] == [MISSING]
    slow = next(t for t in data["traces"] if t["trace_id"] == SLOW)
    assert slow["found"] and slow["top"] == "broker.submit"
    assert [s["name"] for s in slow["spans"]][:2] == ["POST /api/v1/orders", "risk.check"]
    assert sum(c["critical_seconds"] for c in slow["contributions"]) == pytest.approx(
        slow["duration_seconds"]
    )
    assert [e["severity_text"] for e in slow["logs"]] == ["WARNING", "WARNING", "INFO"]
    assert len(data["series"]) == 60


def test_html_report_is_self_contained_and_escaped() -> None:
    report = make_report(grafana="http://grafana:3000")
    slow = report.traces[0]
    slow.logs = [*slow.logs, LogEntry(int(T0 * 1e9), "ERROR", 17, "<script>alert(1)</script>",
                                      "execution-gateway", SLOW, "")]  # fmt: skip
    page = render_html(report)
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert page.count("<svg") == 2  # the latency chart and one waterfall
    assert page.count("<circle") == 3  # one point per exemplar, missing trace included
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # Nothing is loaded from elsewhere: the only URLs are links to Grafana.
    links = {html.escape(u) for u in (slow.trace_link, report.metric_link, slow.logs_link) if u}
    assert set(re.findall(r"(?:src|href)='([^']*)'", page)) == links
    assert not re.search(r"\ssrc=", page)


def test_html_report_without_breach() -> None:
    page = render_html(make_report(breached=False))
    assert "No SLO breach" in page and page.count("<svg") == 1


@pytest.mark.parametrize(("text", "seconds"), [("250ms", 0.25), ("15m", 900), ("1.5s", 1.5),
                                               ("2h", 7200), ("30", 30)])  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "fast", "-1s", "0ms", "15 minutes"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_parse_instant() -> None:
    assert parse_instant("2026-11-18T11:06:40Z") == T0
    assert parse_instant("2026-11-18T11:06:40") == T0  # no zone: UTC
    assert parse_instant("2026-11-18T12:06:40+01:00") == T0
    assert parse_instant("1795000000") == T0
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_instant("yesterday")


def test_format_ms() -> None:
    assert [format_ms(v) for v in (0.0042, 0.0225, 0.812, 1.25, 12.0)] == [
        "4.2 ms", "22 ms", "812 ms", "1.25 s", "12.0 s"]  # fmt: skip


def test_find_windows_splits_on_recovery_and_bridges_one_missing_step() -> None:
    pts = [(0, 0.1), (1, 0.3), (2, 0.5), (4, 0.4), (5, 0.1), (6, 0.2), (7, 0.9), (8, 0.3)]
    assert find_windows(pts, 0.25, 1) == [SpikeWindow(1, 4, 0.5, 2), SpikeWindow(7, 8, 0.9, 7)]
    assert find_windows([(0, 0.3), (10, 0.3)], 0.25, 1) == [
        SpikeWindow(0, 0, 0.3, 0), SpikeWindow(10, 10, 0.3, 10)]  # fmt: skip
    assert find_windows([(0, 0.25)], 0.25, 1) == []  # at the SLO is not a breach


def test_choose_step() -> None:
    assert choose_step(0, 900) == 4  # 15 minutes: ~240 points
    assert choose_step(0, 60) == 1
    assert 86400 * 30 / choose_step(0, 86400 * 30) <= 11_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"start": 10, "end": 5}, "end of the range must be after"),
     ({"quantile": 1.5}, "quantile must be between 0 and 1"),
     ({"slo": 0}, "slo must be positive"),
     ({"max_traces": 0}, "max_traces must be at least 1")],
)  # fmt: skip
def test_options_validation(kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"start": 0, "end": 60}
    with pytest.raises(ValueError, match=message):
        InvestigateOptions(**{**base, **kwargs})


def test_unreachable_prometheus_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PrometheusError, match=rf"cannot reach Prometheus at {url} .*is it running"):
        investigate(InvestigateOptions(start=T0, end=T0 + 60, prometheus=url, timeout=2))


@pytest.fixture
def not_prometheus() -> Iterator[str]:
    """A real HTTP server that is not Prometheus (a wrong --prometheus URL)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>Grafana</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_wrong_url_is_a_clear_error(not_prometheus: str) -> None:
    with pytest.raises(PrometheusError, match=r"non-JSON body.*is this really Prometheus"):
        investigate(InvestigateOptions(start=T0, end=T0 + 60, prometheus=not_prometheus))


def test_cli_unreachable_prometheus_exits_non_zero() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(cli_app, ["investigate", "--since", "5m", "--prometheus", url])
    assert result.exit_code == 1
    assert f"error: cannot reach Prometheus at {url}" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--slo", "fast"], "invalid duration 'fast'"),
     (["--start", "2026-11-19T10:00:00Z", "--end", "2026-11-19T09:00:00Z"], "end of the range"),
     (["--since", "soon"], "invalid duration 'soon'"),
     (["--start", "yesterday"], "RFC 3339")],
)  # fmt: skip
def test_cli_bad_input_is_a_usage_error(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli_app, ["investigate", *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_report_role_partition() -> None:
    report = make_report()
    assert [t.trace_id for t in report.slow] == [SLOW, MISSING]
    assert [t.trace_id for t in report.baseline] == [FAST]
    assert [t.trace_id for t in report.missing] == [MISSING]
    assert replace(report, windows=[]).breached is False
