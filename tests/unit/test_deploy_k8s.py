"""Kubernetes manifests: agent DaemonSet + gateway Deployment, traces balanced by trace ID."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.fixtures.alerting import DEPLOY, REPO
from tests.unit.test_deploy_compose import dotenv

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


# --- deployment correctness (issue 13) ------------------------------------------------

IMAGE = "trading-otel/otelcol-trading"
COLLECTORS = (("DaemonSet", "otel-agent"), ("Deployment", "otel-gateway"))
_ENV_REF = re.compile(r"\$\{env:([A-Z0-9_]+)(:-[^}]*)?\}")
_K8S_REF = re.compile(r"\$\(([A-Za-z0-9_]+)\)")
_QUANTITY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = obj["spec"]["template"]["spec"]
    return pod


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def _bytes(quantity: str) -> int:
    """A Kubernetes quantity (512Mi) or a GOMEMLIMIT (409MiB), in bytes."""
    m = re.fullmatch(r"(\d+)([KMG]iB?)?B?", quantity)
    assert m, quantity
    return int(m.group(1)) * (_QUANTITY[m.group(2)] if m.group(2) else 1)


def _common_default(text: str) -> str:
    m = _ENV_REF.fullmatch(text)
    assert m and m.group(2), text
    return m.group(2)[2:]


def _common() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "collector/config/common.yaml").read_text())
    return doc


def test_image_tag_is_set_only_in_the_kustomization() -> None:
    (entry,) = kustomization()["images"]
    manifest = yaml.safe_load((REPO / "collector/manifest.yaml").read_text())
    assert entry["name"] == IMAGE
    assert entry["newTag"] == manifest["dist"]["version"] == dotenv()["OTELCOL_BUILDER_VERSION"]
    pods = [_pod(objects()[key]) for key in COLLECTORS]
    images = [c["image"] for p in pods for c in (*p.get("initContainers", []), *p["containers"])]
    # Untagged, so the kustomization's entry is the only tag; kustomize rewrites init
    # containers too.
    assert images and set(images) == {IMAGE}
    for path in K8S.rglob("*.y*ml"):
        if path.name != "kustomization.yaml":
            assert f"{IMAGE}:" not in path.read_text(), f"{path} repeats the image tag"


def test_env_references_are_defined_before_use() -> None:
    # Kubernetes expands $(VAR) only for variables listed EARLIER in the same env; a later
    # one stays the literal text "$(VAR)".
    for key in COLLECTORS:
        seen: set[str] = set()
        for e in _container(objects()[key])["env"]:
            for ref in _K8S_REF.findall(str(e.get("value", ""))):
                assert ref in seen, f"{key[1]}: {e['name']} uses $({ref}) before it is set"
            seen.add(e["name"])


def test_overlay_variables_without_default_are_set_by_the_workload() -> None:
    for key, file in ((COLLECTORS[0], "agent-k8s.yaml"), (COLLECTORS[1], "gateway-k8s.yaml")):
        env = _env(_container(objects()[key]))
        for var, default in _ENV_REF.findall((K8S / "config" / file).read_text()):
            if not default:
                assert env.get(var), f"{file} needs {var}, which {key[1]} does not set"


def test_load_balancing_checks_the_gateway_certificate_by_service_name() -> None:
    # The DNS resolver dials the pod IPs behind the headless Service, and no certificate
    # names a pod IP (contrib #18412): without server_name_override every TLS handshake
    # fails its hostname check.
    lb = overlay("agent-k8s.yaml")["exporters"]["load_balancing"]
    assert "dns" in lb["resolver"]
    tls = lb["protocol"]["otlp"]["tls"]
    assert tls["server_name_override"] == "${env:TRADING_OTEL_GATEWAY_TLS_SERVER_NAME}"
    env = _env(_container(objects()[COLLECTORS[0]]))
    endpoint = urlsplit(env["TRADING_OTEL_GATEWAY_ENDPOINT"])
    # One name on the certificate serves both exporters: the OTLP/HTTP one dials it.
    assert env["TRADING_OTEL_GATEWAY_TLS_SERVER_NAME"] == endpoint.hostname
    service, namespace, rest = str(endpoint.hostname).split(".", 2)
    assert rest == "svc" and namespace == kustomization()["namespace"]
    assert ("Service", service) in objects()
    assert "otel-gateway.observability.svc" in (K8S / "kustomization.yaml").read_text()


def test_agent_http_exporter_trusts_the_gateway_ca() -> None:
    agent = overlay("agent-k8s.yaml")
    lb_tls = agent["exporters"]["load_balancing"]["protocol"]["otlp"]["tls"]
    http_tls = agent["exporters"]["otlp_http/gateway"]["tls"]
    assert http_tls == {"ca_file": lb_tls["ca_file"]}
    ds = objects()[COLLECTORS[0]]
    env = _env(_container(ds))
    assert env["TRADING_OTEL_GATEWAY_ENDPOINT"].startswith("https://")
    mount = next(m for m in _container(ds)["volumeMounts"] if m["name"] == "tls")
    volume = next(v for v in _pod(ds)["volumes"] if v["name"] == "tls")
    items = {i["path"] for i in volume["secret"]["items"]}
    assert http_tls["ca_file"] in {f"{mount['mountPath']}/{p}" for p in items}
    # Metrics and logs still use the OTLP/HTTP exporter (the overlay does not list logs).
    agent_yaml = yaml.safe_load((REPO / "collector/config/agent.yaml").read_text())
    assert agent_yaml["service"]["pipelines"]["logs"]["exporters"] == ["otlp_http/gateway"]
    assert agent["service"]["pipelines"]["metrics"]["exporters"] == ["otlp_http/gateway"]


def test_queue_host_path_is_handed_to_the_collector_user() -> None:
    # The kubelet creates a DirectoryOrCreate hostPath as root:root 0755, and fsGroup is
    # never applied to hostPath volumes: only a root init container can chown it.
    ds = objects()[COLLECTORS[0]]
    pod = _pod(ds)
    volume = next(v for v in pod["volumes"] if v["name"] == "queue")
    assert volume["hostPath"]["type"] == "DirectoryOrCreate"
    main = _container(ds)
    mount = next(m for m in main["volumeMounts"] if m["name"] == "queue")["mountPath"]
    queue_dir = _env(main)["TRADING_OTEL_COLLECTOR_QUEUE_DIR"]
    assert queue_dir.startswith(f"{mount}/")
    (init,) = pod["initContainers"]
    assert {"name": "queue", "mountPath": mount} in init["volumeMounts"]
    uid, gid = pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    assert pod["securityContext"]["runAsNonRoot"] is True and uid != 0
    assert init["command"] == ["chown", f"{uid}:{gid}", mount]
    ctx = init["securityContext"]
    assert ctx["runAsUser"] == 0 and ctx["runAsNonRoot"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
    assert ctx["allowPrivilegeEscalation"] is False
    # The init container runs the collector image with its entrypoint replaced: its base
    # must have chown (busybox), and the image's own user must be the pod's.
    assert dotenv()["COLLECTOR_BASE_IMAGE"].startswith("busybox:")
    dockerfile = (DEPLOY / "compose/collector.Dockerfile").read_text()
    assert re.search(rf"^USER {uid}$", dockerfile, re.M)


def test_gomemlimit_is_80_percent_of_the_memory_limit_and_the_limiters_hard_limit() -> None:
    limiter = _common()["processors"]["memory_limiter"]
    for key in COLLECTORS:
        container = _container(objects()[key])
        env = _env(container)
        assert isinstance(env["GOMEMLIMIT"], str), f"{key[1]}: GOMEMLIMIT must be a value"
        limit = _bytes(container["resources"]["limits"]["memory"])
        # memory_limiter's hard limit is limit_percentage of the container's limit.
        percent = int(
            env.get("TRADING_OTEL_COLLECTOR_MEMORY_LIMIT_PERCENT")
            or _common_default(limiter["limit_percentage"])
        )
        assert percent == 80
        target = limit * percent // 100
        assert target - 2**20 < _bytes(env["GOMEMLIMIT"]) <= target, (key, env["GOMEMLIMIT"])


def _dns_names(job: dict[str, Any]) -> tuple[set[str], set[int]]:
    names = {n for sd in job["dns_sd_configs"] for n in sd["names"]}
    return names, {sd["port"] for sd in job["dns_sd_configs"]}


def test_every_collector_own_telemetry_is_scraped() -> None:
    prom = yaml.safe_load((K8S / "prometheus/prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    names, ports = _dns_names(jobs["otel-collector"])
    port = int(_common_default(
        _common()["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"][
            "prometheus"]["port"]
    ))  # fmt: skip
    assert ports == {port}
    namespace = kustomization()["namespace"]
    objs = objects()
    for key in COLLECTORS:
        obj = objs[key]
        container = _container(obj)
        assert _env(container)["TRADING_OTEL_COLLECTOR_TELEMETRY_HOST"] == "0.0.0.0"
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert named["telemetry"] == port
        # Annotation-driven Prometheus: the pod's own-telemetry port.
        annotations = obj["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        # prometheus.yml: a headless Service of this workload exposes the port by DNS.
        labels = obj["spec"]["template"]["metadata"]["labels"].items()
        headless = [
            s
            for (kind, _), s in objs.items()
            if kind == "Service"
            and s["spec"].get("clusterIP") == "None"
            and s["spec"]["selector"].items() <= labels
            and any(p["port"] == port for p in s["spec"]["ports"])
        ]
        assert headless, f"no headless Service exposes {key[1]}'s telemetry port"
        fqdn = f"{headless[0]['metadata']['name']}.{namespace}.svc.cluster.local"
        assert fqdn in names, f"otel-collector job does not scrape {fqdn}"
    # The exporter job keeps the gateways only (the agents have no Prometheus exporter).
    exporter_names, _ = _dns_names(jobs["otel-collector-exporter"])
    assert exporter_names == {f"otel-gateway-headless.{namespace}.svc.cluster.local"}
