"""Every PromQL expression we ship names only series the real stack produces.

The names and label keys come from tests/fixtures/signal_inventory.json, recorded from the
running local stack and a gateway-role collector by `make inventory` (the e2e fault matrix
re-records it on every run and fails when the committed file claims a name that is gone).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trading_otel_tools import home
from trading_otel_tools.alerts.profile import duration_s, write_profile
from trading_otel_tools.inventory import matrix, promql, queries
from trading_otel_tools.inventory.__main__ import render_doc
from trading_otel_tools.inventory.model import SCRAPE_LABELS, Inventory, SeriesName, diff

INVENTORY = Inventory.load()
# Dashboards, rules and runbooks query Prometheus: only what it stores counts. (The
# collectors' own pages expose some counters with a _total that Prometheus does not keep.)
KNOWN = INVENTORY.names("prometheus")
DERIVED = promql.recording_labels(queries.recording_rules(), KNOWN)
SHIPPED = queries.shipped_queries()
SERIES = queries.promtool_input_series()


def test_the_inventory_says_what_recorded_it() -> None:
    assert {"otelcol-trading", "prometheus", "opentelemetry-sdk"} <= set(INVENTORY.versions)
    assert INVENTORY.phases[0] == "baseline"
    assert {"prometheus", "collector-gateway-telemetry"} <= set(INVENTORY.sources)
    # Conditional names carry the phase that produced them.
    assert {e.when for e in KNOWN.values()} - {"baseline"}, "no conditional name recorded"


@pytest.mark.parametrize("q", SHIPPED, ids=[q.origin for q in SHIPPED])
def test_shipped_query_uses_only_recorded_names_and_labels(q: queries.Query) -> None:
    problems = promql.check(q.expr, KNOWN, derived=DERIVED)
    parts = promql.parse(q.expr)
    for name, _regex, _keys in parts.selectors:
        if name is not None and q.extra_labels:
            labels = KNOWN[name].labels if name in KNOWN else DERIVED.get(name, set())
            problems += [f"{name}: no label {k}" for k in q.extra_labels - labels - SCRAPE_LABELS]
    assert problems == [], f"{q.origin}: {q.expr}"


@pytest.mark.parametrize("q", SERIES, ids=[f"{q.origin}: {q.expr}" for q in SERIES])
def test_promtool_input_series_are_series_the_system_produces(q: queries.Query) -> None:
    # A rule test fed with names the system never produces proves nothing.
    assert promql.check(q.expr, KNOWN) == [], q.origin


def test_the_checker_catches_what_was_wrong_before() -> None:
    # The names the pipeline dashboard and TelemetryExportFailing used before the
    # inventory existed: the collector exposes its counters without _total.
    assert promql.check("rate(otelcol_exporter_sent_spans_total[5m])", KNOWN) == [
        "unknown metric otelcol_exporter_sent_spans_total"
    ]
    assert promql.check("otelcol_process_memory_rss_bytes", KNOWN) != []
    assert (
        promql.check('{__name__=~"otelcol_exporter_send_failed_(spans|log_records)_total"}', KNOWN)
        != []
    )
    assert promql.check('trading_orders_total{sevice_name="x"}', KNOWN) == [
        "trading_orders_total: unknown label sevice_name"
    ]
    assert promql.check("sum by (symbl) (trading_orders_total)", KNOWN) == [
        "unknown grouping label symbl"
    ]
    assert promql.check("sum(rate(trading_orders_total[5m])", KNOWN)[0].startswith("invalid PromQL")


def test_recording_rule_outputs_keep_their_grouping_labels() -> None:
    assert DERIVED["service:trading_order_latency_seconds:p99_rate5m"] >= {"service_name"}
    assert "symbol" in DERIVED["service_symbol:trading_order_latency_seconds:p99_rate5m"]


def test_diff_names_what_moved() -> None:
    old = Inventory({"prometheus": {"a_total": SeriesName({"job"}), "b": SeriesName()}})
    new = Inventory({"prometheus": {"a": SeriesName({"job"}), "b": SeriesName({"x"})}})
    assert [str(c) for c in diff(old, new)] == [
        "+ prometheus: a",
        "- prometheus: a_total",
        "~ prometheus: b (+x)",
    ]


def test_the_matrix_covers_every_shipped_alert_once() -> None:
    shipped = [r["alert"] for _, r in queries.rules() if "alert" in r]
    assert sorted(t.alert for t in matrix.TRIGGERS) == sorted(shipped)
    steps = {s.name for s in matrix.STEPS}
    assert {t.step for t in matrix.TRIGGERS} <= steps
    for s in matrix.STEPS:
        assert s.fault is None or s.name.startswith("fault:")
        assert s.fault is not None or s.name in matrix.ACTIONS


def test_overrides_apply_to_the_shipped_expression_and_say_why() -> None:
    rules = {r["alert"]: r for _, r in queries.rules() if "alert" in r}
    for t in matrix.TRIGGERS:
        if t.override is not None:
            assert t.override[0] in rules[t.alert]["expr"], t.alert
            assert t.why, f"{t.alert}: an override needs its reason"


def test_docs_print_the_current_matrix() -> None:
    text = home.checkout().alerting_doc.read_text()
    assert render_doc(text) == text, "docs/alerting.md is stale: run `make docs`"


def test_the_rule_profile_only_cuts_for(tmp_path: Path) -> None:
    write_profile(tmp_path, "5s")
    for (file, orig), (_, cut) in zip(queries.rules(), queries.rules(tmp_path), strict=True):
        assert {k: v for k, v in orig.items() if k != "for"} == {
            k: v for k, v in cut.items() if k != "for"
        }, file
        if "for" in orig:
            assert duration_s(cut["for"]) == min(duration_s(orig["for"]), 5.0)


def test_duration_parsing() -> None:
    assert duration_s("1m30s") == 90
    assert duration_s("500ms") == 0.5
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        duration_s("5 minutes")
