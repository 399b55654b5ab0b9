"""Grafana provisioning: datasources linked by fixed uids, dashboards with stable uids,
known metrics only, exemplars on every latency quantile, template variables used by every
selector, and conditional panels marked with what fills them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel._internal.catalogue import CATALOGUE
from tests.fixtures.alerting import (
    DEPLOY,
    REPO,
    allowed_metric_names,
    metric_names,
    unknown_metrics,
)
from trading_otel_tools.stack.faults import FAULT_NAMES

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


def test_latency_quantile_heatmap_and_histogram_panels_have_exemplars_on() -> None:
    latency = _latency_buckets()
    checked, heatmaps = 0, 0
    for path in DASHBOARDS:
        for panel in panels(load(path)):
            for target in panel.get("targets", []):
                if any(name in target.get("expr", "") for name in latency):
                    assert target.get("exemplar") is True, f"{path.stem}: {panel['title']}"
                    checked += 1
                    heatmaps += panel["type"] == "heatmap"
    assert checked >= 9
    assert heatmaps >= 1, "the order-latency heatmap shows exemplars too"


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


# --- template variables -----------------------------------------------------------------

_SELECTOR = re.compile(r"(?<![\w:])([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_LABEL_VALUES = re.compile(r"^label_values\((.+),\s*([a-zA-Z_]\w*)\)$", re.S)
#: Series whose service is the Prometheus scrape job (they carry no service_name): the
#: liveness scrape, the collector's own telemetry and the host metrics.
_SCRAPE_LEVEL = re.compile(r"up|otelcol_\w+|system_\w+")


def _symbol_series() -> frozenset[str]:
    """Series that carry a `symbol` label (catalogue metrics with a symbol attribute)."""
    out: set[str] = set()
    for spec in CATALOGUE:
        if "symbol" in spec.attribute_names:
            suffixes = ("_bucket", "_sum", "_count") if spec.kind == "histogram" else ("",)
            out.update(spec.prom_name + s for s in suffixes)
    return frozenset(out)


def selectors(expr: str) -> list[tuple[set[str], dict[str, set[tuple[str, str]]]]]:
    """Every vector selector of ``expr``: (the series names it can select, its matchers).

    A selector without braces has no matchers, so it cannot filter by a variable: it is
    returned with an empty matcher map.
    """
    out: list[tuple[set[str], dict[str, set[tuple[str, str]]]]] = []
    for name, body in _SELECTOR.findall(expr):
        matchers: dict[str, set[tuple[str, str]]] = {}
        for label, op, value in _MATCHER.findall(body):
            matchers.setdefault(label, set()).add((op, value))
        if name:
            names = {name}
        else:
            ((op, pattern),) = matchers.pop("__name__")
            assert op == "=~", expr
            names = {n for n in allowed_metric_names() if re.fullmatch(pattern, n)}
            assert names, f"{pattern} selects nothing we know"
        out.append((names, matchers))
    bare, _ = metric_names(_SELECTOR.sub(" ", expr))
    out.extend(({n}, {}) for n in bare)
    return out


def variables(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in doc.get("templating", {}).get("list", [])}


def _variable_query(var: dict[str, Any]) -> str:
    query = var["query"]
    return str(query["query"] if isinstance(query, dict) else query)


def _prometheus_exprs(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    for panel in panels(doc):
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("uid") == "prometheus":
                yield panel, target["expr"]


def service_label(doc: dict[str, Any]) -> str:
    """`job` when every series of the dashboard is scrape-level, else `service_name`."""
    names = {n for _, expr in _prometheus_exprs(doc) for ns, _ in selectors(expr) for n in ns}
    return "job" if all(_SCRAPE_LEVEL.fullmatch(n) for n in names) else "service_name"


def required_matchers(doc: dict[str, Any], names: set[str]) -> dict[str, str]:
    """Which label must match which variable, for a selector of ``names``."""
    if any(":" in n for n in names):
        # Recording rules keep only their level's labels (service:..., service_symbol:...).
        level = next(iter(names)).split(":")[0].split("_")
        required = {"service_name": "service"}
        if "symbol" in level:
            required["symbol"] = "symbol"
        return required
    if all(_SCRAPE_LEVEL.fullmatch(n) for n in names):
        if service_label(doc) == "job":
            return {"job": "service", "instance": "instance"}
        # On a service_name dashboard a scrape's instance is its address, not the
        # service instance: only the service (= job name) applies.
        return {"job": "service"}
    required = {"service_name": "service", "instance": "instance"}
    if names & _symbol_series():
        required["symbol"] = "symbol"
    return required


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_has_service_instance_and_symbol_variables(path: Path) -> None:
    doc = load(path)
    found = variables(doc)
    wanted = {"service": service_label(doc), "instance": "instance"}
    symbols = any(
        ns & _symbol_series() for _, expr in _prometheus_exprs(doc) for ns, _ in selectors(expr)
    )
    if symbols:
        wanted["symbol"] = "symbol"
    assert set(found) == set(wanted), "service and instance everywhere; symbol where it exists"
    for name, label in wanted.items():
        var = found[name]
        assert var["type"] == "query"
        assert var["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert var["includeAll"] is True and var["allValue"] == ".*", "All means every series"
        assert var["multi"] is True
        match = _LABEL_VALUES.match(_variable_query(var).strip())
        assert match, f"${name}: label_values(<series>, {label})"
        selector, got_label = match.groups()
        assert got_label == label, f"${name} reads {got_label}, the panels filter on {label}"
        assert var.get("definition", _variable_query(var)) == _variable_query(var)
        assert unknown_metrics([selector]) == {}, f"${name} reads a series nobody produces"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_selector_uses_the_variables(path: Path) -> None:
    doc = load(path)
    checked = 0
    for panel, expr in _prometheus_exprs(doc):
        for names, matchers in selectors(expr):
            for label, var in required_matchers(doc, names).items():
                assert ("=~", f"${var}") in matchers.get(label, set()), (
                    f'{path.stem}: {panel["title"]}: {sorted(names)} needs {label}=~"${var}"'
                )
            checked += 1
    assert checked >= 5


def test_variables_chain_on_the_service() -> None:
    """Picking a service narrows the instances (and symbols) offered."""
    for path in DASHBOARDS:
        found = variables(load(path))
        for name in ("instance", "symbol"):
            if name in found:
                assert '=~"$service"' in _variable_query(found[name]), f"{path.stem}: ${name}"


# --- drill-down link --------------------------------------------------------------------


def test_overview_p99_links_to_the_dashboard_with_the_exemplars() -> None:
    overview = load(GRAFANA / "dashboards/trading-overview.json")
    (p99,) = [
        p for p, expr in _prometheus_exprs(overview)
        if "service:trading_order_latency_seconds:p99_rate5m" in expr
    ]  # fmt: skip
    uids = {load(path)["uid"] for path in DASHBOARDS}
    targets = []
    for link in p99.get("links", []):
        match = re.match(r"^/d/([\w-]+)(?:[/?]|$)", link["url"])
        assert match, link["url"]
        assert match.group(1) in uids, f"{link['url']}: no dashboard with that uid"
        targets.append(match.group(1))
    assert targets == ["order-latency"]
    (link,) = p99["links"]
    assert "${__url_time_range}" in link["url"], "the drill-down keeps the time range"
    assert "${__all_variables}" in link["url"], "and the selected service/instance/symbol"
    target = load(GRAFANA / "dashboards/order-latency.json")
    assert any(t.get("exemplar") for p in panels(target) for t in p.get("targets", []))


# --- conditional panels -----------------------------------------------------------------

#: Panels that show data only under a condition: a fault (CLI spelling) or an action.
#: Everything else must show data after a plain `make demo` run. Keep this list short:
#: a panel that can honestly read 0 (a ratio, a failure count) reads 0 instead.
CONDITIONAL = {
    ("trading-overview", "Rejections by reason"): "broker-reject",
    ("market-data", "Websocket clients"): "action: websocket client on /ws/quotes",
    ("service-health", "Span error rate by operation (span metrics)"):
        "action: gateway collector with the span_metrics connector (the local collector has none)",
    ("telemetry-pipeline", "Queue fill by exporter"):
        "action: exporter with a sending_queue (gateway or agent collector; the local "
        "collector's exporters have none)",
}  # fmt: skip


def conditional_panels() -> dict[tuple[str, str], str]:
    out = {}
    for path in DASHBOARDS:
        doc = load(path)
        for panel in panels(doc):
            if "conditional" in panel:
                out[(doc["uid"], panel["title"])] = panel["conditional"]
    return out


def test_conditional_values_name_a_fault_or_an_action() -> None:
    marks = conditional_panels()
    assert marks, "at least the rejection panel is conditional"
    for (uid, title), value in marks.items():
        assert isinstance(value, str) and value == value.strip(), (uid, title)
        if value.startswith("action:"):
            assert value.removeprefix("action:").strip(), f"{uid}: {title}: say which action"
        else:
            assert value in FAULT_NAMES, (
                f"{uid}: {title}: {value!r} is no fault ({list(FAULT_NAMES)})"
            )


def test_conditional_panels_are_the_known_few_and_say_so() -> None:
    assert conditional_panels() == CONDITIONAL
    for path in DASHBOARDS:
        for panel in panels(load(path)):
            if "conditional" not in panel:
                continue
            assert panel["targets"], panel["title"]
            description = panel.get("description", "")
            assert "Conditional" in description, f"{panel['title']}: tell the reader"
            if not panel["conditional"].startswith("action:"):
                assert panel["conditional"] in description, panel["title"]
