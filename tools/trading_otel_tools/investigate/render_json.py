"""The report as JSON-ready data: the same content as the text report, for machines."""

from __future__ import annotations

import json
from typing import Any

from trading_otel_tools.investigate.analysis import TraceAnalysis
from trading_otel_tools.investigate.core import Report, TraceReport
from trading_otel_tools.investigate.model import LogEntry
from trading_otel_tools.investigate.timeparse import format_instant

SCHEMA_VERSION = 1


def report_dict(report: Report) -> dict[str, Any]:
    """A plain dict of the whole report (times are unix seconds plus RFC 3339)."""
    o = report.options
    top = report.top
    return {
        "schema_version": SCHEMA_VERSION,
        "range": {"start": o.start, "end": o.end, "start_time": format_instant(o.start),
                  "end_time": format_instant(o.end)},
        "metric": o.metric,
        "quantile": o.quantile,
        "slo_seconds": o.slo,
        "query": report.query,
        "step_seconds": report.step,
        "sources": {"prometheus": o.prometheus, "traces": report.trace_source,
                    "logs": report.log_source},
        "breached": report.breached,
        "peak": None if report.peak is None else
        {"time": report.peak[0], "value_seconds": report.peak[1]},
        "windows": [
            {"start": w.start, "end": w.end, "start_time": format_instant(w.start),
             "end_time": format_instant(w.end), "peak_seconds": w.peak, "peak_at": w.peak_at}
            for w in report.windows
        ],
        "top_cause": None if top is None else {
            "label": top.label, "service": top.service, "top_in": top.top_in,
            "slow_traces": top.slow_traces, "median_share": top.median_share,
            "median_slow_seconds": top.median_slow_s,
            "median_baseline_seconds": top.median_baseline_s,
            "baseline_traces": top.baseline_traces, "summary": top.sentence,
            "detail": top.detail,
        },
        "traces": [_trace(t) for t in report.traces],
        "missing_trace_ids": [t.trace_id for t in report.missing],
        "series": [[t, v] for t, v in report.points],
        "notes": list(report.notes),
        "grafana_link": report.metric_link,
    }  # fmt: skip


def render_json(report: Report) -> str:
    """The report as an indented JSON document."""
    return json.dumps(report_dict(report), indent=2, sort_keys=False) + "\n"


def _trace(t: TraceReport) -> dict[str, Any]:
    ex = t.exemplar
    return {
        "trace_id": t.trace_id,
        "role": t.role,
        "found": t.analysis is not None,
        "missing_reason": t.missing_reason,
        "exemplar": {"value_seconds": ex.value, "timestamp": ex.timestamp,
                     "span_id": ex.span_id, "labels": ex.labels},
        **(_analysis(t.analysis) if t.analysis else {}),
        "logs": [_log(e) for e in t.logs],
        "log_query": t.log_query,
        "trace_link": t.trace_link,
        "logs_link": t.logs_link,
    }  # fmt: skip


def _analysis(a: TraceAnalysis) -> dict[str, Any]:
    root = a.root
    return {
        "duration_seconds": a.duration_ns / 1e9,
        "root": {"span_id": root.span_id, "service": root.service, "name": root.name},
        "top": None if a.top is None else a.top.label,
        "contributions": [
            {"label": c.label, "service": c.service, "detail": c.detail,
             "critical_seconds": c.critical_ns / 1e9, "share": c.share,
             "span_ids": list(c.span_ids)}
            for c in a.contributions
        ],
        "spans": [
            {"span_id": r.span.span_id, "parent_span_id": r.span.parent_span_id,
             "name": r.span.name, "label": r.label, "service": r.span.service,
             "kind": r.span.kind, "depth": r.depth, "error": r.span.is_error,
             "start_offset_seconds": (r.span.start_ns - root.start_ns) / 1e9,
             "duration_seconds": r.span.duration_ns / 1e9, "self_seconds": r.self_ns / 1e9,
             "critical_seconds": r.critical_ns / 1e9}
            for r in a.rows
        ],
    }  # fmt: skip


def _log(e: LogEntry) -> dict[str, Any]:
    return {
        "time": e.time_ns / 1e9,
        "severity_text": e.severity_text,
        "severity_number": e.severity_number,
        "service": e.service,
        "span_id": e.span_id,
        "body": e.body,
        "attributes": {k: v for k, v in e.attributes.items() if _jsonable(v)},
    }


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
