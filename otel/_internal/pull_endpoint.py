"""A Prometheus pull endpoint for the SDK that keeps exemplars.

The upstream ``opentelemetry-exporter-prometheus`` drops exemplars. This reader renders
the SDK's collected metrics itself: OpenMetrics 1.0 with exemplars (trace and span id)
when the scraper asks for it, the classic text format 0.0.4 otherwise.

Names are translated the way the collector's Prometheus exporter does it, so a
``trading_*`` series is called the same whether it is scraped here or arrives through
OTLP and the collector. Prometheus 2.42 rejects the whole scrape when an exemplar sits on
a series whose name ends in neither ``_bucket`` nor ``_total``; exemplars are only ever
written on histogram buckets and counter totals.
"""

from __future__ import annotations

import logging
import re
import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.metrics.view import Aggregation

from otel._internal.encode_retry import report_cleaned
from otel._internal.text import FFFD

_log = logging.getLogger("otel.prometheus")

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_UNITS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes",
    "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes", "KBy": "kilobytes",
    "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes", "m": "meters",
    "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
    "Cel": "celsius", "Hz": "hertz", "%": "percent",
}  # fmt: skip
_PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week",
              "mo": "month", "y": "year"}  # fmt: skip
_BAD_NAME = re.compile(r"[^a-zA-Z0-9:]+")
_BAD_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_ANNOTATION = re.compile(r"\{[^}]*\}")
# Resource attributes Prometheus already knows as job/instance from its scrape config.
_TARGET_SKIP = frozenset({"service.name", "service.namespace", "service.instance.id"})


def unit_suffix(unit: str, *, gauge: bool = False) -> str:
    """The Prometheus name suffix for an OpenTelemetry unit (``""`` for none)."""
    unit = _ANNOTATION.sub("", unit or "").strip()
    if not unit:
        return ""
    if unit == "1":
        return "ratio" if gauge else ""
    if unit in _UNITS:
        return _UNITS[unit]
    if "/" in unit:
        top, _, bottom = unit.partition("/")
        top_s = _UNITS.get(top, _clean(top))
        bottom_s = _PER_UNITS.get(bottom, _clean(bottom))
        if bottom_s:
            return f"{top_s}_per_{bottom_s}" if top_s else f"per_{bottom_s}"
    return _clean(unit)


def _clean(text: str) -> str:
    return _BAD_NAME.sub("_", text).strip("_")


def prom_name(name: str, unit: str | None, kind: str) -> str:
    """Translate an instrument name to its Prometheus base name.

    Args:
        name: Dotted OpenTelemetry name, e.g. ``trading.order.latency``.
        unit: UCUM unit; ``{annotations}`` add no suffix.
        kind: ``counter`` (monotonic sum; gets ``_total``), ``gauge`` or ``histogram``.

    Returns:
        The name a Prometheus user sees (without ``_bucket``/``_sum``/``_count``).
    """
    base = _clean(name)
    base = re.sub("_+", "_", base)
    if base[:1].isdigit():
        base = "_" + base
    suffix = unit_suffix(unit or "", gauge=kind == "gauge")
    if suffix and not base.endswith("_" + suffix) and base != suffix:
        base = f"{base}_{suffix}"
    if kind == "counter" and not base.endswith("_total"):
        base += "_total"
    return base


def label_name(key: str) -> str:
    """Translate an attribute key to a Prometheus label name."""
    out = _BAD_LABEL.sub("_", key)
    return "key_" + out if out[:1].isdigit() else out


def _fmt(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    # Shortest form, like Go's strconv 'g' in the text format: 1, 0.25.
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _esc(text: str) -> str:
    if "\\" not in text and "\n" not in text and '"' not in text:
        return text  # the usual case: nothing to escape, no new string
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_body(pairs: Iterable[tuple[str, str]]) -> str:
    """``a="x",b="y"`` without braces, so bucket lines can append ``le``."""
    return ",".join(f'{k}="{_esc(v)}"' for k, v in pairs)


def _braced(body: str) -> str:
    return "{" + body + "}" if body else ""


@lru_cache(maxsize=64)
def _le_strings(bounds: tuple[float, ...], openmetrics: bool) -> tuple[str, ...]:
    # ``le`` is a label, so its spelling is part of the series identity. The collector
    # (client_golang) writes le="1" in text and le="1.0" in OpenMetrics; matching both
    # keeps one series per bucket whichever path Prometheus scrapes.
    spell = (lambda b: repr(float(b))) if openmetrics else _fmt
    return (*(spell(b) for b in bounds), "+Inf")


@dataclass
class _Family:
    name: str
    kind: str  # counter | gauge | histogram | info
    help: str
    lines: list[str] = field(default_factory=list)


def _exemplar(ex: Any) -> str:
    if ex is None or not ex.trace_id or not ex.span_id:
        return ""
    body = f'trace_id="{ex.trace_id:032x}",span_id="{ex.span_id:016x}"'
    return f" # {{{body}}} {_fmt(ex.value)} {ex.time_unix_nano / 1e9:.3f}"


def _attr_pairs(attrs: Any, extra: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = [(label_name(k), _attr_value(v)) for k, v in (attrs or {}).items()]
    return pairs + list(extra)


def _attr_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_attr_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _add_histogram(
    fam: _Family, point: HistogramDataPoint, extra: Sequence[tuple[str, str]], om: bool
) -> None:
    body = _label_body(_attr_pairs(point.attributes, extra))
    bounds = tuple(point.explicit_bounds)
    les = _le_strings(bounds, om)
    by_bucket: dict[int, Any] = {}
    if om:
        # The SDK keeps (at most) one exemplar per bucket; put each on its own bucket line.
        for ex in point.exemplars or ():
            i = bisect_left(bounds, ex.value)
            if i not in by_bucket or ex.time_unix_nano >= by_bucket[i].time_unix_nano:
                by_bucket[i] = ex
    prefix = f'{fam.name}_bucket{{{body}{"," if body else ""}le="'
    cumulative = 0
    append = fam.lines.append
    for i, count in enumerate(point.bucket_counts):
        cumulative += count
        line = f'{prefix}{les[i]}"}} {cumulative}'
        append(line + _exemplar(by_bucket[i]) if i in by_bucket else line)
    lab = _braced(body)
    append(f"{fam.name}_sum{lab} {_fmt(point.sum)}")
    append(f"{fam.name}_count{lab} {point.count}")


def _add_number(
    fam: _Family, point: NumberDataPoint, extra: Sequence[tuple[str, str]], om: bool
) -> None:
    line = f"{fam.name}{_braced(_label_body(_attr_pairs(point.attributes, extra)))}"
    line += f" {_fmt(point.value)}"
    if om and fam.kind == "counter":
        latest = max(point.exemplars or (), key=lambda e: e.time_unix_nano, default=None)
        line += _exemplar(latest)
    fam.lines.append(line)


def _collect_families(data: MetricsData, om: bool) -> list[_Family]:
    families: dict[str, _Family] = {}
    target: dict[str, str] = {}
    for rm in data.resource_metrics:
        for k, v in rm.resource.attributes.items():
            if k not in _TARGET_SKIP:
                target[label_name(k)] = _attr_value(v)
        for sm in rm.scope_metrics:
            extra = [("otel_scope_name", sm.scope.name)]
            if sm.scope.version:
                extra.append(("otel_scope_version", sm.scope.version))
            for metric in sm.metrics:
                d = metric.data
                if isinstance(d, Histogram):
                    kind = "histogram"
                elif isinstance(d, Sum) and d.is_monotonic:
                    kind = "counter"
                elif isinstance(d, (Sum, Gauge)):
                    kind = "gauge"
                else:  # exponential histograms would need native histograms: not exposed
                    continue
                name = prom_name(metric.name, metric.unit, kind)
                fam = families.get(name)
                if fam is None:
                    fam = families[name] = _Family(name, kind, metric.description or "")
                elif fam.kind != kind:
                    _log.warning("metric %s exported twice with different types; skipped", name)
                    continue
                for point in d.data_points:
                    if isinstance(point, HistogramDataPoint):
                        _add_histogram(fam, point, extra, om)
                    else:
                        _add_number(fam, point, extra, om)
    out = list(families.values())
    if target:
        info = _Family("target_info", "info", "Target metadata")
        info.lines.append(f"target_info{_braced(_label_body(sorted(target.items())))} 1")
        out.insert(0, info)
    return out


def render(data: MetricsData | None, openmetrics: bool) -> bytes:
    """Render collected metrics as OpenMetrics 1.0 (with exemplars) or text 0.0.4."""
    lines: list[str] = []
    for fam in _collect_families(data, openmetrics) if data is not None else []:
        help_text = (
            _esc(fam.help) if openmetrics else fam.help.replace("\\", "\\\\").replace("\n", "\\n")
        )
        if openmetrics:
            # OpenMetrics names the counter family without _total and info without _info.
            fname = fam.name.removesuffix("_total") if fam.kind == "counter" else fam.name
            if fam.kind == "info":
                fname = "target"
            lines.append(f"# TYPE {fname} {fam.kind}")
            lines.append(f"# HELP {fname} {help_text}")
        else:
            kind = "gauge" if fam.kind == "info" else fam.kind
            lines.append(f"# HELP {fam.name} {help_text}")
            lines.append(f"# TYPE {fam.name} {kind}")
        lines.extend(fam.lines)
    if openmetrics:
        lines.append("# EOF")
    text = "\n".join(lines) + "\n"
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate in a label value or HELP text: U+FFFD, not a failed scrape.
        report_cleaned("Prometheus scrapes", 1)
        return text.encode("utf-8", FFFD)


def wants_openmetrics(accept: str | None) -> bool:
    """True when an ``Accept`` header asks for OpenMetrics (as Prometheus does)."""
    return bool(accept) and "application/openmetrics-text" in (accept or "")


class PrometheusEndpoint(MetricReader):
    """A pull reader serving ``/metrics`` over HTTP, with exemplars in OpenMetrics.

    Register it on a ``MeterProvider`` (``metric_readers=[endpoint]``), then call
    :meth:`start`. Every scrape collects from the SDK once (cumulative temporality).

    Args:
        host: Interface to bind, e.g. ``"127.0.0.1"`` or ``"0.0.0.0"``.
        port: TCP port; ``0`` picks a free one (read it back from :attr:`port`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9464,
        preferred_aggregation: dict[type, Aggregation] | None = None,
    ) -> None:
        super().__init__(preferred_aggregation=preferred_aggregation)
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._data: MetricsData | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._data = metrics_data

    def scrape(self, accept: str | None = None) -> tuple[bytes, str]:
        """Collect now and render for a scraper sending ``accept``: (body, content type)."""
        om = wants_openmetrics(accept)
        with self._lock:
            self._data = None
            self.collect()
            data = self._data
        return render(data, om), OPENMETRICS_CONTENT_TYPE if om else TEXT_CONTENT_TYPE

    def start(self) -> PrometheusEndpoint:
        """Bind and serve in a daemon thread. Idempotent."""
        if self._server is not None:
            return self
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                try:
                    body, ctype = endpoint.scrape(self.headers.get("Accept"))
                except Exception:
                    _log.exception("metrics collection failed")
                    self.send_error(500)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes every few seconds would flood the service log

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="trading-otel-prometheus", daemon=True
        )
        self._thread.start()
        return self

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout_millis / 1e3)
            self._thread = None
