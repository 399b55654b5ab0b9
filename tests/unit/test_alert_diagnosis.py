"""Latency alert diagnoses: the alert is archived first, every failure is archived visibly.

The investigation itself is stubbed here (its own tests cover it); a real one runs in
tests/e2e/test_alert_diagnosis_e2e.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from trading_otel_tools.alerts import AlertArchive, ArchiveReceiver, read_archive
from trading_otel_tools.alerts.diagnosis import (
    PENDING_FOR_S,
    Diagnoser,
    DiagnosisConfig,
    diagnose,
    one_line,
    post_to_chat,
    read_secret_url,
)
from trading_otel_tools.cli import app
from trading_otel_tools.investigate import (
    ExemplarStorageError,
    InvestigateOptions,
    Report,
    investigate,
    spikes,
)
from trading_otel_tools.investigate.sources import FileTraceSource
from trading_otel_tools.procs import free_port


def alert(name: str = "OrderLatencySLOFastBurn", fp: str = "fp1") -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": name, "severity": "critical", "service": "execution-gateway"},
        "annotations": {"summary": "Order latency SLO burning fast in execution-gateway"},
        "startsAt": "2026-03-02T14:29:55.000Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": fp,
    }


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "paging", "alerts": list(alerts)}


def empty_report(options: InvestigateOptions) -> Report:
    """What investigate returns when latency stayed under the SLO."""
    return Report(options, "q", 15.0, [(options.start, 0.02)], [], None, [], None, "f", "f")


def config(tmp_path: Path, **kw: Any) -> DiagnosisConfig:
    return DiagnosisConfig(
        prometheus=f"http://127.0.0.1:{free_port()}",
        telemetry_dir=tmp_path / "telemetry",
        reports_dir=tmp_path / "reports",
        **kw,
    )


def test_prometheus_down_is_a_failed_diagnosis(tmp_path: Path) -> None:
    d = diagnose(alert(), config(tmp_path, budget_s=10))
    assert d["status"] == "failed"
    assert d["reason"].startswith("PrometheusError: cannot reach Prometheus"), d["reason"]
    assert d["message"].startswith("[FIRING] OrderLatencySLOFastBurn execution-gateway")
    assert "Diagnosis failed" in d["message"]
    assert one_line(d).startswith("diagnosis failed: ")


def test_a_hung_backend_times_out_within_the_budget(tmp_path: Path) -> None:
    # A Prometheus that accepts the connection and never answers: the real investigation's
    # requests are clipped to the budget, so its work ends with it (no thread left behind).
    hung = socket.create_server(("127.0.0.1", 0))
    try:
        cfg = replace(
            config(tmp_path, budget_s=1.5), prometheus=f"http://127.0.0.1:{hung.getsockname()[1]}"
        )
        t0 = time.monotonic()
        d = diagnose(alert(), cfg)
        assert time.monotonic() - t0 < 4
    finally:
        hung.close()
    assert d["status"] == "timeout", d
    assert "1.5 s" in d["reason"]
    assert "report" not in d


def test_diagnoses_run_on_a_bounded_pool_and_overflow_is_skipped_visibly(tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[str | None] = []

    def slow(options: InvestigateOptions) -> Report:
        calls.append(options.service)
        started.set()
        release.wait(10)
        return empty_report(options)

    archive = AlertArchive(tmp_path / "alerts")
    diagnoser = Diagnoser(archive, config(tmp_path), run=slow, workers=1, queue_size=1)
    threads = threading.active_count()
    assert diagnoser.submit(notification(alert(fp="a"))) == 1
    assert started.wait(5)
    assert diagnoser.submit(notification(alert(fp="b"))) == 1  # queued
    assert diagnoser.submit(notification(alert(fp="c"))) == 0  # no room: skipped
    assert threading.active_count() == threads + 1
    release.set()
    assert diagnoser.join(10)
    assert len(calls) == 2
    for a in (alert(fp=f) for f in "abc"):
        archive.append(notification(a), channel="paging")
    by_fp = {a.fingerprint: a.diagnosis for a in read_archive(tmp_path / "alerts").alerts}
    assert by_fp["a"] and by_fp["a"]["status"] == "no-cause"
    assert by_fp["b"] and by_fp["b"]["status"] == "no-cause"
    assert by_fp["c"] and by_fp["c"]["status"] == "skipped"
    assert "already running 1 diagnoses with 1 waiting" in by_fp["c"]["reason"]
    assert one_line(by_fp["c"]).startswith("diagnosis skipped: ")


def test_the_seen_alerts_are_bounded_and_expire(tmp_path: Path) -> None:
    archive = AlertArchive(tmp_path / "alerts")
    diagnoser = Diagnoser(archive, config(tmp_path), run=empty_report, seen_max=2)
    for fp in ("a", "b", "a", "c"):
        diagnoser.submit(notification(alert(fp=fp)))
    assert diagnoser.join(10)
    assert len(diagnoser._seen) == 2
    # "a" was forgotten to make room: a repeat of it is diagnosed again.
    assert diagnoser.submit(notification(alert(fp="a"))) == 1
    expiring = Diagnoser(archive, config(tmp_path), run=empty_report, seen_ttl_s=0.0)
    assert expiring.submit(notification(alert(fp="x"))) == 1
    assert expiring.submit(notification(alert(fp="x"))) == 1
    assert diagnoser.join(10) and expiring.join(10)


def test_no_breach_and_no_exemplars_are_named(tmp_path: Path) -> None:
    d = diagnose(alert(), config(tmp_path), run=empty_report)
    assert d["status"] == "no-cause"
    assert "stayed under 250 ms" in d["reason"]
    # The report is still written: it shows the quiet latency curve.
    assert Path(d["report"]["path"]).is_file()

    def no_exemplars(options: InvestigateOptions) -> Report:
        raise ExemplarStorageError("Prometheus runs without exemplar storage")

    def no_orders(options: InvestigateOptions) -> Report:
        report = empty_report(options)
        report.points = []
        report.notes.append("no trading_order_latency_seconds observations between ...")
        return report

    d = diagnose(alert(), config(tmp_path), run=no_orders)
    assert d["status"] == "no-cause"
    assert d["reason"].startswith("no trading_order_latency_seconds observations")

    d = diagnose(alert(), config(tmp_path), run=no_exemplars)
    assert d["status"] == "failed"
    assert "exemplar storage" in d["reason"]


def test_a_trace_store_that_is_down_fails_at_once_without_retrying(tmp_path: Path) -> None:
    # The real investigation, over a Prometheus with a spike and its exemplars, and a Tempo
    # that refuses connections: "failed" with Tempo's error, not "no-cause" after retries.
    tempo_calls: list[str] = []

    def backend(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if request.url.host == "tempo.test":
            tempo_calls.append(request.url.path)
            raise httpx.ConnectError("connection refused", request=request)
        start, end = float(params["start"]), float(params["end"])
        if request.url.path == "/api/v1/query_range":
            values = [[start + (end - start) * i / 100, "0.8"] for i in range(1, 100)]
            data: Any = {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}
        else:
            mid = (start + end) / 2
            exemplars = [
                {"labels": {"trace_id": f"{i:032x}", "span_id": f"{i:016x}"}, "value": "0.8",
                 "timestamp": mid}
                for i in range(1, 4)
            ]  # fmt: skip
            data = [{"seriesLabels": {}, "exemplars": exemplars}]
        return httpx.Response(200, json={"status": "success", "data": data})

    def run(options: InvestigateOptions) -> Report:
        with httpx.Client(transport=httpx.MockTransport(backend)) as client:
            return investigate(options, client=client)

    cfg = config(tmp_path, tempo="http://tempo.test:3200", budget_s=20, retry_s=0.2)
    d = diagnose(alert(), cfg, run=run)
    assert d["status"] == "failed", d
    assert d["reason"].startswith("cannot reach Tempo at http://tempo.test:3200")
    assert len(tempo_calls) == 1
    assert one_line(d).startswith("diagnosis failed: cannot reach Tempo")
    # The report still shows the spike and which traces could not be read.
    assert Path(d["report"]["path"]).is_file()


FIXTURES = Path(__file__).parents[1] / "fixtures" / "investigate"
SLOW, FAST = "5b8efff798038103d269b633813fc60c", "0af7651916cd43dd8448eb211c80319c"


def diagnosable(tmp_path: Path) -> tuple[dict[str, Any], Any]:
    """A fresh alert and a real investigation of it: a Prometheus (mocked HTTP) with a spike
    whose exemplar is the fixture's slow order, the fixture's traces and logs as files."""
    telemetry = tmp_path / "telemetry"
    telemetry.mkdir(exist_ok=True)
    for name in ("traces.jsonl", "logs.jsonl"):
        shutil.copy(FIXTURES / name, telemetry / name)
    roots = {
        tid: next(s for s in trace.spans if not s.parent_span_id).span_id
        for tid, trace in FileTraceSource(telemetry).fetch([SLOW, FAST]).items()
    }
    now = time.time()
    fresh = {**alert(), "startsAt": datetime.fromtimestamp(now - 60, UTC).isoformat()}

    def backend(request: httpx.Request) -> httpx.Response:
        start, end = float(request.url.params["start"]), float(request.url.params["end"])
        data: Any
        if request.url.path == "/api/v1/query_range":
            values = [
                [t, "0.8" if t > now - 120 else "0.02"] for t in range(int(start), int(end), 15)
            ]
            data = {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}
        else:
            found = [(SLOW, 0.82, now - 60), (FAST, 0.015, now - 600)]
            exemplars = [
                {
                    "labels": {"trace_id": tid, "span_id": roots[tid]},
                    "value": str(v),
                    "timestamp": ts,
                }
                for tid, v, ts in found
                if start <= ts <= end
            ]
            data = [{"seriesLabels": {}, "exemplars": exemplars}]
        return httpx.Response(200, json={"status": "success", "data": data})

    def run(options: InvestigateOptions) -> Report:
        with httpx.Client(transport=httpx.MockTransport(backend)) as client:
            return investigate(options, client=client)

    return fresh, run


def test_links_only_with_a_grafana_else_the_message_says_where_the_traces_are(
    tmp_path: Path,
) -> None:
    fresh, run = diagnosable(tmp_path)
    d = diagnose(fresh, config(tmp_path), run=run)
    assert d["status"] == "diagnosed", d
    assert d["top_cause"]["span"] == "broker.submit"
    assert d["trace_ids"] == [SLOW]
    assert "trace_links" not in d and "logs_link" not in d
    assert f"Traces in {tmp_path / 'telemetry'}/traces*.jsonl: {SLOW}" in d["message"]
    assert "http://127.0.0.1:3000" not in d["message"]

    d = diagnose(fresh, config(tmp_path, grafana="http://grafana.example:3000"), run=run)
    assert d["status"] == "diagnosed", d
    assert list(d["trace_links"]) == [SLOW]
    assert d["trace_links"][SLOW].startswith("http://grafana.example:3000/explore")
    assert f"Trace {SLOW}: http://grafana.example:3000/explore" in d["message"]
    assert "Traces in" not in d["message"]


def _post(url: str, payload: dict[str, Any]) -> int:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return int(resp.status)


def test_the_alert_is_archived_before_its_diagnosis(tmp_path: Path) -> None:
    release = threading.Event()
    calls: list[InvestigateOptions] = []

    def slow(options: InvestigateOptions) -> Report:
        calls.append(options)
        release.wait(10)
        return empty_report(options)

    archive_dir = tmp_path / "alerts"
    receiver = ArchiveReceiver(archive_dir, runbooks_dir=None, diagnosis=config(tmp_path))
    assert receiver.diagnoser is not None
    receiver.diagnoser._run = slow
    receiver.start()
    try:
        latency, other = alert(), alert("CircuitBreakerTripped", "fp2")
        assert _post(f"{receiver.url}/alerts/paging", notification(latency, other)) == 200
        # The same alert again (another channel): still one diagnosis.
        assert _post(f"{receiver.url}/alerts/chat", notification(latency)) == 200
        archived = read_archive(archive_dir).alerts
        assert [a.name for a in archived] == [
            "OrderLatencySLOFastBurn",
            "CircuitBreakerTripped",
            "OrderLatencySLOFastBurn",
        ]
        assert all(a.diagnosis is None for a in archived)
        tail = CliRunner().invoke(app, ["alerts", "tail", "--dir", str(archive_dir)])
        assert tail.exit_code == 0, tail.output
        assert tail.output.count("diagnosis pending") == 2

        release.set()
        receiver.diagnoser.join(10)
    finally:
        receiver.stop()
    assert len(calls) == 1
    # The alert's service and window: from before the alert started until it was received.
    assert calls[0].service == "execution-gateway"
    assert calls[0].start < datetime(2026, 3, 2, 14, 29, 55, tzinfo=UTC).timestamp() < calls[0].end
    archived = read_archive(archive_dir).alerts
    latency_alerts = [a for a in archived if a.name == "OrderLatencySLOFastBurn"]
    assert all(a.diagnosis and a.diagnosis["status"] == "no-cause" for a in latency_alerts)
    assert next(a for a in archived if a.name == "CircuitBreakerTripped").diagnosis is None
    report = latency_alerts[0].diagnosis["report"]  # type: ignore[index]
    assert report["url"].startswith(f"{receiver.url}/reports/")
    assert Path(report["path"]).parent == (tmp_path / "reports").resolve()

    tail = CliRunner().invoke(app, ["alerts", "tail", "--dir", str(archive_dir)])
    lines = [ln for ln in tail.output.splitlines() if "OrderLatencySLOFastBurn" in ln]
    assert len(lines) == 2
    assert all("| diagnosis no-cause: " in ln for ln in lines)
    out = CliRunner().invoke(app, ["alerts", "status", "--json", "--dir", str(archive_dir)])
    records = [json.loads(ln) for ln in out.output.splitlines()]
    by_name = {r["name"]: r for r in records}
    assert by_name["OrderLatencySLOFastBurn"]["diagnosis"]["status"] == "no-cause"
    assert (
        "[FIRING] OrderLatencySLOFastBurn"
        in (by_name["OrderLatencySLOFastBurn"]["diagnosis"]["message"])
    )


def test_the_receiver_serves_reports_and_nothing_else(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.reports_dir.mkdir(parents=True)
    (cfg.reports_dir / "A-fp-1.html").write_text("<html>r</html>")
    (tmp_path / "secret.html").write_text("no")
    receiver = ArchiveReceiver(tmp_path / "alerts", runbooks_dir=None, diagnosis=cfg).start()
    try:
        with urllib.request.urlopen(f"{receiver.url}/reports/A-fp-1.html", timeout=5) as r:
            assert r.read() == b"<html>r</html>"
        for path in ("/reports/../secret.html", "/reports/missing.html", "/reports/x.txt"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"{receiver.url}{path}", timeout=5)
            err.value.close()
            assert err.value.code == 404
    finally:
        receiver.stop()


def test_the_diagnosis_is_posted_to_chat_and_a_dead_chat_is_harmless(tmp_path: Path) -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer

    posted: list[dict[str, Any]] = []

    class Chat(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    chat = HTTPServer(("127.0.0.1", 0), Chat)
    threading.Thread(target=chat.serve_forever, daemon=True).start()
    url_file = tmp_path / "chat_url"
    url_file.write_text(f"http://127.0.0.1:{chat.server_address[1]}/hook\n")
    live, dead = tmp_path / "alerts-live", tmp_path / "alerts-dead"
    try:
        for url, where in ((read_secret_url(url_file), live),
                           (f"http://127.0.0.1:{free_port()}/hook", dead)):  # fmt: skip
            archive = AlertArchive(where)
            archive.append(notification(alert()), channel="paging")
            diagnoser = Diagnoser(archive, config(tmp_path, chat_webhook_url=url), run=empty_report)
            assert diagnoser.submit(notification(alert())) == 1
            assert diagnoser.join(15)
    finally:
        chat.shutdown()
        chat.server_close()
    # The live chat got the archived text; the dead one only cost a logged error: its
    # alert still has its diagnosis archived.
    texts = [p["text"] for p in posted]
    archived = [a.diagnosis for a in read_archive(live).alerts]
    assert len(texts) == 1 and len(archived) == 1 and archived[0] is not None
    assert texts[0] == archived[0]["message"]
    lost = [a.diagnosis for a in read_archive(dead).alerts]
    assert len(lost) == 1 and lost[0] is not None and lost[0]["message"] == texts[0]
    assert texts[0].startswith("[FIRING] OrderLatencySLOFastBurn")


def test_the_investigation_can_be_held_to_one_service() -> None:
    assert spikes.series_selector("m") == "m_bucket"
    assert spikes.latency_query("m", 0.99, "1m", 'a"b') == (
        'histogram_quantile(0.99, sum by (le) (rate(m_bucket{service_name="a\\"b"}[1m])))'
    )


def test_tail_follow_prints_an_alert_again_when_its_diagnosis_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = AlertArchive(tmp_path / "alerts")
    archive.append(notification(alert()), channel="paging")
    ticks = iter(range(3))

    def sleep(_: float) -> None:
        if next(ticks) == 0:
            d = {"status": "failed", "reason": "ConnectError: Prometheus down"}
            archive.append_diagnosis("fp1", "2026-03-02T14:29:55.000Z", d)
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr("trading_otel_tools.cli.alerts.time.sleep", sleep)
    out = CliRunner().invoke(app, ["alerts", "tail", "-f", "--dir", str(tmp_path / "alerts")])
    lines = out.output.splitlines()
    assert len(lines) == 2, out.output
    assert lines[0].endswith("| diagnosis pending")
    assert lines[1].endswith("| diagnosis failed: ConnectError: Prometheus down")


def test_reports_are_pruned_with_the_day_files(tmp_path: Path) -> None:
    now = datetime(2026, 6, 30, 12, tzinfo=UTC)
    archive = AlertArchive(tmp_path / "alerts", retention_days=10, clock=lambda: now)
    reports = tmp_path / "alerts" / "reports"
    reports.mkdir(parents=True)
    ages = {"old": 11, "edge": 10, "new": 1}
    for name, days in ages.items():
        path = reports / f"{name}.html"
        path.write_text("<html></html>")
        mtime = now.timestamp() - days * 86400
        os.utime(path, (mtime, mtime))
    (tmp_path / "alerts" / "2026-06-19.jsonl").write_text("")  # 11 days old
    (tmp_path / "alerts" / "2026-06-20.jsonl").write_text("")  # 10 days old: kept
    removed = archive.prune()
    assert sorted(p.name for p in removed) == ["2026-06-19.jsonl", "old.html"]
    assert sorted(p.name for p in reports.iterdir()) == ["edge.html", "new.html"]


def test_any_exception_is_an_archived_failed_diagnosis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trading_otel_tools.alerts.diagnosis as mod

    # The report cannot be rendered: the diagnosis is still archived, the report names why.
    def broken_render(report: Report) -> str:
        raise KeyError("template")

    monkeypatch.setattr(mod, "render_html", broken_render)
    d = diagnose(alert(), config(tmp_path), run=empty_report)
    assert d["status"] == "no-cause"
    assert d["report"]["error"].startswith("cannot write ") and "KeyError" in d["report"]["error"]
    assert list((tmp_path / "reports").iterdir()) == []

    # Rendered and written, but the rename fails: no temp file is left behind.
    monkeypatch.undo()
    real_replace = mod.os.replace

    def no_rename(src: Any, dst: Any) -> None:
        assert Path(src).exists()  # the temp file was written
        raise PermissionError("read-only reports directory")

    monkeypatch.setattr(mod.os, "replace", no_rename)
    d = diagnose(alert(), config(tmp_path), run=empty_report)
    monkeypatch.setattr(mod.os, "replace", real_replace)
    assert "PermissionError" in d["report"]["error"]
    assert list((tmp_path / "reports").iterdir()) == []  # no temp file left behind

    # The diagnosis step itself raises: a failed diagnosis, not "pending" forever.
    def boom(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(mod, "diagnose", boom)
    archive = AlertArchive(tmp_path / "alerts")
    archive.append(notification(alert()), channel="paging")
    diagnoser = Diagnoser(archive, config(tmp_path), run=empty_report)
    assert diagnoser.submit(notification(alert())) == 1
    assert diagnoser.join(10)
    (archived,) = read_archive(tmp_path / "alerts").alerts
    assert archived.diagnosis is not None
    assert archived.diagnosis["status"] == "failed"
    assert (
        archived.diagnosis["reason"] == "the diagnosis raised ZeroDivisionError: division by zero"
    )
    assert archived.diagnosis["message"].startswith("[FIRING] OrderLatencySLOFastBurn")


def test_the_report_is_replaced_atomically(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    first = diagnose(alert(), cfg, run=empty_report)
    second = diagnose(alert(), cfg, run=empty_report)
    assert first["report"]["path"] == second["report"]["path"]
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [
        Path(first["report"]["path"]).name
    ]


def test_chat_failures_are_logged_without_the_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    chat = HTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=chat.serve_forever, daemon=True).start()
    refusing = f"http://127.0.0.1:{chat.server_address[1]}/hook/SECRET"
    try:
        with caplog.at_level("ERROR"):
            assert post_to_chat(refusing, "t") is False
            assert post_to_chat("http://exa mple.com/hook/SECRET", "t") is False  # InvalidURL
            assert post_to_chat("hooks.slack.com/SECRET", "t") is False  # no scheme
    finally:
        chat.shutdown()
        chat.server_close()
    assert "HTTP 403" in caplog.text
    assert "SECRET" not in caplog.text and "127.0.0.1" not in caplog.text
    assert len(caplog.records) == 3


def test_a_bad_chat_url_file_is_a_clear_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from trading_otel_tools.alerts.__main__ import main

    empty, blank, missing, bad = (tmp_path / n for n in ("empty", "blank", "missing", "bad"))
    empty.write_text("")
    blank.write_text("\n  \n")
    bad.write_text("dummy-SECRET\n")
    for path, why in ((empty, "is empty"), (blank, "is empty"), (missing, "cannot read"),
                      (bad, r"does not hold an http\(s\) URL")):  # fmt: skip
        with pytest.raises(ValueError, match=why) as err:
            read_secret_url(path)
        assert str(path) in str(err.value) and "SECRET" not in str(err.value)
        out = CliRunner().invoke(
            app, ["alerts", "receiver", "--port", str(free_port()), "--dir",
                  str(tmp_path / "alerts"), "--chat-webhook-url-file", str(path)],
        )  # fmt: skip
        assert out.exit_code == 2 and out.exception is not None
        assert "Traceback" not in out.output
        with pytest.raises(SystemExit) as exit_:
            main(["--port", str(free_port()), "--chat-webhook-url-file", str(path)])
        assert exit_.value.code == 2
        assert str(path) in capsys.readouterr().err


def test_pending_only_while_a_diagnosis_can_still_come(tmp_path: Path) -> None:
    # Archived long ago (before diagnoses, --no-diagnosis, a receiver restart): never pending.
    old = datetime.now(UTC) - timedelta(seconds=PENDING_FOR_S + 5)
    AlertArchive(tmp_path / "alerts", clock=lambda: old).append(
        notification(alert(fp="old")), channel="paging"
    )
    archive = AlertArchive(tmp_path / "alerts")
    archive.append(notification(alert(fp="new")), channel="paging")
    # A repeat of the old alert just now: it was first archived long ago, still not pending.
    archive.append(notification(alert(fp="old")), channel="chat")
    tail = CliRunner().invoke(app, ["alerts", "tail", "--dir", str(tmp_path / "alerts")])
    lines = tail.output.splitlines()
    assert [ln.rsplit("| ", 1)[1] for ln in lines] == [
        "no diagnosis archived",
        "diagnosis pending",
        "no diagnosis archived",
    ], tail.output
    status = CliRunner().invoke(
        app, ["alerts", "status", "--dir", str(tmp_path / "alerts")], env={"COLUMNS": "400"}
    )
    assert "no diagnosis archived" in status.output and "diagnosis pending" in status.output


def _options(help_text: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z-]*", help_text)) - {"--help"}


def test_both_receiver_entry_points_take_the_same_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The stack starts `python -m trading_otel_tools.alerts`, users run
    # `trading-otel alerts receiver`; docs/alerting.md names one set of flags for both.
    from trading_otel_tools.alerts.__main__ import main as module_main

    with pytest.raises(SystemExit):
        module_main(["--help"])
    module = _options(capsys.readouterr().out)
    cli = CliRunner().invoke(app, ["alerts", "receiver", "--help"], env={"COLUMNS": "200"})
    assert cli.exit_code == 0, cli.output
    assert "--no-diagnosis" in module
    assert module <= _options(cli.output), module - _options(cli.output)


def test_a_slow_trace_that_lands_late_is_found_on_a_retry_without_stale_fields(
    tmp_path: Path,
) -> None:
    # The collector writes traces in batches: the first pass finds the exemplar's trace
    # missing, the retry finds it. Nothing of the first pass may stay in the diagnosis.
    fresh, investigate_now = diagnosable(tmp_path)
    traces = tmp_path / "telemetry" / "traces.jsonl"
    full = traces.read_text()
    traces.write_text("".join(line for line in full.splitlines(True) if SLOW not in line))
    passes: list[Report] = []

    def run(options: InvestigateOptions) -> Report:
        report = investigate_now(options)
        passes.append(report)
        traces.write_text(full)  # the batch lands after the first read
        return report

    d = diagnose(fresh, config(tmp_path, retry_s=0.1, budget_s=20), run=run)
    assert len(passes) == 2
    assert any(t.analysis is None for t in passes[0].slow)  # the first pass missed it
    assert d["status"] == "diagnosed", d
    assert d["trace_ids"] == [SLOW]
    assert d.get("notes", []) == list(passes[1].notes)
    assert "reason" not in d
