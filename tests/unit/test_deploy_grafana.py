"""Grafana provisioning: datasources linked by fixed uids, dashboards with stable uids,
known metrics only, exemplars on every latency quantile."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel._internal.catalogue import CATALOGUE
from tests.fixtures.alerting import DEPLOY, REPO, unknown_metrics

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCE_UIDS = {"prometheus", "tempo", "loki", "alertmanager"}
EXPECTED = {
    "trading-overview",
    "order-latency",
    "service-health",
    "market-data",
    "telemetry-pipeline",
    "system",
}


def datasources() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((GRAFANA / "provisioning/datasources/datasources.yaml").read_text())
    return {ds["uid"]: ds for ds in doc["datasources"]}


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def grafana_vars(expr: str) -> str:
    """Replace Grafana's interval macros the way Grafana would, with fixed values."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "30s")
        .replace("$__range", "1h")
    )


def dashboard_exprs() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, PromQL) for every Prometheus target and annotation."""
    out = []
    for path in DASHBOARDS:
        doc = load(path)
        for panel in panels(doc):
            for target in panel.get("targets", []):
                if target.get("datasource", {}).get("uid") == "prometheus":
                    out.append((doc["uid"], panel["title"], grafana_vars(target["expr"])))
        for ann in doc.get("annotations", {}).get("list", []):
            if ann.get("datasource", {}).get("uid") == "prometheus":
                out.append((doc["uid"], ann["name"], ann["expr"]))
    return out


def test_expected_dashboards_with_stable_uids() -> None:
    uids = []
    for path in DASHBOARDS:
        doc = load(path)
        assert doc["uid"] == path.stem, "uid is the file name, so links never drift"
        assert doc["title"] and doc.get("id") is None, "no instance-specific id in the file"
        uids.append(doc["uid"])
    assert sorted(uids) == sorted(EXPECTED)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_panels_use_provisioned_datasources_and_have_unique_ids(path: Path) -> None:
    doc = load(path)
    ids = [p["id"] for p in panels(doc)]
    assert len(ids) == len(set(ids))
    for panel in panels(doc):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in DATASOURCE_UIDS, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in DATASOURCE_UIDS
            assert target["expr"].strip()
    assert set(datasources()) == DATASOURCE_UIDS


def test_every_dashboard_metric_exists() -> None:
    exprs = [expr for _, _, expr in dashboard_exprs()]
    assert len(exprs) > 40
    assert unknown_metrics(exprs) == {}


def _latency_buckets() -> set[str]:
    names = {f"{m.prom_name}_bucket" for m in CATALOGUE if m.kind == "histogram" and m.exemplars}
    return names | {"http_server_request_duration_seconds_bucket"}


def test_latency_quantile_panels_have_exemplars_on() -> None:
    latency = _latency_buckets()
    checked = 0
    for path in DASHBOARDS:
        for panel in panels(load(path)):
            for target in panel.get("targets", []):
                expr = target.get("expr", "")
                if "histogram_quantile" in expr and any(name in expr for name in latency):
                    assert target.get("exemplar") is True, f"{path.stem}: {panel['title']}"
                    checked += 1
    assert checked >= 8


def _dashboard_text(uid: str) -> str:
    return (GRAFANA / "dashboards" / f"{uid}.json").read_text()


@pytest.mark.parametrize(
    ("uid", "needles"),
    [
        (
            "trading-overview",
            ["trading_orders_total", "trading_order_rejection:ratio", "trading_pnl_usd",
             "trading_position_quantity", "trading_circuit_breaker_state"],
        ),
        (
            "order-latency",
            ['"type": "heatmap"', "histogram_quantile(0.50", "histogram_quantile(0.95",
             "histogram_quantile(0.99", "trading_order_latency_slo_errors:ratio_rate1h"],
        ),
        (
            "service-health",
            ["http_server_request_duration_seconds_count", "5..",
             "http_server_request_duration_seconds_bucket", "trading_dependency_up"],
        ),
        (
            "market-data",
            ["trading_market_data_staleness_seconds", "trading_market_data_messages_total",
             "trading_market_data_reconnects_total", "trading_websocket_connections"],
        ),
        (
            "telemetry-pipeline",
            ["otelcol_receiver_accepted_", "otelcol_receiver_refused_", "otelcol_exporter_sent_",
             "otelcol_exporter_send_failed_", "otelcol_exporter_queue_size",
             "spans", "metric_points", "log_records"],
        ),
        (
            "system",
            ["system_cpu_time_seconds_total", "system_memory_usage_bytes",
             "system_filesystem_usage_bytes"],
        ),
    ],
)  # fmt: skip
def test_dashboard_shows_what_the_desk_asked_for(uid: str, needles: list[str]) -> None:
    text = _dashboard_text(uid)
    for needle in needles:
        assert needle in text, f"{uid}: {needle}"


def test_prometheus_exemplars_link_to_tempo_for_both_label_names() -> None:
    prom = datasources()["prometheus"]
    dests = {d["name"]: d["datasourceUid"] for d in prom["jsonData"]["exemplarTraceIdDestinations"]}
    assert dests == {"trace_id": "tempo", "traceID": "tempo"}


def test_tempo_links() -> None:
    tempo = datasources()["tempo"]["jsonData"]
    logs = tempo["tracesToLogsV2"]
    assert logs["datasourceUid"] == "loki"
    assert logs["customQuery"] is True
    assert "service_name=" in logs["query"] and "trace_id=" in logs["query"]
    metrics = tempo["tracesToMetrics"]
    assert metrics["datasourceUid"] == "prometheus"
    queries = " ".join(q["query"] for q in metrics["queries"])
    assert "trading_order_latency_seconds_bucket" in queries
    assert "traces_span_metrics_calls_total" in queries
    assert unknown_metrics(q["query"].replace("$$__tags", "") for q in metrics["queries"]) == {}
    assert tempo["serviceMap"]["datasourceUid"] == "prometheus"


def test_loki_derived_field_opens_tempo() -> None:
    (field,) = datasources()["loki"]["jsonData"]["derivedFields"]
    assert field["datasourceUid"] == "tempo"
    assert field["matcherType"] == "label"
    assert field["matcherRegex"] == "trace_id"


def test_literal_dollars_are_escaped_for_provisioning() -> None:
    # Grafana expands $VAR / ${VAR} in provisioning files; its own macros need `$$`.
    text = (GRAFANA / "provisioning/datasources/datasources.yaml").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert re.findall(r"(?<!\$)\$(?!\$)\{?_", body) == []
    assert "$${__trace.traceId}" in body


def test_dashboard_provider_points_at_the_dashboards() -> None:
    doc = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yaml").read_text())
    (provider,) = doc["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_span_metrics_unit_follows_the_gateway_config() -> None:
    gateway = yaml.safe_load((REPO / "collector/config/gateway.yaml").read_text())
    unit = gateway["connectors"]["span_metrics"].get("histogram", {}).get("unit", "ms")
    name = {"ms": "milliseconds", "s": "seconds"}[unit]
    queries = datasources()["tempo"]["jsonData"]["tracesToMetrics"]["queries"]
    durations = [q["query"] for q in queries if "traces_span_metrics_duration" in q["query"]]
    assert durations
    assert all(f"traces_span_metrics_duration_{name}_bucket" in q for q in durations)
