"""Critical path, self time, attribution and the cross-trace summary, on hand-built traces."""

from __future__ import annotations

import re

import pytest

from trading_otel_tools.investigate.analysis import analyze, critical_path, self_time_ns, span_label
from trading_otel_tools.investigate.model import Span, Trace
from trading_otel_tools.investigate.summary import top_cause

MS = 1_000_000
T0 = 1_800_000_000 * 1_000_000_000


def span(
    sid: str, parent: str, name: str, start_ms: float, end_ms: float, *, kind: str = "INTERNAL",
    service: str = "execution-gateway", tid: str = "a" * 32, **attrs: object,
) -> Span:  # fmt: skip
    return Span(tid, sid.rjust(16, "0"), parent.rjust(16, "0") if parent else "", name, kind,
                T0 + int(start_ms * MS), T0 + int(end_ms * MS), service, dict(attrs))  # fmt: skip


def order_trace(broker_ms: float, db_ms: float = 3, tid: str = "a" * 32) -> Trace:
    """The order path: gateway server span, risk check (DB + Redis), broker call + server."""
    risk_end = 1 + db_ms + 1.5
    submit_end = risk_end + 1 + broker_ms
    spans = [
        span("1", "", "POST /api/v1/orders", 0, submit_end + 1, kind="SERVER", tid=tid),
        span("2", "1", "risk.check", 1, risk_end, tid=tid),
        span("3", "2", "SELECT", 1.2, 1.2 + db_ms, kind="CLIENT", tid=tid,
             **{"db.statement": "SELECT sum(qty) FROM positions WHERE symbol = $1",
                "db.system.name": "postgresql"}),
        span("4", "2", "GET", 1.3 + db_ms, 1.3 + db_ms + 0.5, kind="CLIENT", tid=tid),
        span("5", "1", "broker.submit", risk_end + 0.5, submit_end, kind="CLIENT", tid=tid),
        span("6", "5", "POST /orders", risk_end + 1, submit_end - 0.5, kind="SERVER",
             service="broker-sim", tid=tid),
    ]  # fmt: skip
    return Trace(tid, tuple(spans), "test")


def test_self_time_subtracts_union_of_children() -> None:
    parent = span("1", "", "p", 0, 100)
    kids = [span("2", "1", "a", 10, 40), span("3", "1", "b", 30, 50), span("4", "1", "c", 90, 120)]
    # Children cover [10, 50] and [90, 100] once clipped: 50 ms, so 50 ms are the parent's own.
    assert self_time_ns(parent, kids) == 50 * MS
    assert self_time_ns(parent, []) == 100 * MS


def test_critical_path_sums_to_root_and_follows_last_finishing_child() -> None:
    root = span("1", "", "root", 0, 100)
    fast = span("2", "1", "fast", 10, 30)
    slow = span("3", "1", "slow", 10, 90)  # concurrent with fast and ends last
    inner = span("4", "3", "inner", 20, 80)
    children = {root.span_id: [fast, slow], slow.span_id: [inner]}
    crit = critical_path(root, children)
    assert sum(crit.values()) == 100 * MS
    assert crit[root.span_id] == 20 * MS  # 0-10 and 90-100
    assert crit[slow.span_id] == 20 * MS  # 10-20 and 80-90
    assert crit[inner.span_id] == 60 * MS
    assert fast.span_id not in crit  # fully hidden behind the slower sibling


def test_critical_path_sequential_children_all_count() -> None:
    root = span("1", "", "root", 0, 100)
    a, b = span("2", "1", "a", 0, 40), span("3", "1", "b", 50, 100)
    crit = critical_path(root, {root.span_id: [a, b]})
    assert crit == {root.span_id: 10 * MS, a.span_id: 40 * MS, b.span_id: 50 * MS}


def test_child_outliving_parent_is_clipped() -> None:
    root = span("1", "", "root", 0, 50)
    late = span("2", "1", "fire-and-forget", 40, 500)
    crit = critical_path(root, {root.span_id: [late]})
    assert crit == {root.span_id: 40 * MS, late.span_id: 10 * MS}


def test_broker_spike_is_attributed_to_broker_submit_including_remote_server() -> None:
    a = analyze(order_trace(broker_ms=800), span_id="0" * 15 + "1")
    assert a.root.name == "POST /api/v1/orders"
    assert a.top is not None and a.top.label == "broker.submit"
    # The broker's server span is folded into the client call that waited for it.
    assert set(a.top.span_ids) == {"0" * 15 + "5", "0" * 15 + "6"}
    assert a.top.critical_ns == pytest.approx(801 * MS, abs=MS)
    assert a.top.share > 0.95
    assert sum(c.critical_ns for c in a.contributions) == a.duration_ns
    assert "POST /orders" not in {c.label for c in a.contributions}
    assert a.top.detail == "call from execution-gateway to broker-sim, remote time included"


def test_db_slowness_is_attributed_to_the_statement_span() -> None:
    a = analyze(order_trace(broker_ms=20, db_ms=600))
    assert a.top is not None
    # The statement already starts with the span name, so it is the whole label.
    assert a.top.label == "SELECT sum(qty) FROM positions WHERE symbol = $1"
    assert a.top.service == "execution-gateway"
    assert a.top.detail == "postgresql call from execution-gateway"


def test_exemplar_span_is_walked_up_to_its_server_span() -> None:
    trace = order_trace(broker_ms=5)
    assert analyze(trace, span_id="0" * 15 + "2").root.name == "POST /api/v1/orders"
    # Unknown span id: fall back to the root of the trace.
    assert analyze(trace, span_id="f" * 16).root.name == "POST /api/v1/orders"


def test_waterfall_rows_are_in_tree_order_with_depth() -> None:
    a = analyze(order_trace(broker_ms=50))
    assert [(r.depth, r.span.name) for r in a.rows] == [
        (0, "POST /api/v1/orders"), (1, "risk.check"), (2, "SELECT"), (2, "GET"),
        (1, "broker.submit"), (2, "POST /orders"),
    ]  # fmt: skip
    # risk.check lasts 4.5 ms; its DB (3 ms) and Redis (0.5 ms) children leave 1 ms.
    assert a.rows[1].self_ns == pytest.approx(1 * MS, abs=0.01 * MS)


def test_span_label_keeps_statement_apart_and_short() -> None:
    s = span("1", "", "query", 0, 1, **{"db.statement": "SELECT " + "x, " * 60 + "y FROM t"})
    label = span_label(s)
    assert label.startswith("query: SELECT x, x") and len(label) == 80 and label.endswith("...")
    s = span("2", "", "SELECT", 0, 1, **{"db.statement": "SELECT  1\n FROM t"})
    assert span_label(s) == "SELECT 1 FROM t"
    assert span_label(span("2", "", "risk.check", 0, 1)) == "risk.check"


def test_analyze_rejects_empty_trace() -> None:
    with pytest.raises(ValueError, match="no spans"):
        analyze(Trace("b" * 32, (), "test"))


def test_summary_sentence_compares_against_baseline() -> None:
    slow = [analyze(order_trace(800 + 10 * i, tid=f"{i:032x}")) for i in range(14)]
    slow.append(analyze(order_trace(20, db_ms=900, tid="e" * 32)))
    baseline = [analyze(order_trace(22, tid=f"{100 + i:032x}")) for i in range(5)]
    top = top_cause(slow, baseline)
    assert top is not None
    assert (top.label, top.top_in, top.slow_traces) == ("broker.submit", 14, 15)
    assert top.median_baseline_s == pytest.approx(0.023, abs=0.002)
    assert top.sentence.startswith("`broker.submit` accounts for 99% of latency in 14 of 15 slow")
    assert top.median_slow_s == pytest.approx(0.861, abs=0.002)
    assert re.search(
        r"\(median 86\d ms\), against 2\d ms in 5 baseline traces outside the spike\.$",
        top.sentence,
    )


def test_summary_without_baseline_or_traces() -> None:
    assert top_cause([], []) is None
    top = top_cause([analyze(order_trace(500))], [])
    assert top is not None and top.median_baseline_s is None
    assert "no baseline traces" in top.sentence and "1 of 1 slow order " in top.sentence


def test_remote_call_is_reported_under_the_wrapper_the_application_named() -> None:
    # The services' shape: broker.submit (INTERNAL) wraps httpx's POST (CLIENT), whose
    # child is the broker's server span; all three are reported as broker.submit.
    spans = (
        span("1", "", "POST /api/v1/orders", 0, 900, kind="SERVER"),
        span("2", "1", "order.place", 1, 899),
        span("3", "2", "risk.check", 2, 10),
        span("4", "3", "SELECT", 3, 9, kind="CLIENT", **{"db.statement": "SELECT 1"}),
        span("5", "2", "broker.submit", 11, 890),
        span("6", "5", "POST", 12, 889, kind="CLIENT"),
        span("7", "6", "POST /api/v1/orders", 14, 887, kind="SERVER", service="broker-sim"),
        span("8", "7", "fill.compute", 880, 886, service="broker-sim"),
    )
    a = analyze(Trace("a" * 32, spans, "test"), span_id="0" * 15 + "2")
    assert a.root.name == "POST /api/v1/orders" and a.root.service == "execution-gateway"
    assert a.top is not None and a.top.label == "broker.submit"
    assert set(a.top.span_ids) == {"0" * 15 + "5", "0" * 15 + "6", "0" * 15 + "7"}
    assert a.top.critical_ns == 873 * MS  # 879 ms of calls minus the broker's own child
    labels = {c.label for c in a.contributions}
    # A DB span with no server under it stays its own cause, even as an only child.
    assert {"fill.compute", "SELECT 1", "risk.check", "order.place"} <= labels
    assert "POST" not in labels
    by_label = {c.label: c.detail for c in a.contributions}
    assert by_label["order.place"] == "internal span in execution-gateway"
