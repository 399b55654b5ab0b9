"""Find where the latency quantile stayed above the SLO, and split exemplars by window."""

from __future__ import annotations

import math
from collections.abc import Sequence

from trading_otel_tools.investigate.model import Exemplar, SpikeWindow

#: Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS = 11_000
#: Enough points for a chart and a precise window edge, without hammering Prometheus.
TARGET_POINTS = 240


def choose_step(start: float, end: float, minimum: float = 1.0) -> float:
    """A whole-second step giving about :data:`TARGET_POINTS` points over the range."""
    span = max(0.0, end - start)
    step = max(minimum, math.ceil(span / TARGET_POINTS))
    while span / step > MAX_POINTS:
        step *= 2
    return float(step)


def series_selector(metric: str, service: str | None = None) -> str:
    """``<metric>_bucket``, restricted to one ``service_name`` when given."""
    if not service:
        return f"{metric}_bucket"
    escaped = service.replace("\\", "\\\\").replace('"', '\\"')
    return f'{metric}_bucket{{service_name="{escaped}"}}'


def latency_query(
    metric: str, quantile: float, rate_window: str, service: str | None = None
) -> str:
    """The PromQL for the latency quantile of a histogram family (of one service, if given)."""
    series = series_selector(metric, service)
    return f"histogram_quantile({quantile:g}, sum by (le) (rate({series}[{rate_window}])))"


def find_windows(
    points: Sequence[tuple[float, float]], slo: float, step: float
) -> list[SpikeWindow]:
    """Group consecutive points above ``slo`` into windows.

    A single gap of one missing step inside a breach does not split it (a scrape may
    be late); the window runs from the first to the last breaching point.
    """
    windows: list[SpikeWindow] = []
    current: list[tuple[float, float]] = []
    for t, v in sorted(points):
        if v > slo:
            if current and t - current[-1][0] > 2 * step + 1e-6:
                windows.append(_window(current))
                current = []
            current.append((t, v))
        elif current:
            windows.append(_window(current))
            current = []
    if current:
        windows.append(_window(current))
    return windows


def _window(points: list[tuple[float, float]]) -> SpikeWindow:
    peak_t, peak_v = max(points, key=lambda p: p[1])
    return SpikeWindow(points[0][0], points[-1][0], peak_v, peak_t)


def exemplar_range(window: SpikeWindow, rate_window: float) -> tuple[float, float]:
    """The time range whose observations fed the window's points.

    ``rate(x[w])`` at time t covers (t-w, t], so the earliest slow order of a window
    may be up to ``w`` before its first breaching point.
    """
    return window.start - rate_window, window.end


def in_any(ts: float, ranges: Sequence[tuple[float, float]]) -> bool:
    return any(lo <= ts <= hi for lo, hi in ranges)


def dedupe(exemplars: Sequence[Exemplar]) -> list[Exemplar]:
    """One exemplar per trace id (the slowest), slowest first."""
    best: dict[str, Exemplar] = {}
    for ex in exemplars:
        if ex.trace_id not in best or ex.value > best[ex.trace_id].value:
            best[ex.trace_id] = ex
    return sorted(best.values(), key=lambda e: (-e.value, e.timestamp, e.trace_id))
