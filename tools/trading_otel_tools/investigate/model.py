"""Plain data types shared by the investigation modules (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: OTLP span kinds, by their numeric value in OTLP JSON.
SPAN_KINDS = {
    0: "UNSPECIFIED",
    1: "INTERNAL",
    2: "SERVER",
    3: "CLIENT",
    4: "PRODUCER",
    5: "CONSUMER",
}


@dataclass(frozen=True)
class Span:
    """One span, decoded from OTLP JSON, with times in nanoseconds since the epoch."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    service: str
    attributes: dict[str, Any] = field(default_factory=dict)
    status_code: int = 0
    """OTLP status code: 0 unset, 1 ok, 2 error."""

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    @property
    def is_error(self) -> bool:
        return self.status_code == 2


@dataclass(frozen=True)
class Trace:
    """All spans found for one trace id."""

    trace_id: str
    spans: tuple[Span, ...]
    source: str
    """Where the spans came from (a file path pattern or a Tempo URL)."""


@dataclass(frozen=True)
class LogEntry:
    """One log record correlated with a trace."""

    time_ns: int
    severity_text: str
    severity_number: int
    body: str
    service: str
    trace_id: str
    span_id: str
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def is_warning_or_worse(self) -> bool:
        # OTLP severity numbers: 13-16 WARN, 17-20 ERROR, 21-24 FATAL.
        if self.severity_number:
            return self.severity_number >= 13
        return self.severity_text.upper() in {"WARN", "WARNING", "ERROR", "CRITICAL", "FATAL"}


@dataclass(frozen=True)
class Exemplar:
    """An exemplar from Prometheus: one observed latency pointing at a trace."""

    trace_id: str
    span_id: str
    value: float
    """Observed latency in seconds."""
    timestamp: float
    """Unix seconds."""
    labels: dict[str, str] = field(default_factory=dict)
    """The series labels (``le`` included)."""


@dataclass(frozen=True)
class SpikeWindow:
    """A time range where the chosen quantile stayed above the SLO."""

    start: float
    end: float
    peak: float
    """Highest quantile value in the window, in seconds."""
    peak_at: float
