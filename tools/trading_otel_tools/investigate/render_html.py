"""The report as one self-contained HTML page: no scripts, no external assets.

It holds an SVG chart of the latency quantile (SLO line, spike windows shaded,
exemplar points on top), an SVG waterfall per slow trace, and the correlated logs.
"""

from __future__ import annotations

from html import escape

from trading_otel_tools.investigate.analysis import TraceAnalysis
from trading_otel_tools.investigate.core import Report, TraceReport
from trading_otel_tools.investigate.timeparse import format_instant, format_ms

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d1d1f;max-width:1100px}
h1{font-size:20px} h2{font-size:17px;margin-top:28px} h3{font-size:15px}
code,pre,td.mono{font-family:ui-monospace,monospace;font-size:12px}
table{border-collapse:collapse;margin:8px 0} td,th{padding:2px 8px;text-align:left;
border-bottom:1px solid #eee;vertical-align:top} .warn{color:#a15c00} .error{color:#b00020}
.summary{background:#fff4e5;border-left:4px solid #f0a020;padding:8px 12px}
.ok{background:#e8f5e9;border-left:4px solid #2e7d32;padding:8px 12px}
.missing{color:#b00020}
"""
_W, _H, _PAD = 900, 260, 48


def render_html(report: Report) -> str:
    """Render the whole report as an HTML document."""
    o = report.options
    q = f"p{o.quantile * 100:g}"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Order latency investigation {escape(format_instant(o.start))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Order latency investigation, {escape(format_instant(o.start))} to "
        f"{escape(format_instant(o.end))}</h1>",
        f"<p>{q} of <code>{escape(o.metric)}</code> against an SLO of {format_ms(o.slo)}. "
        f"Prometheus <code>{escape(o.prometheus)}</code>, traces from "
        f"<code>{escape(report.trace_source)}</code>, logs from "
        f"<code>{escape(report.log_source)}</code>.</p>",
    ]
    parts += [f"<p class='warn'>Note: {escape(n)}</p>" for n in report.notes]
    parts.append(chart_svg(report))
    if report.metric_link:
        parts.append(f"<p><a href='{escape(report.metric_link)}'>Open in Grafana Explore</a></p>")
    if not report.breached:
        peak = (
            f"the peak was {format_ms(report.peak[1])} at {format_instant(report.peak[0])}"
            if report.peak
            else "there was no data"
        )
        parts.append(f"<p class='ok'>No SLO breach: {q} stayed at or under "
                     f"{format_ms(o.slo)}; {escape(peak)}.</p>")  # fmt: skip
        return "".join(parts) + "</body></html>\n"

    parts.append("<h2>Spike windows</h2><table><tr><th>#</th><th>from</th><th>to</th>"
                 f"<th>peak {q}</th></tr>")  # fmt: skip
    for i, w in enumerate(report.windows, 1):
        parts.append(
            f"<tr><td>{i}</td><td>{format_instant(w.start)}</td><td>{format_instant(w.end)}</td>"
            f"<td>{format_ms(w.peak)} at {format_instant(w.peak_at)}</td></tr>"
        )
    parts.append("</table>")
    top = (
        f"{report.top.sentence} ({report.top.detail})"
        if report.top
        else "unknown: none of the slow traces could be read"
    )
    parts.append(f"<p class='summary'><b>Top cause:</b> {escape(top)}</p>")
    missing = report.missing
    if missing:
        parts.append("<h2>Traces not found</h2><ul>")
        parts += [
            f"<li class='missing'><code>{t.trace_id}</code> ({t.role}, "
            f"{format_ms(t.exemplar.value)}): {escape(t.missing_reason or '')}</li>"
            for t in missing
        ]
        parts.append("</ul>")
    parts.append("<h2>Slow traces</h2>")
    for t in report.slow:
        if t.analysis is not None:
            parts.append(_trace_section(t, t.analysis))
    return "".join(parts) + "</body></html>\n"


def chart_svg(report: Report) -> str:
    """An SVG line chart of the quantile, with the SLO, windows and exemplar points."""
    o = report.options
    ys = [v for _, v in report.points] + [t.exemplar.value for t in report.traces] + [o.slo]
    ymax = max(ys) * 1.1
    span = o.end - o.start

    def x(t: float) -> float:
        return _PAD + (t - o.start) / span * (_W - 2 * _PAD)

    def y(v: float) -> float:
        return _H - _PAD + -(v / ymax) * (_H - 2 * _PAD)

    el = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{_W}' height='{_H}' "
          f"viewBox='0 0 {_W} {_H}' role='img' aria-label='latency chart'>"]  # fmt: skip
    for w in report.windows:
        width = max(2.0, x(w.end) - x(w.start))
        el.append(f"<rect x='{x(w.start):.1f}' y='{_PAD}' width='{width:.1f}' "
                  f"height='{_H - 2 * _PAD}' fill='#fde2e2'>"
                  "<title>spike window</title></rect>")  # fmt: skip
    el.append(f"<line x1='{_PAD}' x2='{_W - _PAD}' y1='{y(o.slo):.1f}' y2='{y(o.slo):.1f}' "
              "stroke='#b00020' stroke-dasharray='6 4'/>")  # fmt: skip
    el.append(f"<text x='{_W - _PAD + 4}' y='{y(o.slo) + 4:.1f}' font-size='11'>SLO</text>")
    if report.points:
        pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in report.points)
        el.append(f"<polyline points='{pts}' fill='none' stroke='#1565c0' stroke-width='2'/>")
    for t in report.traces:
        color = "#d32f2f" if t.role == "slow" else "#2e7d32"
        el.append(
            f"<circle cx='{x(t.exemplar.timestamp):.1f}' cy='{y(t.exemplar.value):.1f}' r='4' "
            f"fill='{color}' fill-opacity='0.8'><title>{t.role} exemplar "
            f"{format_ms(t.exemplar.value)} trace {t.trace_id}</title></circle>"
        )
    for frac in (0.0, 0.5, 1.0):
        v = ymax / 1.1 * frac
        el.append(f"<text x='4' y='{y(v) + 4:.1f}' font-size='11'>{escape(format_ms(v))}</text>")
    el.append(f"<text x='{_PAD}' y='{_H - 12}' font-size='11'>{format_instant(o.start)}</text>")
    el.append(f"<text x='{_W - _PAD}' y='{_H - 12}' font-size='11' text-anchor='end'>"
              f"{format_instant(o.end)}</text>")  # fmt: skip
    el.append(f"<text x='{_W / 2}' y='{_H - 12}' font-size='11' text-anchor='middle'>"
              "line: quantile; red dots: slow exemplars; green: baseline</text></svg>")  # fmt: skip
    return "".join(el)


def waterfall_svg(a: TraceAnalysis) -> str:
    """One bar per span on a shared time axis; critical-path spans are solid."""
    row_h, label_w, bar_w = 18, 340, 520
    total = max(1, a.duration_ns)
    height = row_h * len(a.rows) + 8
    el = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{label_w + bar_w + 90}' "
          f"height='{height}' font-size='11'>"]  # fmt: skip
    for i, row in enumerate(a.rows):
        s, top = row.span, 4 + i * row_h
        start = max(0, s.start_ns - a.root.start_ns)
        bx = label_w + start / total * bar_w
        bw = max(1.0, s.duration_ns / total * bar_w)
        color = "#d32f2f" if s.is_error else ("#1565c0" if row.critical_ns else "#90caf9")
        # About 6.5 px per character at 11 px: keep the label inside its column.
        room = max(8, int((label_w - 8 - row.depth * 12) / 6.5))
        label = escape(row.label if len(row.label) <= room else row.label[: room - 1] + "…")
        el.append(f"<text x='{row.depth * 12}' y='{top + 12}'>{label}</text>")
        el.append(
            f"<rect x='{bx:.1f}' y='{top + 2}' width='{bw:.1f}' height='{row_h - 5}' "
            f"fill='{color}'>"
            f"<title>{escape(s.service)} {escape(s.name)}: {format_ms(s.duration_ns / 1e9)}, "
            f"self {format_ms(row.self_ns / 1e9)}, critical {format_ms(row.critical_ns / 1e9)}"
            "</title></rect>"
        )
        el.append(
            f"<text x='{bx + bw + 4:.1f}' y='{top + 12}'>{format_ms(s.duration_ns / 1e9)}</text>"
        )
    el.append("</svg>")
    return "".join(el)


def _trace_section(t: TraceReport, a: TraceAnalysis) -> str:
    contrib = ", ".join(f"{escape(c.label)} {c.share:.0%}" for c in a.contributions[:3])
    parts = [
        f"<h3>Trace <code>{t.trace_id}</code>: {escape(a.root.service)} "
        f"{escape(a.root.name)}, {format_ms(a.duration_ns / 1e9)}</h3>",
        f"<p>Critical path: {contrib}</p>",
        waterfall_svg(a),
    ]
    if t.trace_link:
        parts.append(f"<p><a href='{escape(t.trace_link)}'>Trace in Grafana</a>")
        if t.logs_link:
            parts.append(f" · <a href='{escape(t.logs_link)}'>Logs in Grafana</a>")
        parts.append("</p>")
    if t.logs:
        parts.append("<table><tr><th>time</th><th>level</th><th>service</th><th>message</th></tr>")
        for e in t.logs:
            cls = "error" if e.severity_number >= 17 else ("warn" if e.is_warning_or_worse else "")
            parts.append(
                f"<tr class='{cls}'><td class='mono'>{format_instant(e.time_ns / 1e9)}</td>"
                f"<td>{escape(e.severity_text or str(e.severity_number))}</td>"
                f"<td>{escape(e.service)}</td><td class='mono'>{escape(e.body)}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>No logs found for this trace.</p>")
    return "".join(parts)
