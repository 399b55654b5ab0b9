"""Summarize many trace analyses: which span explains the slow orders, against the baseline."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from trading_otel_tools.investigate.analysis import TraceAnalysis
from trading_otel_tools.investigate.timeparse import format_ms


@dataclass(frozen=True)
class TopCause:
    """The span label that dominates the slow traces."""

    label: str
    service: str
    top_in: int
    """In how many slow traces this label has the largest critical time."""
    slow_traces: int
    median_share: float
    """Median share of the request latency, over the traces where it is the top cause."""
    median_slow_s: float
    """Median critical time over all slow traces, in seconds."""
    median_baseline_s: float | None
    """Median critical time over baseline traces (0 where absent); None without baseline."""
    baseline_traces: int
    sentence: str
    detail: str = ""
    """What the cause is (see :attr:`Contribution.detail`)."""


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def top_cause(slow: Sequence[TraceAnalysis], baseline: Sequence[TraceAnalysis]) -> TopCause | None:
    """Pick the label that is the top critical-path cause in most slow traces.

    Ties go to the label with the larger total critical time. Returns ``None`` when no
    slow trace could be analyzed.
    """
    tops = [a.top for a in slow if a.top is not None]
    if not tops:
        return None
    counts = Counter(c.label for c in tops)
    totals: Counter[str] = Counter()
    for a in slow:
        for c in a.contributions:
            totals[c.label] += c.critical_ns
    label = max(counts, key=lambda lbl: (counts[lbl], totals[lbl], lbl))
    first = next(c for c in tops if c.label == label)
    shares = [a.top.share for a in slow if a.top is not None and a.top.label == label]
    slow_s = [a.critical_ns_of(label) / 1e9 for a in slow]
    base_s = [a.critical_ns_of(label) / 1e9 for a in baseline]
    median_share = _median(shares)
    median_slow = _median(slow_s)
    median_base = _median(base_s) if base_s else None
    sentence = (
        f"`{label}` accounts for {median_share:.0%} of latency in {counts[label]} of {len(slow)} "
        f"slow order{'s' if len(slow) != 1 else ''} (median {format_ms(median_slow)})"
    )
    if median_base is None:
        sentence += ", with no baseline traces outside the spike to compare against"
    else:
        sentence += (
            f", against {format_ms(median_base)} in {len(base_s)} baseline "
            f"trace{'s' if len(base_s) != 1 else ''} outside the spike"
        )
    return TopCause(
        label,
        first.service,
        counts[label],
        len(slow),
        median_share,
        median_slow,
        median_base,
        len(base_s),
        sentence + ".",
        first.detail,
    )
