"""Compose files, checked without a Docker engine: they parse, every image and port comes
from .env, every mounted file exists, ports are unique, waited-on services are healthy."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.alerting import DEPLOY, REPO

COMPOSE = DEPLOY / "compose"
FILES = [COMPOSE / "compose.yaml", COMPOSE / "compose.observability.yaml"]
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?]([^}]*))?\}")


def dotenv() -> dict[str, str]:
    env = {}
    for line in (COMPOSE / ".env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose-style ${VAR} / ${VAR:-default}; `$$` stays a literal dollar."""
    marker = "\0"
    text = text.replace("$$", marker)

    def sub(m: re.Match[str]) -> str:
        if m.group(1) in env:
            return env[m.group(1)]
        if m.group(2) is not None:
            return m.group(2)
        raise AssertionError(f"${{{m.group(1)}}} is used but not defined in .env")

    return _VAR.sub(sub, text).replace(marker, "$")


def services() -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    env = dotenv()
    for path in FILES:
        doc = yaml.safe_load(interpolate(path.read_text(), env))
        for name, svc in doc["services"].items():
            assert name not in merged, f"{name} defined twice"
            merged[name] = svc
    return merged


def test_files_parse_and_hold_the_expected_services() -> None:
    base = yaml.safe_load(interpolate(FILES[0].read_text(), dotenv()))["services"]
    obs = yaml.safe_load(interpolate(FILES[1].read_text(), dotenv()))["services"]
    assert {"postgres", "redis", "execution-gateway", "signal-service", "orchestrator",
            "market-data", "broker-simulator"} <= set(base)  # fmt: skip
    assert {"otel-collector", "prometheus", "alertmanager", "tempo", "loki", "grafana"} <= set(obs)


def test_every_image_is_pinned_in_env() -> None:
    env = dotenv()
    raw = "\n".join(p.read_text() for p in FILES)
    for line in raw.splitlines():
        if re.match(r"\s*image:", line) and "trading-otel/" not in line:
            assert re.search(r"image: \$\{[A-Z_]+_IMAGE\}", line), f"image not from .env: {line}"
    for key, value in env.items():
        if key.endswith("_IMAGE"):
            name, _, tag = value.rpartition(":")
            assert name and re.search(r"\d", tag) and tag != "latest", f"{key}={value} not pinned"


def test_collector_builder_matches_the_manifest() -> None:
    manifest = yaml.safe_load((REPO / "collector/manifest.yaml").read_text())
    assert dotenv()["OTELCOL_BUILDER_VERSION"] == manifest["dist"]["version"]


def _host_ports(svc: dict[str, Any]) -> list[str]:
    return [str(p).rsplit(":", 1)[0] for p in svc.get("ports", [])]


def test_published_ports_are_unique_and_come_from_env() -> None:
    raw = "\n".join(p.read_text() for p in FILES)
    for spec in re.findall(r'"(\$\{[^"]*)"', raw):
        if re.fullmatch(r"\$\{[A-Z_]+_PORT\}:\d+", spec) is None and "_PORT}" in spec:
            raise AssertionError(f"port mapping not of the form ${{X_PORT}}:N: {spec}")
    seen: dict[str, str] = {}
    for name, svc in services().items():
        for host in _host_ports(svc):
            assert host not in seen, f"port {host} published by {seen.get(host)} and {name}"
            seen[host] = name
    assert len(seen) >= 15


def _bind_sources(svc: dict[str, Any]) -> list[str]:
    out = []
    for vol in svc.get("volumes", []):
        source = vol.split(":", 1)[0]
        if source.startswith((".", "/")):
            out.append(source)
    return out


def test_every_mounted_file_exists() -> None:
    checked = 0
    for name, svc in services().items():
        for source in _bind_sources(svc):
            path = (COMPOSE / source).resolve()
            assert path.exists(), f"{name} mounts missing {source}"
            checked += 1
        build = svc.get("build")
        if build:
            assert (COMPOSE / build["context"] / build["dockerfile"]).is_file()
    assert checked >= 8


def test_secrets_are_files_outside_git() -> None:
    for path in FILES:
        doc = yaml.safe_load(interpolate(path.read_text(), dotenv()))
        for name, secret in doc["secrets"].items():
            assert secret["file"].startswith("./secrets/"), name
    ignore = (COMPOSE / "secrets/.gitignore").read_text().splitlines()
    assert "*" in ignore
    tracked = subprocess.run(
        ["git", "ls-files", str(COMPOSE / "secrets")],
        capture_output=True, text=True, cwd=REPO, check=True,
    ).stdout.split()  # fmt: skip
    assert all(Path(p).name in {".gitignore", "README.md", ".gitkeep"} for p in tracked), tracked
    # No password-looking value in any compose file or .env.
    for path in [*FILES, COMPOSE / ".env"]:
        assert not re.search(
            r"(?i)(password|secret|token)\s*[:=]\s*[A-Za-z0-9]{8,}",
            path.read_text().replace("trading-otel-dev-token", ""),
        ), path


def test_waited_on_services_have_healthchecks() -> None:
    svcs = services()
    waited = 0
    for name, svc in svcs.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in svcs, f"{name} depends on unknown {dep}"
            assert cond["condition"] == "service_healthy", (name, dep)
            assert "test" in svcs[dep].get("healthcheck", {}), f"{dep} has no healthcheck"
            waited += 1
    assert waited >= 8


def test_mounted_configs_are_the_deploy_configs() -> None:
    svcs = services()
    assert (
        "../prometheus/prometheus.compose.yml:/etc/prometheus/prometheus.yml:ro"
        in svcs["prometheus"]["volumes"]
    )
    assert "--enable-feature=exemplar-storage" in svcs["prometheus"]["command"]
    assert "--web.enable-remote-write-receiver" in svcs["prometheus"]["command"]
    assert (
        "../alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"
        in svcs["alertmanager"]["volumes"]
    )
    assert "../grafana/dashboards:/var/lib/grafana/dashboards:ro" in svcs["grafana"]["volumes"]
    env = svcs["otel-collector"]["environment"]
    assert env["TRADING_OTEL_TEMPO_ENDPOINT"] == "tempo:4317"
    assert env["TRADING_OTEL_LOKI_ENDPOINT"] == "http://loki:3100/otlp"
    # Alertmanager's archive webhook and Prometheus' targets use these service names.
    am = yaml.safe_load((DEPLOY / "alertmanager/alertmanager.yml").read_text())
    archive = next(r for r in am["receivers"] if r["name"] == "archive")
    assert archive["webhook_configs"][0]["url"].startswith("http://alert-archive:9095/")
    prom = yaml.safe_load((DEPLOY / "prometheus/prometheus.compose.yml").read_text())
    hosts = {
        t.split(":")[0]
        for j in prom["scrape_configs"]
        for s in j["static_configs"]
        for t in s["targets"]
    }
    assert hosts - {"localhost"} <= set(svcs)


def test_the_diagnosis_goes_to_the_chat_webhook_alertmanager_uses() -> None:
    # One secret file for both: Alertmanager's chat receiver reads it from its secrets
    # directory mount, the archive receiver gets it as a compose secret and posts there.
    svcs = services()
    am = yaml.safe_load((DEPLOY / "alertmanager/alertmanager.yml").read_text())
    chat = next(r for r in am["receivers"] if r["name"] == "chat")
    am_file = chat["slack_configs"][0]["api_url_file"]
    mounts = dict(v.split(":")[:2] for v in svcs["alertmanager"]["volumes"])
    host_dir = next(src for src, dst in mounts.items() if am_file.startswith(dst + "/"))
    am_source = f"{host_dir}/{am_file.rsplit('/', 1)[1]}"
    doc = yaml.safe_load(interpolate(FILES[1].read_text(), dotenv()))
    archive = svcs["alert-archive"]
    assert archive["secrets"] == ["slack_webhook_url"]
    assert doc["secrets"]["slack_webhook_url"]["file"] == am_source
    command = archive["command"]
    flag = command.index("--chat-webhook-url-file")
    assert command[flag + 1] == "/run/secrets/slack_webhook_url"


def _compose_cli() -> list[str] | None:
    """``docker compose`` (v2 plugin) or ``docker-compose`` (v1), whichever works here."""
    docker = shutil.which("docker")
    if docker is not None:
        ok = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if ok.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy is not None else None


@pytest.mark.skipif(_compose_cli() is None, reason="neither docker compose nor docker-compose")
def test_docker_compose_config() -> None:
    # The client validates and interpolates the files without talking to an engine.
    cli = _compose_cli()
    assert cli is not None
    res = subprocess.run(
        [*cli, "-f", str(FILES[0]), "-f", str(FILES[1]), "config", "--quiet"],
        capture_output=True, text=True, cwd=COMPOSE, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
