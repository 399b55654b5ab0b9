"""``investigate(options) -> Report``: from a latency spike to traces, causes and logs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from trading_otel_tools.investigate import links, spikes
from trading_otel_tools.investigate.analysis import TraceAnalysis, analyze
from trading_otel_tools.investigate.model import Exemplar, LogEntry, SpikeWindow, Trace
from trading_otel_tools.investigate.prom import (
    EXEMPLAR_HINT,
    ExemplarStorageError,
    PrometheusClient,
)
from trading_otel_tools.investigate.sources import (
    FileLogSource,
    FileTraceSource,
    LogSource,
    LokiLogSource,
    SourceError,
    TempoTraceSource,
    TraceSource,
    loki_query,
)
from trading_otel_tools.investigate.summary import TopCause, top_cause
from trading_otel_tools.investigate.timeparse import format_instant, format_ms, parse_duration
from trading_otel_tools.ports import local_url

METRIC = "trading_order_latency_seconds"


@dataclass(frozen=True)
class InvestigateOptions:
    """What to investigate and where the data lives. Times are unix seconds."""

    start: float
    end: float
    slo: float = 0.25
    """Latency objective in seconds."""
    quantile: float = 0.99
    prometheus: str = local_url("prometheus")
    tempo: str | None = None
    loki: str | None = None
    telemetry_dir: Path = Path("var/telemetry")
    grafana: str | None = None
    metric: str = METRIC
    rate_window: str = "1m"
    step: float | None = None
    """Range-query step in seconds; chosen from the range when ``None``."""
    max_traces: int = 20
    """At most this many slow traces (the slowest) and this many baseline traces."""
    timeout: float = 10.0
    service: str | None = None
    """Only this ``service_name``'s histogram series and exemplars; all services when None."""

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("the end of the range must be after its start")
        if not 0 < self.quantile < 1:
            raise ValueError(f"quantile must be between 0 and 1, got {self.quantile}")
        if self.slo <= 0:
            raise ValueError(f"slo must be positive, got {self.slo}")
        if self.max_traces < 1:
            raise ValueError("max_traces must be at least 1")


@dataclass
class TraceReport:
    """One exemplar's trace: its analysis, logs and links (or why it is missing)."""

    trace_id: str
    role: str
    """``slow`` (in a spike window) or ``baseline`` (outside)."""
    exemplar: Exemplar
    analysis: TraceAnalysis | None = None
    missing_reason: str | None = None
    logs: list[LogEntry] = field(default_factory=list)
    log_query: str | None = None
    trace_link: str | None = None
    logs_link: str | None = None


@dataclass
class Report:
    """Everything ``investigate`` found; the renderers turn it into text, JSON or HTML."""

    options: InvestigateOptions
    query: str
    step: float
    points: list[tuple[float, float]]
    windows: list[SpikeWindow]
    peak: tuple[float, float] | None
    traces: list[TraceReport]
    top: TopCause | None
    trace_source: str
    log_source: str
    notes: list[str] = field(default_factory=list)
    metric_link: str | None = None
    trace_error: str | None = None
    """Why the trace source could not be read at all (it is also a note), or None."""

    @property
    def breached(self) -> bool:
        return bool(self.windows)

    @property
    def slow(self) -> list[TraceReport]:
        return [t for t in self.traces if t.role == "slow"]

    @property
    def baseline(self) -> list[TraceReport]:
        return [t for t in self.traces if t.role == "baseline"]

    @property
    def missing(self) -> list[TraceReport]:
        return [t for t in self.traces if t.analysis is None]


Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


def investigate(
    options: InvestigateOptions, progress: Progress = _noop, client: httpx.Client | None = None
) -> Report:
    """Run the whole investigation.

    Raises:
        PrometheusError: Prometheus cannot be reached or refuses the query.
        ExemplarStorageError: there is a spike but Prometheus keeps no exemplars.
        SourceError: the trace or log backend cannot be read.
    """
    own = client is None
    http = client or httpx.Client(timeout=options.timeout)
    try:
        return _run(options, progress, http)
    finally:
        if own:
            http.close()


def _run(opts: InvestigateOptions, progress: Progress, http: httpx.Client) -> Report:
    prom = PrometheusClient(opts.prometheus, http)
    step = opts.step or spikes.choose_step(opts.start, opts.end)
    query = spikes.latency_query(opts.metric, opts.quantile, opts.rate_window, opts.service)
    progress(f"Querying Prometheus for p{opts.quantile * 100:g} of {opts.metric}")
    series = prom.query_range(query, opts.start, opts.end, step)
    points = sorted(p for s in series for p in s.points)
    windows = spikes.find_windows(points, opts.slo, step)
    peak = max(points, key=lambda p: p[1]) if points else None
    trace_source: TraceSource = (
        TempoTraceSource(opts.tempo, http) if opts.tempo else FileTraceSource(opts.telemetry_dir)
    )
    log_source: LogSource = (
        LokiLogSource(opts.loki, http) if opts.loki else FileLogSource(opts.telemetry_dir)
    )
    report = Report(
        opts,
        query,
        step,
        points,
        windows,
        peak,
        [],
        None,
        trace_source.description,
        log_source.description,
    )
    if opts.grafana:
        report.metric_link = links.metric_link(opts.grafana, query, opts.start, opts.end)
    if not points:
        report.notes.append(
            f"no {opts.metric} observations between {format_instant(opts.start)} and "
            f"{format_instant(opts.end)} (the quantile is undefined without orders): are the "
            "services running, receiving orders, and scraped by this Prometheus?"
        )
    if not windows:
        return report

    picked = _exemplars(prom, opts, windows, progress)
    if picked.seen == 0:
        raise ExemplarStorageError(_no_exemplars_message(prom, len(windows)))
    slow, baseline = picked.slow, picked.baseline
    if not slow:
        report.notes.append(
            "Prometheus has exemplars, but none inside the spike windows: the slow requests "
            "may not have been traced (sampled out, or no span active when the latency "
            "was recorded)"
        )
    elif not picked.above_slo:
        report.notes.append(
            f"no exemplar above the SLO ({format_ms(opts.slo)}) inside the spike windows; "
            "showing the slowest ones there instead"
        )

    report.traces = [TraceReport(e.trace_id, "slow", e) for e in slow] + [
        TraceReport(e.trace_id, "baseline", e) for e in baseline
    ]
    progress(f"Fetching {len(report.traces)} traces from {trace_source.description}")
    try:
        found = trace_source.fetch([t.trace_id for t in report.traces])
    except SourceError as exc:
        found = {}
        report.trace_error = str(exc)
        report.notes.append(str(exc))
    for tr in report.traces:
        trace = found.get(tr.trace_id)
        if trace is None or not trace.spans:
            tr.missing_reason = (
                f"not found in {trace_source.description} (sampled out, aged out, or not "
                "flushed yet)"
            )
            continue
        tr.analysis = analyze(trace, tr.exemplar.span_id)
    analyzed_slow = [t.analysis for t in report.slow if t.analysis is not None]
    analyzed_base = [t.analysis for t in report.baseline if t.analysis is not None]
    report.top = top_cause(analyzed_slow, analyzed_base)

    with_spans = [found[t.trace_id] for t in report.slow if t.trace_id in found]
    if with_spans:
        progress(f"Fetching logs from {log_source.description}")
        try:
            logs = log_source.fetch(with_spans)
        except SourceError as exc:
            logs = {}
            report.notes.append(str(exc))
        for tr in report.slow:
            tr.logs = logs.get(tr.trace_id, [])
    for source in (trace_source, log_source):
        if isinstance(source, FileTraceSource | FileLogSource) and (note := source.problems.note()):
            report.notes.append(note)
    _add_links(report, found)
    return report


@dataclass(frozen=True)
class _Picked:
    slow: list[Exemplar]
    baseline: list[Exemplar]
    seen: int
    """Exemplars Prometheus returned over the whole range, before any filtering."""
    above_slo: bool


def _exemplars(
    prom: PrometheusClient,
    opts: InvestigateOptions,
    windows: list[SpikeWindow],
    progress: Progress,
) -> _Picked:
    """Slow exemplars from each spike window, and baseline ones from outside them."""
    rate_s = parse_duration(opts.rate_window)
    ranges = [spikes.exemplar_range(w, rate_s) for w in windows]
    query = spikes.series_selector(opts.metric, opts.service)
    in_windows: list[Exemplar] = []
    for i, (lo, hi) in enumerate(ranges, 1):
        progress(f"Querying exemplars for spike window {i}/{len(ranges)}")
        in_windows += prom.query_exemplars(query, max(lo, opts.start), hi)
    progress("Querying baseline exemplars outside the spike windows")
    everything = prom.query_exemplars(query, opts.start, opts.end)
    window_hits = spikes.dedupe(in_windows)
    slow = [e for e in window_hits if e.value > opts.slo]
    above = bool(slow)
    if not slow:
        # Nothing above the SLO was sampled: the slowest orders in the window still tell.
        slow = window_hits
    # Baseline: normal orders outside the windows themselves. The stretch before a window
    # that may hold its first slow orders is not excluded: its fast orders came before.
    spans = [(w.start, w.end) for w in windows]
    baseline = [
        e
        for e in spikes.dedupe(everything)
        if e.value <= opts.slo and not spikes.in_any(e.timestamp, spans)
    ]
    # The most recent ones: closest to the spike, so the same code and data are compared.
    baseline.sort(key=lambda e: e.timestamp)
    return _Picked(
        slow[: opts.max_traces],
        baseline[-opts.max_traces :],
        len(everything) + len(in_windows),
        above,
    )


def _no_exemplars_message(prom: PrometheusClient, windows: int) -> str:
    enabled = prom.exemplar_storage_enabled()
    head = f"{windows} spike window(s) found, but they cannot be followed to traces: "
    if enabled is False:
        return f"{head}Prometheus runs without exemplar storage. Fix: {EXEMPLAR_HINT}."
    if enabled is True:
        return (
            f"{head}exemplar storage is on, but Prometheus holds no exemplars for this range. "
            "Check that the services record latencies inside a sampled span and that the "
            "target is scraped in the OpenMetrics format (exemplars are dropped otherwise)."
        )
    return (
        f"{head}Prometheus returned no exemplars at all for this range, although the "
        f"histogram has data; exemplar storage is probably off. Fix: {EXEMPLAR_HINT}."
    )


def _add_links(report: Report, found: dict[str, Trace]) -> None:
    grafana = report.options.grafana
    for tr in report.traces:
        trace = found.get(tr.trace_id)
        lo, hi = tr.exemplar.timestamp - 300, tr.exemplar.timestamp + 300
        if trace is not None and trace.spans:
            tr.log_query = loki_query((s.service for s in trace.spans), tr.trace_id)
        if grafana:
            tr.trace_link = links.trace_link(grafana, tr.trace_id, lo, hi)
            if tr.log_query:
                tr.logs_link = links.logs_link(grafana, tr.log_query, lo, hi)


def now() -> float:
    """Wall-clock unix seconds (a seam for the CLI's ``--since``)."""
    return time.time()
