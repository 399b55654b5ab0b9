"""Latency alerts that arrive with their diagnosis.

When an order-latency alert fires, the receiver archives the notification at once, then
runs ``investigate`` (the engine of ``trading-otel investigate``) in a background thread,
bounded by :attr:`DiagnosisConfig.budget_s`. The result is appended to the archive as a
second line for the same alert (``AlertArchive.append_diagnosis``): archive first, diagnosis
after, so the diagnosis never delays the alert. Every outcome is archived, failures
included, with the reason in ``status`` and ``reason``:

``diagnosed``
    a top cause, its exemplar traces, the log query, Explore links and the HTML report.
``no-cause``
    the investigation ran but found nothing to blame (no breach in the window, no exemplar,
    no readable slow trace).
``failed``
    a backend could not be read (Prometheus, the trace store), or the investigation raised.
``timeout``
    the budget ran out: every HTTP request of the investigation is clipped to what is left
    of the budget and none starts after it (local file reads and the report are not).
``skipped``
    the receiver was already busy with as many diagnoses as it queues; the alert is paged
    as usual, without one.

Diagnoses run on a small fixed pool of worker threads (:data:`WORKERS`) fed by a bounded
queue (:data:`QUEUE_SIZE`): a burst of alerts, or of POSTs to the receiver, cannot start
more threads or HTTP calls than that.

The diagnosis also holds ``message``: the exact text a chat notification would carry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from trading_otel_tools.alerts.archive import AlertArchive
from trading_otel_tools.investigate import (
    InvestigateOptions,
    Report,
    investigate,
    links,
    render_html,
)
from trading_otel_tools.investigate.sources import loki_query
from trading_otel_tools.investigate.timeparse import format_ms, parse_instant
from trading_otel_tools.ports import local_url

log = logging.getLogger(__name__)

#: The order-latency alerts of deploy/prometheus/rules/alerts.yml that get a diagnosis.
LATENCY_ALERTS = frozenset(
    {"OrderLatencyHigh", "OrderLatencySLOFastBurn", "OrderLatencySLOSlowBurn", "HighAPILatency"}
)
MAX_TRACES = 5
#: Diagnoses run at once, and how many more wait; beyond that an alert is ``skipped``.
WORKERS = 2
QUEUE_SIZE = 4
#: An alert (fingerprint, start) is diagnosed once; it is remembered this long, and at most
#: this many are remembered (Alertmanager repeats a firing alert every few hours).
SEEN_TTL_S = 24 * 3600.0
SEEN_MAX = 4096
#: The default time budget of one diagnosis, counted from the alert's arrival.
DEFAULT_BUDGET_S = 60.0
#: A latency alert without a diagnosis is shown as pending for this long after it was first
#: received (the budget, and a margin for the queue and the archive write); after that it
#: never got one (archived before diagnoses existed, --no-diagnosis, a receiver restart).
PENDING_FOR_S = DEFAULT_BUDGET_S + 30.0
#: No single HTTP request of an investigation lasts longer than this.
REQUEST_TIMEOUT_S = 10.0
#: A report file name: alert name, fingerprint and start, nothing else.
_SAFE = re.compile(r"[^A-Za-z0-9_-]")

Investigate = Callable[[InvestigateOptions], Report]


class DeadlineExceeded(RuntimeError):
    """The diagnosis budget is spent: no further request is started."""


def deadline_client(deadline: float, cap_s: float = REQUEST_TIMEOUT_S) -> httpx.Client:
    """An HTTP client whose requests all end by ``deadline`` (``time.monotonic()``).

    Each request's timeout is clipped to what is left of the budget when it starts, and a
    request that would start after the deadline raises :class:`DeadlineExceeded` instead.
    """

    def clip(request: httpx.Request) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("the diagnosis budget is spent")
        request.extensions["timeout"] = httpx.Timeout(min(cap_s, left)).as_dict()

    return httpx.Client(timeout=cap_s, event_hooks={"request": [clip]})


@dataclass(frozen=True)
class DiagnosisConfig:
    """Where the investigation reads from, where the report goes, and its time budget.

    Args:
        prometheus: Prometheus base URL (exemplars and the latency histogram).
        telemetry_dir: The collector's telemetry files, read when ``tempo`` is unset.
        tempo: Tempo base URL, or None to read traces from ``telemetry_dir``.
        loki: Loki base URL, or None to read logs from ``telemetry_dir``.
        grafana: Grafana base URL for the Explore links (they use the datasource uids of
            deploy/grafana/provisioning/datasources), or None: the local stack has no
            Grafana, so no links; the message names the traces and where they are stored.
        reports_dir: Where the HTML reports are written (beside the archive).
        report_base_url: URL the receiver serves ``reports_dir`` under, or None.
        budget_s: The whole diagnosis, retries included, ends within this.
        lookback_s: The investigation window starts this long before the alert did.
        slo_s: The latency objective (the rules' 250 ms).
        retry_s: A trace not yet flushed by the collector is looked up again after this.
        chat_webhook_url: A Slack-compatible incoming webhook (``{"text": ...}``); when
            set, each diagnosis is posted there as the follow-up of its page. The local
            stack sets none: the archived ``message`` is the exact text it would post.
    """

    prometheus: str = local_url("prometheus")
    telemetry_dir: Path = Path("var/telemetry")
    tempo: str | None = None
    loki: str | None = None
    grafana: str | None = None
    reports_dir: Path = Path("var/alerts/reports")
    report_base_url: str | None = None
    budget_s: float = DEFAULT_BUDGET_S
    lookback_s: float = 900.0
    slo_s: float = 0.25
    retry_s: float = 5.0
    chat_webhook_url: str | None = field(default=None, repr=False)


def wants_diagnosis(alert: Mapping[str, Any]) -> bool:
    """A firing order-latency alert."""
    labels = alert.get("labels") or {}
    return alert.get("status") == "firing" and labels.get("alertname") in LATENCY_ALERTS


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def report_name(alert: Mapping[str, Any]) -> str:
    """The HTML report's file name for one alert (stable across notifications)."""
    labels = alert.get("labels") or {}
    start = _SAFE.sub("", str(alert.get("startsAt", "")))[:15]
    parts = (str(labels.get("alertname", "alert")), str(alert.get("fingerprint", "")), start)
    return "-".join(_SAFE.sub("_", p) for p in parts if p) + ".html"


def summarize(report: Report, config: DiagnosisConfig) -> dict[str, Any]:
    """The diagnosis fields of one finished investigation (no I/O)."""
    out: dict[str, Any] = {}
    if report.notes:
        out["notes"] = list(report.notes)
    if not report.points:
        out["status"] = "no-cause"
        out["reason"] = report.notes[0] if report.notes else "no latency observations"
        return out
    if not report.breached:
        out["status"] = "no-cause"
        out["reason"] = (
            f"p{report.options.quantile * 100:g} order latency stayed under "
            f"{format_ms(report.options.slo)} in the window"
            + (f" ({report.notes[0]})" if report.notes else "")
        )
        return out
    if report.trace_error:
        # The trace store is down or unreadable: no retry would find the traces.
        out["status"] = "failed"
        out["reason"] = report.trace_error
        return out
    slow = [t for t in report.slow if t.analysis is not None]
    if report.top is None or not slow:
        out["status"] = "no-cause"
        out["reason"] = (
            "no slow trace could be read: "
            + (report.notes[0] if report.notes else "exemplars point at traces not stored")
            if report.slow
            else "no exemplar inside the spike window"
        )
        return out
    top = report.top
    # The traces the top cause explains first, slowest first; then the other slow ones.
    picked = sorted(
        slow,
        key=lambda t: (t.analysis is None or t.analysis.top is None
                       or t.analysis.top.label != top.label, -t.exemplar.value),
    )[:MAX_TRACES]  # fmt: skip
    trace_ids = [t.trace_id for t in picked]
    services = {row.span.service for t in picked if t.analysis for row in t.analysis.rows}
    out["status"] = "diagnosed"
    out["top_cause"] = {
        "span": top.label,
        "service": top.service,
        "detail": top.detail,
        "share": round(top.median_share, 4),
        "top_in": top.top_in,
        "slow_traces": top.slow_traces,
        "slow_median_ms": round(top.median_slow_s * 1000, 1),
        "baseline_median_ms": (
            None if top.median_baseline_s is None else round(top.median_baseline_s * 1000, 1)
        ),
        "baseline_traces": top.baseline_traces,
        "sentence": top.sentence,
    }
    out["trace_ids"] = trace_ids
    out["log_query"] = loki_query(services, trace_ids) if services else None
    out["trace_source"] = report.trace_source
    if config.grafana:
        # investigate made each trace's link (its exemplar's time +- 5 min); the logs
        # link covers all of them.
        out["trace_links"] = {t.trace_id: t.trace_link for t in picked if t.trace_link}
        if out["log_query"]:
            lo = min(t.exemplar.timestamp for t in picked) - 300
            hi = max(t.exemplar.timestamp for t in picked) + 300
            out["logs_link"] = links.logs_link(config.grafana, out["log_query"], lo, hi)
    return out


def one_line(diagnosis: Mapping[str, Any] | None) -> str:
    """The diagnosis in one line, for ``alerts tail`` and ``alerts status``."""
    if diagnosis is None:
        return "diagnosis pending"
    status = diagnosis.get("status", "?")
    if status != "diagnosed":
        return f"diagnosis {status}: {diagnosis.get('reason', '')}"
    top = diagnosis["top_cause"]
    base = top.get("baseline_median_ms")
    versus = "no baseline" if base is None else f"baseline {base:g} ms"
    ids = diagnosis.get("trace_ids", [])
    traces = (
        f"trace {ids[0]}" + (f" +{len(ids) - 1}" if len(ids) > 1 else "") if ids else "no trace"
    )
    return (
        f"cause {top['span']} ({top['service']}) {top['share']:.0%} of latency, median "
        f"{top['slow_median_ms']:g} ms vs {versus}; {traces}"
    )


def message(alert: Mapping[str, Any], diagnosis: Mapping[str, Any]) -> str:
    """The chat text of a diagnosed alert: the page, then its cause and where to click."""
    labels = alert.get("labels") or {}
    annotations = alert.get("annotations") or {}
    head = (
        f"[FIRING] {labels.get('alertname', '?')} {labels.get('service', '')} "
        f"({labels.get('severity', '-')}): {annotations.get('summary', '')}"
    ).rstrip(": ")
    lines = [head]
    if diagnosis.get("status") == "diagnosed":
        lines.append(f"Cause: {diagnosis['top_cause']['sentence']}")
        trace_links = diagnosis.get("trace_links") or {}
        for tid, url in trace_links.items():
            lines.append(f"Trace {tid}: {url}")
        if not trace_links and diagnosis.get("trace_ids"):
            # No Grafana to link to: the ids, and where to read them (the report shows them).
            where = diagnosis.get("trace_source") or "the trace store"
            lines.append(f"Traces in {where}: {', '.join(diagnosis['trace_ids'])}")
        if diagnosis.get("log_query"):
            lines.append(f"Logs: {diagnosis['log_query']}")
    else:
        lines.append(f"Diagnosis {diagnosis.get('status')}: {diagnosis.get('reason', '')}")
    report = diagnosis.get("report") or {}
    if report.get("url") or report.get("path"):
        lines.append(f"Report: {report.get('url') or report.get('path')}")
    if annotations.get("runbook_url"):
        lines.append(f"Runbook: {annotations['runbook_url']}")
    return "\n".join(lines)


def diagnose(
    alert: Mapping[str, Any],
    config: DiagnosisConfig,
    *,
    now: Callable[[], float] = time.time,
    run: Investigate | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Investigate one alert within the budget; never raises. The diagnosis as a dict.

    ``deadline`` (``time.monotonic()``) defaults to the budget from now; the receiver
    passes the budget from when the alert arrived, so time spent queued counts. ``run``
    replaces the investigation (tests); by default it is ``investigate`` over an HTTP
    client bound to the deadline.
    """
    t0 = now()
    if deadline is None:
        deadline = time.monotonic() + config.budget_s
    labels = alert.get("labels") or {}
    try:
        starts = parse_instant(str(alert.get("startsAt", "")))
    except ValueError:
        starts = t0  # no start time: the delay is counted from now
    window = (starts - config.lookback_s, t0)
    diagnosis: dict[str, Any] = {
        "alertname": labels.get("alertname", ""),
        "service": labels.get("service", ""),
        "window": {"start": _iso(window[0]), "end": _iso(window[1])},
    }
    timed_out = {
        "status": "timeout",
        "reason": f"the investigation did not end within {config.budget_s:g} s",
    }
    report: Report | None = None
    outcome: dict[str, Any] = {}  # the last pass's, whole: no field of an earlier pass stays
    client = deadline_client(deadline) if run is None else None
    try:
        while True:
            if time.monotonic() >= deadline:
                outcome = timed_out
                break
            options = InvestigateOptions(
                start=window[0],
                end=max(now(), window[1]),
                slo=config.slo_s,
                prometheus=config.prometheus,
                tempo=config.tempo,
                loki=config.loki,
                telemetry_dir=config.telemetry_dir,
                grafana=config.grafana,
                timeout=REQUEST_TIMEOUT_S,
                service=str(labels.get("service") or "") or None,
            )
            report = investigate(options, client=client) if run is None else run(options)
            outcome = summarize(report, config)
            # The collector writes traces in batches: a slow trace may land seconds later.
            unread = report.breached and any(t.analysis is None for t in report.slow)
            if outcome["status"] != "no-cause" or not unread:
                break
            if time.monotonic() + config.retry_s + 1 >= deadline:
                break
            time.sleep(config.retry_s)
    except Exception as exc:  # any failure becomes the visible reason
        # A request cut short by the deadline surfaces as whatever its caller wraps it in.
        report = None  # an earlier pass's report would not match the outcome
        if isinstance(exc, DeadlineExceeded) or time.monotonic() >= deadline - 0.05:
            outcome = timed_out
        else:
            outcome = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    finally:
        if client is not None:
            client.close()
    diagnosis.update(outcome)
    if report is not None and diagnosis.get("status") != "timeout":
        diagnosis["report"] = _write_report(report, config, alert)
    end = now()
    diagnosis["elapsed_s"] = round(end - t0, 2)
    diagnosis["diagnosed_at"] = _iso(end)
    # startsAt is when Prometheus fired the alert: the delay the on-call person sees.
    diagnosis["fired_to_diagnosis_s"] = round(end - starts, 2)
    diagnosis["message"] = message(alert, diagnosis)
    return diagnosis


def _write_report(
    report: Report, config: DiagnosisConfig, alert: Mapping[str, Any]
) -> dict[str, str]:
    """Render and write the HTML report atomically (temp file, then rename); never raises."""
    name = report_name(alert)
    path = config.reports_dir / name
    tmp = path.with_name(f".{name}.{threading.get_ident()}.tmp")
    try:
        config.reports_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(render_html(report), encoding="utf-8")
        os.replace(tmp, path)
    except Exception as exc:  # a report that cannot be written is named, never fatal
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return {"error": f"cannot write {path}: {type(exc).__name__}: {exc}"}
    out = {"path": str(path.resolve())}
    if config.report_base_url:
        out["url"] = f"{config.report_base_url.rstrip('/')}/{quote(name)}"
    return out


def read_secret_url(path: Path | None) -> str | None:
    """The URL kept in ``path`` (first line, stripped), or None without a path.

    Raises:
        ValueError: naming the file, when it cannot be read, is empty or holds no
            http(s) URL (its content is never repeated: it is a secret).
    """
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the chat webhook URL file {path}: {exc}") from exc
    lines = text.strip().splitlines()
    if not lines:
        raise ValueError(f"the chat webhook URL file {path} is empty")
    url = lines[0].strip()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the chat webhook URL file {path} does not hold an http(s) URL")
    return url


def post_to_chat(url: str, text: str, timeout_s: float = 10.0) -> bool:
    """POST ``{"text": text}`` to a chat incoming webhook; False (logged) on any failure."""
    try:
        resp = httpx.post(url, json={"text": text}, timeout=timeout_s)
        resp.raise_for_status()
    except httpx.HTTPStatusError as exc:
        # The URL is a secret: log the status code, never the address.
        log.error("chat refused the diagnosis: HTTP %d", exc.response.status_code)
        return False
    except Exception as exc:  # InvalidURL, connection errors...: none of them is fatal
        log.error("cannot post the diagnosis to chat: %s", type(exc).__name__)
        return False
    return True


def failed(alert: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """A ``failed`` diagnosis with its message; never raises."""
    labels = alert.get("labels") or {}
    diagnosis: dict[str, Any] = {
        "alertname": labels.get("alertname", ""),
        "service": labels.get("service", ""),
        "status": "failed",
        "reason": reason,
    }
    try:
        diagnosis["message"] = message(alert, diagnosis)
    except Exception:
        diagnosis["message"] = f"Diagnosis failed: {reason}"
    return diagnosis


Key = tuple[str, str]


class Diagnoser:
    """Diagnoses fired latency alerts on a small worker pool, archives every result.

    The same alert (fingerprint and start) is diagnosed once, whatever the number of
    notifications and channels it arrives through. At most ``workers`` diagnoses run and
    ``queue_size`` wait; an alert beyond that is archived with a ``skipped`` diagnosis.
    """

    def __init__(
        self,
        archive: AlertArchive,
        config: DiagnosisConfig,
        run: Investigate | None = None,
        on_done: Callable[[dict[str, Any]], None] | None = None,
        *,
        workers: int = WORKERS,
        queue_size: int = QUEUE_SIZE,
        seen_ttl_s: float = SEEN_TTL_S,
        seen_max: int = SEEN_MAX,
    ) -> None:
        self.archive = archive
        self.config = config
        self._run = run
        self._on_done = on_done
        self._seen: OrderedDict[Key, float] = OrderedDict()
        self._seen_ttl_s = seen_ttl_s
        self._seen_max = seen_max
        self._queue: queue.Queue[tuple[Key, Mapping[str, Any], float]] = queue.Queue(queue_size)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._unfinished = 0
        self._workers_wanted = workers
        self._workers: list[threading.Thread] = []

    def submit(self, payload: Mapping[str, Any]) -> int:
        """Queue a diagnosis for each new firing latency alert of ``payload``; how many.

        An alert the queue has no room for is archived at once with a ``skipped`` diagnosis.
        """
        started = 0
        for alert in payload.get("alerts", []):
            if not wants_diagnosis(alert):
                continue
            key = (str(alert.get("fingerprint", "")), str(alert.get("startsAt", "")))
            arrived = time.monotonic()
            with self._lock:
                if not self._remember(key, arrived):
                    continue
                self._start_workers()
                try:
                    self._queue.put_nowait((key, alert, arrived + self.config.budget_s))
                except queue.Full:
                    skipped = True
                else:
                    skipped = False
                    self._unfinished += 1
            if skipped:
                self._skip(key, alert)
                continue
            started += 1
        return started

    def _remember(self, key: Key, at: float) -> bool:
        """Record ``key``; False when it was already seen (caller holds the lock)."""
        while self._seen:
            oldest, when = next(iter(self._seen.items()))
            if at - when < self._seen_ttl_s and len(self._seen) < self._seen_max:
                break
            del self._seen[oldest]
        if key in self._seen:
            return False
        self._seen[key] = at
        return True

    def _start_workers(self) -> None:
        while len(self._workers) < self._workers_wanted:
            thread = threading.Thread(target=self._loop, name="alert-diagnosis", daemon=True)
            thread.start()
            self._workers.append(thread)

    def _skip(self, key: Key, alert: Mapping[str, Any]) -> None:
        reason = (
            f"the receiver was already running {self._workers_wanted} diagnoses with "
            f"{self._queue.maxsize} waiting"
        )
        log.warning("diagnosis of %s skipped: %s", key, reason)
        diagnosis: dict[str, Any] = {"status": "skipped", "reason": reason}
        diagnosis["message"] = message(alert, diagnosis)
        try:
            self.archive.append_diagnosis(key[0], key[1], diagnosis)
        except OSError as exc:
            log.error("cannot archive the diagnosis of %s: %s", key, exc)

    def _loop(self) -> None:
        while True:
            key, alert, deadline = self._queue.get()
            try:
                self._work(key, alert, deadline)
            finally:
                with self._lock:
                    self._unfinished -= 1
                    self._idle.notify_all()

    def _work(self, key: Key, alert: Mapping[str, Any], deadline: float) -> None:
        """Diagnose, archive, post; any exception ends as an archived ``failed`` diagnosis."""
        try:
            diagnosis = diagnose(alert, self.config, run=self._run, deadline=deadline)
        except Exception as exc:
            log.exception("the diagnosis of %s raised", key)
            diagnosis = failed(alert, f"the diagnosis raised {type(exc).__name__}: {exc}")
        try:
            self.archive.append_diagnosis(key[0], key[1], diagnosis)
        except Exception as exc:
            log.error("cannot archive the diagnosis of %s: %s", key, exc)
            return
        log.info("diagnosis of %s: %s", diagnosis.get("alertname"), one_line(diagnosis))
        log.info("notification text:\n%s", diagnosis["message"])
        if self.config.chat_webhook_url:
            post_to_chat(self.config.chat_webhook_url, diagnosis["message"])
        if self._on_done is not None:
            try:
                self._on_done(diagnosis)
            except Exception:
                log.exception("the diagnosis callback raised")

    def join(self, timeout: float) -> bool:
        """Wait until every queued diagnosis is archived (tests); whether they all were."""
        end = time.monotonic() + timeout
        with self._idle:
            while self._unfinished:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True
