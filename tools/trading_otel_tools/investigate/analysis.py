"""Explain one trace: its critical path, each span's self time, and who the latency belongs to.

Rules (also in docs/investigate.md):

* **Request span.** The analysis starts at the span the exemplar points to, walked up
  to the nearest SERVER span of the same service (the order request). Without an
  exemplar span it starts at the trace's root.
* **Self time** of a span is its duration minus the union of its children's intervals.
* **Critical path.** Walking back from the end of a span, the child that ends last
  (before the current point) is on the path; the time between that child's end and the
  current point belongs to the span itself; then the walk continues from that child's
  start. Each child on the path is explained the same way, clipped to the time it
  was on the path. The contributions add up to the request span's duration.
* **Remote calls.** A SERVER span whose parent is a CLIENT span (the broker's own
  ``POST /api/v1/orders`` under the gateway's HTTP client span) is folded into that
  client span: network plus remote handling is reported as the call that waited for
  it. When that client span is the only child of an INTERNAL span of the same
  service (``broker.submit`` wrapping the auto-instrumented ``POST``), the call is
  reported under that wrapper, the name the application gave it. The remote
  server's own children (its DB calls, ...) stay separate. Client spans with no
  server child (asyncpg, Redis) are never folded: they are their own cause.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from trading_otel_tools.investigate.model import Span, Trace

#: Spans with a statement get it in their label, so two ``SELECT`` spans stay apart.
_STATEMENT_KEYS = ("db.query.text", "db.statement", "db.query.summary")


@dataclass(frozen=True)
class Contribution:
    """Time one cause (a span label) spends on the critical path of a trace."""

    label: str
    service: str
    critical_ns: int
    share: float
    """Fraction of the request duration."""
    span_ids: tuple[str, ...]
    detail: str = ""
    """What the cause is, for people: ``postgresql call from execution-gateway``."""


@dataclass(frozen=True)
class WaterfallRow:
    """One span in a trace's waterfall, in tree order."""

    span: Span
    depth: int
    self_ns: int
    critical_ns: int
    label: str


@dataclass
class TraceAnalysis:
    """The explanation of one trace."""

    trace_id: str
    root: Span
    duration_ns: int
    contributions: list[Contribution]
    """Sorted, largest critical time first."""
    rows: list[WaterfallRow] = field(default_factory=list)

    @property
    def top(self) -> Contribution | None:
        return self.contributions[0] if self.contributions else None

    def critical_ns_of(self, label: str) -> int:
        return sum(c.critical_ns for c in self.contributions if c.label == label)


def span_label(span: Span) -> str:
    """A short, stable name for a span: its name, plus the statement for DB spans."""
    for key in _STATEMENT_KEYS:
        stmt = span.attributes.get(key)
        if isinstance(stmt, str) and stmt.strip():
            text = " ".join(stmt.split())
            if text.lower() == span.name.lower() or span.name in text:
                return text if len(text) <= 80 else text[:77] + "..."
            full = f"{span.name}: {text}"
            return full if len(full) <= 80 else full[:77] + "..."
    return span.name


def self_time_ns(span: Span, children: list[Span]) -> int:
    """Duration minus the union of the children's intervals (clipped to the span)."""
    intervals = sorted(
        (max(c.start_ns, span.start_ns), min(c.end_ns, span.end_ns)) for c in children
    )
    covered = 0
    cur_start, cur_end = None, None
    for start, end in intervals:
        if end <= start:
            continue
        if cur_end is None or start > cur_end:
            if cur_start is not None and cur_end is not None:
                covered += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_start is not None and cur_end is not None:
        covered += cur_end - cur_start
    return max(0, span.duration_ns - covered)


def critical_path(root: Span, children: dict[str, list[Span]]) -> dict[str, int]:
    """Critical time per span id in ``root``'s subtree; the values sum to its duration."""
    out: dict[str, int] = defaultdict(int)

    def walk(span: Span, lo: int, hi: int) -> None:
        cursor = hi
        kids = sorted(children.get(span.span_id, []), key=lambda s: s.end_ns, reverse=True)
        while cursor > lo:
            # The child that ends last before the cursor, and overlaps what is left.
            nxt = next(
                (
                    k
                    for k in kids
                    if k.start_ns < cursor
                    and k.end_ns > lo
                    and k.start_ns < k.end_ns
                    and min(k.end_ns, cursor) > max(k.start_ns, lo)
                ),
                None,
            )
            if nxt is None:
                out[span.span_id] += cursor - lo
                return
            child_end = min(nxt.end_ns, cursor)
            out[span.span_id] += cursor - child_end
            child_start = max(nxt.start_ns, lo)
            walk(nxt, child_start, child_end)
            cursor = child_start
            kids = [k for k in kids if k is not nxt and k.start_ns < cursor]

    walk(root, root.start_ns, root.end_ns)
    return dict(out)


def request_span(trace: Trace, span_id: str = "") -> Span:
    """The span to explain: the exemplar's span walked up to its SERVER span, else the root."""
    by_id = {s.span_id: s for s in trace.spans}
    span = by_id.get(span_id)
    if span is not None:
        cur: Span | None = span
        while cur is not None:
            if cur.kind == "SERVER" and cur.service == span.service:
                return cur
            parent = by_id.get(cur.parent_span_id)
            if parent is None or parent.service != span.service:
                break
            cur = parent
        return span
    roots = [s for s in trace.spans if s.parent_span_id not in by_id]
    # With a partial trace several "roots" remain; the longest one explains the most.
    return max(roots or list(trace.spans), key=lambda s: (s.duration_ns, -s.start_ns))


def analyze(trace: Trace, span_id: str = "") -> TraceAnalysis:
    """Explain ``trace``: critical-path attribution and a waterfall of the request span.

    Raises:
        ValueError: the trace has no spans.
    """
    if not trace.spans:
        raise ValueError(f"trace {trace.trace_id} has no spans")
    root = request_span(trace, span_id)
    children: dict[str, list[Span]] = defaultdict(list)
    for s in trace.spans:
        if s.parent_span_id and s.span_id != s.parent_span_id:
            children[s.parent_span_id].append(s)
    crit = critical_path(root, children)

    by_id = {s.span_id: s for s in trace.spans}
    owner: dict[str, Span] = {}

    def owner_of(span: Span) -> Span:
        parent = by_id.get(span.parent_span_id)
        if span.kind == "SERVER" and span is not root and parent and parent.kind == "CLIENT":
            return _call_wrapper(parent, by_id, children, root)
        if span.kind == "CLIENT" and any(c.kind == "SERVER" for c in children[span.span_id]):
            return _call_wrapper(span, by_id, children, root)
        return span

    groups: dict[str, tuple[Span, int, list[str]]] = {}
    for sid, ns in crit.items():
        own = owner.setdefault(sid, owner_of(by_id[sid]))
        label = span_label(own)
        first, total, ids = groups.get(label, (own, 0, []))
        groups[label] = (first, total + ns, [*ids, sid])
    duration = max(1, root.duration_ns)
    contributions = sorted(
        (
            Contribution(
                label,
                own.service,
                total,
                total / duration,
                tuple(ids),
                _detail(own, [by_id[i] for i in ids]),
            )
            for label, (own, total, ids) in groups.items()
            if total > 0
        ),
        key=lambda c: (-c.critical_ns, c.label),
    )

    rows: list[WaterfallRow] = []

    def add_rows(span: Span, depth: int) -> None:
        kids = sorted(children.get(span.span_id, []), key=lambda s: (s.start_ns, s.span_id))
        rows.append(
            WaterfallRow(
                span, depth, self_time_ns(span, kids), crit.get(span.span_id, 0), span_label(span)
            )
        )
        for kid in kids:
            add_rows(kid, depth + 1)

    add_rows(root, 0)
    return TraceAnalysis(trace.trace_id, root, root.duration_ns, contributions, rows)


def _call_wrapper(
    client: Span, by_id: dict[str, Span], children: dict[str, list[Span]], root: Span
) -> Span:
    """The span a remote call is reported as: the client span, or its named wrapper."""
    parent = by_id.get(client.parent_span_id)
    if (
        parent is not None
        and parent is not root
        and parent.kind == "INTERNAL"
        and parent.service == client.service
        and len(children.get(parent.span_id, [])) == 1
    ):
        return parent
    return client


def _detail(own: Span, spans: list[Span]) -> str:
    system = own.attributes.get("db.system.name") or own.attributes.get("db.system")
    if system:
        return f"{system} call from {own.service}"
    remote = sorted({s.service for s in spans} - {own.service})
    if remote:
        return f"call from {own.service} to {', '.join(remote)}, remote time included"
    return f"{own.kind.lower()} span in {own.service}"
