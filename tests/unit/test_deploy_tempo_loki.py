"""Tempo and Loki configs, checked statically for the keys and links the stack relies on
(neither can run on the CI machine)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.fixtures.alerting import DEPLOY, EXTERNAL_METRICS, REPO
from tests.unit.test_deploy_compose import dotenv, services
from tests.unit.test_deploy_grafana import datasources


def tempo() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "tempo/tempo.yaml").read_text())
    return doc


def loki() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "loki/loki.yaml").read_text())
    return doc


def test_tempo_is_pinned_to_3x_and_has_no_2x_blocks() -> None:
    assert dotenv()["TEMPO_IMAGE"].split(":")[1].startswith("3.")
    # Tempo 3 removed these; a leftover key stops it at start-up.
    for removed in ("ingester", "ingester_client", "compactor", "metrics_generator_client"):
        assert removed not in tempo()


def test_tempo_otlp_receivers_are_bound_explicitly() -> None:
    protocols = tempo()["distributor"]["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    gateway = yaml.safe_load((REPO / "collector/config/gateway.yaml").read_text())
    assert "otlp_grpc/tempo" in gateway["exporters"]
    collector_env = services()["otel-collector"]["environment"]
    assert collector_env["TRADING_OTEL_TEMPO_ENDPOINT"] == "tempo:4317"


def test_tempo_metrics_generator_remote_writes_exemplars_to_prometheus() -> None:
    doc = tempo()
    (rw,) = doc["metrics_generator"]["storage"]["remote_write"]
    assert rw["url"] == "http://prometheus:9090/api/v1/write"
    assert rw["send_exemplars"] is True
    processors = doc["overrides"]["defaults"]["metrics_generator"]["processors"]
    assert processors == ["service-graphs"]
    assert "--web.enable-remote-write-receiver" in services()["prometheus"]["command"]


# Tempo's span-metrics processor names its series traces_spanmetrics_*; our gateway's
# span_metrics connector (namespace traces.span.metrics) traces_span_metrics_*.
_TEMPO_SPAN_METRICS = re.compile(r"traces_spanmetrics_[a-z_]+")
_SERVICE_GRAPH = re.compile(r"traces_service_graph_[a-z_]+")


def _shipped_texts() -> list[tuple[str, str]]:
    """Every file that may hold a query: dashboards, datasources, rules, docs, tools."""
    paths = [p for d in ("deploy", "docs", "tools") for p in (REPO / d).rglob("*") if p.is_file()]
    return [
        (str(p.relative_to(REPO)), p.read_text(errors="replace"))
        for p in paths
        if p.suffix in {".json", ".yaml", ".yml", ".md", ".py"}
    ]


def test_span_metrics_are_made_once_before_sampling() -> None:
    # Ours: every span, before tail sampling. Tempo's would count the sampled traces again.
    gateway = yaml.safe_load((REPO / "collector/config/gateway.yaml").read_text())
    pipelines = gateway["service"]["pipelines"]
    unsampled = [p for p in pipelines.values() if "span_metrics" in p.get("exporters", [])]
    assert unsampled and all("tail_sampling" not in p["processors"] for p in unsampled)
    assert gateway["connectors"]["span_metrics"]["namespace"] == "traces.span.metrics"
    assert "span-metrics" not in tempo()["overrides"]["defaults"]["metrics_generator"]["processors"]
    assert "span_metrics" not in tempo()["metrics_generator"].get("processor", {})


def test_shipped_queries_use_series_that_exist() -> None:
    used_ours = 0
    for where, text in _shipped_texts():
        assert not _TEMPO_SPAN_METRICS.search(text), f"{where} queries Tempo's span metrics"
        used_ours += "traces_span_metrics_" in text
        # Service-graph series come only from Tempo's service-graphs processor (our
        # distribution has no servicegraph connector).
        for name in _SERVICE_GRAPH.findall(text):
            assert name in EXTERNAL_METRICS, f"{where}: {name}"
    assert used_ours >= 3
    # Grafana's service map reads the service graph from the Prometheus Tempo writes to.
    tempo_ds = datasources()["tempo"]["jsonData"]
    assert tempo_ds["serviceMap"]["datasourceUid"] == "prometheus"
    (rw,) = tempo()["metrics_generator"]["storage"]["remote_write"]
    assert rw["url"].startswith(datasources()["prometheus"]["url"])


def test_tempo_api_port_matches_grafana() -> None:
    port = tempo()["server"]["http_listen_port"]
    assert datasources()["tempo"]["url"] == f"http://tempo:{port}"


def test_loki_is_pinned_to_3_7() -> None:
    assert dotenv()["LOKI_IMAGE"].split(":")[1].startswith("3.7")


def test_loki_accepts_otlp_with_structured_metadata() -> None:
    doc = loki()
    assert doc["limits_config"]["allow_structured_metadata"] is True
    # Structured metadata needs the tsdb index with schema v13.
    (schema,) = doc["schema_config"]["configs"]
    assert schema["store"] == "tsdb" and schema["schema"] == "v13"
    port = doc["server"]["http_listen_port"]
    assert datasources()["loki"]["url"] == f"http://loki:{port}"
    collector_env = services()["otel-collector"]["environment"]
    assert collector_env["TRADING_OTEL_LOKI_ENDPOINT"] == f"http://loki:{port}/otlp"


def test_loki_retention_is_enforced() -> None:
    doc = loki()
    assert doc["compactor"]["retention_enabled"] is True
    assert doc["compactor"]["delete_request_store"] == "filesystem"
    period = doc["limits_config"]["retention_period"]
    assert period.endswith("h") and int(period[:-1]) >= 24 * 7
