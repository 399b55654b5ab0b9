"""The report as plain text, for terminals, incident channels and CI logs."""

from __future__ import annotations

from trading_otel_tools.investigate.analysis import TraceAnalysis
from trading_otel_tools.investigate.core import Report, TraceReport
from trading_otel_tools.investigate.timeparse import format_instant, format_ms

BAR_WIDTH = 32
LABEL_WIDTH = 44


def render_text(report: Report, waterfalls: int = 5, log_lines: int = 10) -> str:
    """Render ``report``; at most ``waterfalls`` slow traces get a waterfall."""
    o = report.options
    q = f"p{o.quantile * 100:g}"
    out = [
        f"Order latency investigation, {format_instant(o.start)} to {format_instant(o.end)}",
        f"  {q} of {o.metric} against an SLO of {format_ms(o.slo)} (step {report.step:g}s)",
        f"  Prometheus {o.prometheus}; traces from {report.trace_source}; "
        f"logs from {report.log_source}",
        "",
    ]
    if report.metric_link:
        out += [f"  Grafana: {report.metric_link}", ""]
    for note in report.notes:
        out.append(f"Note: {note}")
    if report.notes:
        out.append("")
    if not report.breached:
        peak = (
            f"the peak was {format_ms(report.peak[1])} at {format_instant(report.peak[0])}"
            if report.peak
            else "there was no data to compute it"
        )
        out.append(f"No SLO breach: {q} stayed at or under {format_ms(o.slo)}; {peak}.")
        return "\n".join(out) + "\n"

    out.append(f"SLO breached in {len(report.windows)} window(s):")
    for i, w in enumerate(report.windows, 1):
        out.append(
            f"  {i}. {format_instant(w.start)} to {format_instant(w.end)}: peak {q} "
            f"{format_ms(w.peak)} at {format_instant(w.peak_at)}"
        )
    out.append("")
    if report.top:
        out += [f"Top cause: {report.top.sentence}", f"  ({report.top.detail})", ""]
    else:
        out += ["Top cause: unknown (none of the slow traces could be read).", ""]

    slow = report.slow
    found = [t for t in slow if t.analysis]
    out.append(f"Slow orders: {len(slow)} exemplar trace(s), {len(found)} found")
    out += ["  " + _trace_line(t) for t in slow]
    base = report.baseline
    if base:
        n = sum(1 for t in base if t.analysis)
        out.append(f"Baseline: {len(base)} exemplar trace(s) outside the spike, {n} found")
    missing = report.missing
    if missing:
        out += ["", f"Traces not found ({len(missing)}):"]
        out += [
            f"  {t.trace_id} ({t.role}, {format_ms(t.exemplar.value)} at "
            f"{format_instant(t.exemplar.timestamp)}): {t.missing_reason}"
            for t in missing
        ]

    shown = found[:waterfalls]
    for t in shown:
        assert t.analysis is not None
        out += ["", *waterfall_lines(t.analysis)]
        if t.trace_link:
            out.append(f"  trace in Grafana: {t.trace_link}")
        out += _log_lines(t, log_lines)
    if len(found) > len(shown):
        out += ["", f"({len(found) - len(shown)} more waterfall(s) in --json / --html output)"]
    return "\n".join(out) + "\n"


def _trace_line(t: TraceReport) -> str:
    head = (
        f"{t.trace_id}  {format_ms(t.exemplar.value):>8} at {format_instant(t.exemplar.timestamp)}"
    )
    if t.analysis is None:
        return f"{head}  NOT FOUND"
    top = t.analysis.top
    cause = f"{top.label} {top.share:.0%}" if top else "-"
    return f"{head}  top: {cause}"


def waterfall_lines(a: TraceAnalysis) -> list[str]:
    """A text waterfall: one row per span, bars on a shared time axis.

    Solid bars are spans on the critical path, shaded bars are off it.
    """
    total = max(1, a.duration_ns)
    root = a.root
    lines = [
        f"Trace {a.trace_id}: {root.service} {root.name!r}, {format_ms(a.duration_ns / 1e9)}",
        f"  {'span':<{LABEL_WIDTH}} {'duration':>9} {'self':>9} {'critical':>9}  "
        f"|{'0':<{BAR_WIDTH // 2}}{format_ms(a.duration_ns / 1e9):>{BAR_WIDTH - BAR_WIDTH // 2}}|",
    ]
    for row in a.rows:
        s = row.span
        start = max(0, s.start_ns - root.start_ns)
        lo = min(BAR_WIDTH - 1, int(start * BAR_WIDTH / total))
        hi = max(lo + 1, min(BAR_WIDTH, round((start + s.duration_ns) * BAR_WIDTH / total)))
        fill = "█" if row.critical_ns > 0 else "░"
        bar = " " * lo + fill * (hi - lo) + " " * (BAR_WIDTH - hi)
        label = "  " * row.depth + row.label + (" !" if s.is_error else "")
        if len(label) > LABEL_WIDTH:
            label = label[: LABEL_WIDTH - 1] + "…"
        lines.append(
            f"  {label:<{LABEL_WIDTH}} {format_ms(s.duration_ns / 1e9):>9} "
            f"{format_ms(row.self_ns / 1e9):>9} {format_ms(row.critical_ns / 1e9):>9}  |{bar}|"
        )
    # The three largest causes, leaving out those that round to nothing.
    shown = [c for c in a.contributions[:3] if c.share >= 0.005] or a.contributions[:1]
    top = ", ".join(f"{c.label} {c.share:.0%}" for c in shown)
    lines.append(f"  critical path: {top}")
    return lines


def _log_lines(t: TraceReport, limit: int) -> list[str]:
    if not t.logs:
        return ["  logs: none found for this trace"]
    lines = [f"  logs ({len(t.logs)}, warnings and errors first):"]
    for e in t.logs[:limit]:
        sev = (e.severity_text or str(e.severity_number or "")).upper() or "-"
        lines.append(f"    {format_instant(e.time_ns / 1e9)} {sev:<7} {e.service}: {e.body}")
    if len(t.logs) > limit:
        lines.append(f"    ... {len(t.logs) - limit} more")
    if t.log_query:
        lines.append(f"  log query: {t.log_query}")
    if t.logs_link:
        lines.append(f"  logs in Grafana: {t.logs_link}")
    return lines
