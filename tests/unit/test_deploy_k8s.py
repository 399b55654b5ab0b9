"""Kubernetes manifests: agent DaemonSet + gateway Deployment, traces balanced by trace ID."""

from __future__ import annotations

from typing import Any

import yaml

from tests.fixtures.alerting import DEPLOY

K8S = DEPLOY / "k8s"


def kustomization() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return doc


def objects() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for name in kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
            out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def overlay(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((K8S / "config" / name).read_text())
    return doc


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    (container,) = obj["spec"]["template"]["spec"]["containers"]
    return container


def test_manifests_parse_and_have_the_two_roles() -> None:
    objs = objects()
    assert ("DaemonSet", "otel-agent") in objs
    assert ("Deployment", "otel-gateway") in objs
    assert objs[("Deployment", "otel-gateway")]["spec"]["replicas"] >= 2
    assert objs[("Service", "otel-gateway-headless")]["spec"]["clusterIP"] == "None"


def test_overlays_exist_and_are_mounted() -> None:
    generated = {g["name"]: g["files"] for g in kustomization()["configMapGenerator"]}
    objs = objects()
    for kind, name, cm in (
        ("DaemonSet", "otel-agent", "otel-agent-overlay"),
        ("Deployment", "otel-gateway", "otel-gateway-overlay"),
    ):
        obj = objs[(kind, name)]
        volumes = {v["name"]: v for v in obj["spec"]["template"]["spec"]["volumes"]}
        assert volumes["overlay"]["configMap"]["name"] == cm
        (file,) = generated[cm]
        assert (K8S / file).is_file()
        args = _container(obj)["args"]
        # The image's base + role configs, then our overlay: lists in the overlay win.
        assert args[0] == "--config=/etc/otelcol/common.yaml"
        assert args[-1] == f"--config=/etc/otelcol-overlay/{file.rsplit('/', 1)[-1]}"


def test_agent_balances_traces_by_trace_id_to_the_headless_service() -> None:
    agent = overlay("agent-k8s.yaml")
    lb = agent["exporters"]["load_balancing"]
    assert lb["routing_key"] == "traceID"
    assert lb["protocol"]["otlp"]["tls"]["ca_file"].startswith("/etc/otelcol-tls/")
    assert agent["service"]["pipelines"]["traces"]["exporters"] == ["load_balancing"]
    hostname = lb["resolver"]["dns"]["hostname"]
    assert "otel-gateway-headless.observability" in hostname
    assert lb["resolver"]["dns"]["port"] == "4317"
    env = {
        e["name"]: e.get("value") for e in _container(objects()[("DaemonSet", "otel-agent")])["env"]
    }
    assert env["TRADING_OTEL_GATEWAY_HEADLESS"].startswith("otel-gateway-headless.observability")


def test_agent_persistent_queue_is_on_load_balancing_not_per_gateway() -> None:
    # Every per-gateway exporter gets the same id, so a file_storage queue under
    # protocol.otlp is one file for all gateways and all but one reject their traces
    # (tests/integration/test_collector_scaleout.py; contrib issue #16826).
    lb = overlay("agent-k8s.yaml")["exporters"]["load_balancing"]
    assert lb["sending_queue"]["storage"] == "file_storage/queue"
    assert lb["retry_on_failure"]["max_elapsed_time"] == 0
    per_gateway = lb["protocol"]["otlp"]
    assert per_gateway["sending_queue"]["enabled"] is False
    assert "storage" not in per_gateway["sending_queue"]


def test_each_gateway_pod_names_its_span_metrics() -> None:
    env = {e["name"]: e for e in _container(objects()[("Deployment", "otel-gateway")])["env"]}
    field = env["TRADING_OTEL_COLLECTOR_INSTANCE"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.name"


def test_agent_collects_host_metrics_for_the_system_dashboard() -> None:
    agent = overlay("agent-k8s.yaml")
    scrapers = agent["receivers"]["host_metrics"]["scrapers"]
    assert {"cpu", "memory", "filesystem"} <= set(scrapers)
    assert "host_metrics" in agent["service"]["pipelines"]["metrics"]["receivers"]


def test_gateway_serves_tls_for_the_bearer_token() -> None:
    protocols = overlay("gateway-k8s.yaml")["receivers"]["otlp"]["protocols"]
    for proto in ("grpc", "http"):
        assert protocols[proto]["tls"]["cert_file"].startswith("/etc/otelcol-tls/")
        assert protocols[proto]["auth"]["authenticator"] == "bearertokenauth/server"


def test_tokens_come_from_secrets() -> None:
    for key in (("DaemonSet", "otel-agent"), ("Deployment", "otel-gateway")):
        env = {e["name"]: e for e in _container(objects()[key])["env"]}
        token = env["TRADING_OTEL_GATEWAY_TOKEN"]
        assert "value" not in token
        assert token["valueFrom"]["secretKeyRef"]["name"] == "otel-gateway-token"
