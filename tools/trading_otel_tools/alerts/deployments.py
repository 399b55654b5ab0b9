"""What each deployment mode runs on the alerting path, read from its shipped files.

Three modes ship: the local stack (``trading-otel up``), Docker Compose (``deploy/compose``)
and Kubernetes (``deploy/k8s``). For each one this module finds, in the files that mode
really uses, the services' telemetry environment, the collector the services send to (and
how to follow its exporters to the next collector), the Prometheus config and the
Alertmanager config. :mod:`trading_otel_tools.alerts.latency` turns that into the worst-case
alert latency. Nothing here holds a number; everything is read.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from trading_otel_tools import home
from trading_otel_tools.ports import local_url

#: The shipped files this module reads, by name (resolved from the checkout when read).
_LAZY: dict[str, Callable[[home.Checkout], Any]] = {
    "REPO_ROOT": lambda c: c.root,
    "DEPLOY": lambda c: c.deploy,
    "RULES_DIR": lambda c: c.rules_dir,
    "COMPOSE_DIR": lambda c: c.compose_dir,
    "COMPOSE_FILES": lambda c: (
        c.compose_dir / "compose.yaml",
        c.compose_dir / "compose.observability.yaml",
    ),
    "K8S_DIR": lambda c: c.k8s_dir,
    "K8S_SERVICES_ENV": lambda c: c.k8s_dir / "services" / "telemetry-env.yaml",
    "K8S_PROMETHEUS": lambda c: c.k8s_dir / "prometheus" / "prometheus.yml",
    # Kubernetes runs the production Alertmanager config (see K8S_PROMETHEUS's header).
    "K8S_ALERTMANAGER": lambda c: c.deploy / "alertmanager" / "alertmanager.yml",
    # The collector image; its ``COPY`` lines say where the image's configs come from.
    "COLLECTOR_DOCKERFILE": lambda c: c.compose_dir / "collector.Dockerfile",
}


def _p(name: str) -> Any:
    return _LAZY[name](home.checkout())


def __getattr__(name: str) -> Any:
    # The checkout's paths are resolved when read (trading_otel_tools.home), never at import.
    if name in _LAZY:
        return _LAZY[name](home.checkout())
    raise AttributeError(name)


class DeploymentError(ValueError):
    """A shipped file does not say what the alerting path needs (or says it unreadably)."""


@dataclass(frozen=True)
class Collector:
    """One collector on the metrics path: its ``--config`` files and its environment."""

    name: str
    files: tuple[Path, ...]
    env: Mapping[str, str]


@dataclass(frozen=True)
class Deployment:
    """The alerting path of one mode, as its files describe it.

    Attributes:
        mode: ``local``, ``compose`` or ``k8s``.
        services: Environment of each trading service, by name.
        services_where: ``file: place`` that sets that environment.
        entry: The collector the services send OTLP to.
        resolve: Host name of an exporter endpoint -> the collector there, or None.
        prometheus: The Prometheus config the mode runs.
        prometheus_where: Its file.
        rule_file: A ``rule_files`` entry of that config -> the file in this checkout.
        alertmanager: The Alertmanager config the mode runs.
        alertmanager_where: Its file.
    """

    mode: str
    services: Mapping[str, Mapping[str, str]]
    services_where: str
    entry: Collector
    resolve: Callable[[str], Collector | None]
    prometheus: Mapping[str, Any]
    prometheus_where: str
    rule_file: Callable[[str], Path]
    alertmanager: Mapping[str, Any]
    alertmanager_where: str


def rel(path: Path) -> str:
    """``path`` relative to the checkout, for messages and the docs."""
    try:
        return str(path.resolve().relative_to(_p("REPO_ROOT")))
    except ValueError:
        return str(path)


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DeploymentError(f"{rel(path)}: {exc}") from exc


def _rules_by_name(entry: str) -> Path:
    # Every mode mounts or copies deploy/prometheus/rules/ under some directory.
    rules: Path = _p("RULES_DIR")
    return rules / Path(entry).name


def _config_args(args: list[str]) -> list[str]:
    out = []
    for arg in args:
        if arg.startswith("--config="):
            out.append(arg.removeprefix("--config="))
    if not out:
        raise DeploymentError(f"no --config=... in collector arguments {args}")
    return out


def _image_files() -> dict[str, Path]:
    """Directories the collector image copies from the checkout: in-image path -> here."""
    out = {}
    for line in _p("COLLECTOR_DOCKERFILE").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "COPY" and parts[2].startswith("/"):
            out[parts[2].rstrip("/")] = _p("REPO_ROOT") / parts[1]
    return out


def _map_path(path: str, mounts: Mapping[str, Path], where: str) -> Path:
    for target, source in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
        if path == target:
            return source
        if path.startswith(target + "/"):
            return source / path[len(target) + 1 :]
    raise DeploymentError(f"{where}: {path} is not mounted from this checkout")


# --- local -------------------------------------------------------------------------


def local() -> Deployment:
    """``trading-otel up``: the stack's own launchers and the ``*.local.yml`` configs."""
    from trading_otel_tools.servers.collector import CollectorPorts, role_files
    from trading_otel_tools.stack import components
    from trading_otel_tools.stack.alerting import (
        ALERTMANAGER_LOCAL,
        ALERTMANAGER_PORT,
        PROMETHEUS_LOCAL,
        render_alertmanager_config,
        render_prometheus_config,
    )
    from trading_otel_tools.stack.config import StackConfig

    config = StackConfig.default()
    names = frozenset(c.name for c in components.COMPONENTS)
    collector = Collector("collector", tuple(role_files("local")), CollectorPorts.defaults().env())
    # The stack renders these two files with its own addresses; intervals are untouched.
    prometheus = render_prometheus_config({}, alertmanager=f"127.0.0.1:{ALERTMANAGER_PORT}")
    return Deployment(
        mode="local",
        services={
            name: components.service_env(config, name, names)
            for name in components.SERVICE_METRICS_PORTS
        },
        services_where=f"{rel(Path(components.__file__))}: `service_env`",
        entry=collector,
        resolve=lambda host: collector if host in {"127.0.0.1", "localhost"} else None,
        prometheus=prometheus,
        prometheus_where=rel(PROMETHEUS_LOCAL),
        rule_file=_rules_by_name,
        alertmanager=render_alertmanager_config(local_url("alert-receiver")),
        alertmanager_where=rel(ALERTMANAGER_LOCAL),
    )


# --- compose -----------------------------------------------------------------------

_COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _dotenv(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def compose_interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}``; ``$$`` is a ``$``."""
    marker = "\0"

    def sub(m: re.Match[str]) -> str:
        name, op, default = m.group(1), m.group(2), m.group(3)
        value = env.get(name)
        if op == ":-" and not value:
            return default
        if op == "-" and value is None:
            return default
        return value or ""

    return _COMPOSE_VAR.sub(sub, text.replace("$$", marker)).replace(marker, "$")


def _environment(svc: Mapping[str, Any]) -> dict[str, str]:
    raw = svc.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.partition("=")[::2] for item in raw)
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def _args(value: Any) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(a) for a in value or []]


def _compose_mounts(svc: Mapping[str, Any]) -> dict[str, Path]:
    mounts = {}
    for volume in svc.get("volumes") or []:
        source, _, rest = str(volume).partition(":")
        if source.startswith((".", "/")):
            mounts[rest.split(":", 1)[0].rstrip("/")] = (_p("COMPOSE_DIR") / source).resolve()
    return mounts


def _compose_flag(svc: Mapping[str, Any], flag: str, name: str) -> Path:
    for arg in _args(svc.get("command")):
        if arg.startswith(flag + "="):
            where = f"compose service {name}"
            return _map_path(arg.split("=", 1)[1], _compose_mounts(svc), where)
    raise DeploymentError(f"compose service {name} has no {flag}=")


def compose() -> Deployment:
    """``docker compose -f compose.yaml -f compose.observability.yaml up``."""
    dotenv = _dotenv(_p("COMPOSE_DIR") / ".env")
    svcs: dict[str, dict[str, Any]] = {}
    for path in _p("COMPOSE_FILES"):
        svcs.update(yaml.safe_load(compose_interpolate(path.read_text(), dotenv))["services"])

    def collector(name: str) -> Collector | None:
        svc = svcs.get(name)
        if svc is None or not any(a.startswith("--config=") for a in _args(svc.get("command"))):
            return None
        mounts = _compose_mounts(svc)
        files = [_map_path(p, mounts, name) for p in _config_args(_args(svc["command"]))]
        return Collector(name, tuple(files), _environment(svc))

    services = {
        name: env
        for name, svc in svcs.items()
        if "OTEL_EXPORTER_OTLP_ENDPOINT" in (env := _environment(svc))
    }
    if not services:
        raise DeploymentError("no compose service exports OTLP (OTEL_EXPORTER_OTLP_ENDPOINT)")
    hosts = {urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"]).hostname for env in services.values()}
    if len(hosts) != 1 or (entry := collector(str(hosts.pop()))) is None:
        raise DeploymentError("the compose services do not all send OTLP to one collector")
    prometheus = _compose_flag(svcs["prometheus"], "--config.file", "prometheus")
    alertmanager = _compose_flag(svcs["alertmanager"], "--config.file", "alertmanager")
    rules = _compose_mounts(svcs["prometheus"])
    return Deployment(
        mode="compose",
        services=services,
        services_where=f"{rel(_p('COMPOSE_FILES')[0])}: the services' `environment`",
        entry=entry,
        resolve=collector,
        prometheus=_yaml(prometheus),
        prometheus_where=rel(prometheus),
        rule_file=lambda entry: _map_path(entry, rules, "compose service prometheus"),
        alertmanager=_yaml(alertmanager),
        alertmanager_where=rel(alertmanager),
    )


# --- k8s ---------------------------------------------------------------------------


def _k8s_objects() -> Iterator[dict[str, Any]]:
    kustomization = _yaml(_p("K8S_DIR") / "kustomization.yaml")
    for name in kustomization["resources"]:
        yield from (d for d in yaml.safe_load_all((_p("K8S_DIR") / name).read_text()) if d)


def _k8s_collector(obj: Mapping[str, Any], generated: Mapping[str, list[str]]) -> Collector:
    pod = obj["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = dict(_image_files())
    for mount in container.get("volumeMounts", []):
        config_map = volumes.get(mount["name"], {}).get("configMap")
        if config_map and config_map["name"] in generated:
            # A generated ConfigMap: each file becomes a key named like the file.
            for file in generated[config_map["name"]]:
                target = f"{mount['mountPath'].rstrip('/')}/{Path(file).name}"
                mounts[target] = _p("K8S_DIR") / file
    name = f"{obj['metadata']['name']} ({obj['kind']})"
    files = [_map_path(p, mounts, name) for p in _config_args(container.get("args", []))]
    env = {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}
    return Collector(name, tuple(files), env)


def k8s() -> Deployment:
    """``kubectl apply -k deploy/k8s``: agent DaemonSet, gateway Deployment, and the
    services' env and Prometheus config shipped beside them."""
    kustomization = _yaml(_p("K8S_DIR") / "kustomization.yaml")
    generated = {g["name"]: g["files"] for g in kustomization.get("configMapGenerator", [])}
    objects = list(_k8s_objects())
    workloads = [o for o in objects if o["kind"] in {"DaemonSet", "Deployment"}]
    collectors = {id(o): _k8s_collector(o, generated) for o in workloads}
    # The services reach their node's agent on its hostPort ($(HOST_IP):4318).
    entries = [
        collectors[id(o)]
        for o in workloads
        if any(
            "hostPort" in p
            for c in o["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        )
    ]
    if len(entries) != 1:
        raise DeploymentError(f"expected one collector with a hostPort, found {len(entries)}")

    def resolve(host: str) -> Collector | None:
        # <service>.<namespace>.svc[...]: the Service's selector picks the workload.
        name = host.split(".", 1)[0]
        for svc in objects:
            if svc["kind"] == "Service" and svc["metadata"]["name"] == name:
                selector = svc["spec"].get("selector", {}).items()
                for o in workloads:
                    if selector <= o["spec"]["template"]["metadata"]["labels"].items():
                        return collectors[id(o)]
        return None

    config_map = _yaml(_p("K8S_SERVICES_ENV"))
    env = {str(k): str(v) for k, v in config_map["data"].items()}
    return Deployment(
        mode="k8s",
        services={"every service (envFrom)": env},
        services_where=f"{rel(_p('K8S_SERVICES_ENV'))}: ConfigMap {config_map['metadata']['name']}",
        entry=entries[0],
        resolve=resolve,
        prometheus=_yaml(_p("K8S_PROMETHEUS")),
        prometheus_where=rel(_p("K8S_PROMETHEUS")),
        rule_file=_rules_by_name,
        alertmanager=_yaml(_p("K8S_ALERTMANAGER")),
        alertmanager_where=rel(_p("K8S_ALERTMANAGER")),
    )


#: Every mode, in the order the docs list them.
MODES: dict[str, Callable[[], Deployment]] = {"local": local, "compose": compose, "k8s": k8s}
