"""Each wait on the alerting path, read from one deployment mode's files.

A stage is an interval that can hold a change back: the SDK export, a collector's batch,
the Prometheus scrape, the rule evaluation (and any query offset), and Alertmanager's
``group_wait``. Each function reads its value where the mode sets it and says where that
is; an upstream default is used, and named as such, only where a file leaves a key out.
:mod:`trading_otel_tools.alerts.latency` adds them up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from otel import Settings
from trading_otel_tools.alerts.deployments import Collector, Deployment, DeploymentError, rel
from trading_otel_tools.alerts.routing import reached
from trading_otel_tools.collector import config as collector_config

#: The scrape job that carries the trading_* series (the collector's Prometheus exporter).
EXPORTER_JOB = "otel-collector-exporter"

# Upstream defaults, used only where a config leaves the key out.
_BATCH_TIMEOUT_DEFAULT = "200ms"  # collector batch processor
_PROMETHEUS_DEFAULT = "1m"  # scrape_interval and evaluation_interval

_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_UNIT_S |= {"d": 86400.0, "w": 7 * 86400.0, "y": 365 * 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_DURATION = re.compile(rf"(?:{_PART.pattern})+")


def parse_duration(value: object) -> float:
    """Seconds in a Prometheus or Go duration: ``15s``, ``1m30s``, ``500ms``, ``0``.

    Raises:
        ValueError: ``value`` is not a duration.
    """
    text = str(value).strip()
    if isinstance(value, bool) or not (text == "0" or _DURATION.fullmatch(text)):
        raise ValueError(f"not a duration: {value!r}")
    return sum(float(n) * _UNIT_S[unit] for n, unit in _PART.findall(text))


@dataclass(frozen=True)
class Stage:
    """One wait on the way: what it is, its worst case, and where it is set."""

    what: str
    seconds: float
    where: str


@dataclass(frozen=True)
class Route:
    """Where Alertmanager sends an alert of one severity, and how long it waits first."""

    severity: str
    receiver: str
    group_wait: Stage
    group_interval_s: float


def export_stage(dep: Deployment) -> Stage:
    """The slowest service's metric export interval, as the library parses it."""
    worst: tuple[float, str | None] | None = None
    for env in dep.services.values():
        ms = Settings.from_env(env).metric_export_interval_ms
        if worst is None or ms > worst[0]:
            worst = (ms, env.get("OTEL_METRIC_EXPORT_INTERVAL"))
    if worst is None:
        raise DeploymentError(f"{dep.mode}: no service environment found")
    ms, raw = worst
    setting = "unset (SDK default)" if raw is None else f"= {raw}"
    return Stage(
        "SDK metric export interval",
        ms / 1000,
        f"{dep.services_where}, `OTEL_METRIC_EXPORT_INTERVAL` {setting}",
    )


def _ctype(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def _host(endpoint: str) -> str:
    return urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname or ""


def _collector_paths(
    collector: Collector, resolve: Callable[[str], Collector | None], seen: tuple[str, ...] = ()
) -> list[tuple[list[Stage], str]]:
    """Every way OTLP metrics cross ``collector`` (and what it forwards to), each with the
    endpoint of the Prometheus exporter it ends at."""
    if collector.name in seen:
        raise DeploymentError(f"collector loop: {' -> '.join((*seen, collector.name))}")
    cfg = collector_config.load(collector.files, collector.env)
    paths: list[tuple[list[Stage], str]] = []
    for name, pipe in (cfg.get("service", "pipelines") or {}).items():
        if _ctype(name) != "metrics" or "otlp" not in map(_ctype, pipe.get("receivers") or []):
            continue  # host metrics and span metrics do not carry the services' series
        stages = []
        for proc in pipe.get("processors") or []:
            if _ctype(proc) == "batch":
                timeout = cfg.get("processors", proc, "timeout")
                file = rel(cfg.where("processors", proc, "timeout").file)
                stages.append(
                    Stage(
                        f"collector `{proc}`, {collector.name}",
                        parse_duration(_BATCH_TIMEOUT_DEFAULT if timeout is None else timeout),
                        f"{file}: `processors.{proc}.timeout`",
                    )
                )
        for exporter in pipe.get("exporters") or []:
            endpoint = str((cfg.get("exporters", exporter) or {}).get("endpoint", ""))
            if _ctype(exporter) == "prometheus":
                paths.append((stages, endpoint))
            elif _ctype(exporter).startswith("otlp"):
                following = resolve(_host(endpoint))
                if following is None:
                    raise DeploymentError(
                        f"{collector.name}: {exporter} sends to {endpoint}, no collector of "
                        "this mode"
                    )
                for rest, end in _collector_paths(following, resolve, (*seen, collector.name)):
                    paths.append(([*stages, *rest], end))
            # prometheus_remote_write delivers as soon as the batch leaves: never the worst.
    return paths


def collector_stages(dep: Deployment) -> tuple[list[Stage], str]:
    """The slowest path from the services' collector to a Prometheus exporter."""
    paths = _collector_paths(dep.entry, dep.resolve)
    if not paths:
        raise DeploymentError(f"{dep.mode}: no metrics pipeline ends at a Prometheus exporter")
    return max(paths, key=lambda p: sum(s.seconds for s in p[0]))


def _port(address: str) -> str:
    return address.rsplit(":", 1)[-1]


def scrape_stage(dep: Deployment, exporter_endpoint: str) -> Stage:
    """The scrape interval of the job that reads the collector's exporter."""
    jobs = {j["job_name"]: j for j in dep.prometheus.get("scrape_configs") or []}
    job = jobs.get(EXPORTER_JOB)
    if job is None:
        raise DeploymentError(f"{dep.prometheus_where}: no scrape job {EXPORTER_JOB}")
    ports = {_port(t) for s in job.get("static_configs") or [] for t in s.get("targets", [])}
    ports |= {str(s["port"]) for s in job.get("dns_sd_configs") or [] if "port" in s}
    if ports and ports != {_port(exporter_endpoint)}:
        raise DeploymentError(
            f"{dep.prometheus_where}: job {EXPORTER_JOB} scrapes port(s) {sorted(ports)}, the "
            f"collector's exporter listens on {exporter_endpoint}"
        )
    what = f"Prometheus scrape, job `{EXPORTER_JOB}`"
    if "scrape_interval" in job:
        return Stage(
            what,
            parse_duration(job["scrape_interval"]),
            f"{dep.prometheus_where}: job `scrape_interval`",
        )
    return _global(dep, "scrape_interval", what)


def _global(dep: Deployment, key: str, what: str) -> Stage:
    value = (dep.prometheus.get("global") or {}).get(key)
    if value is None:
        return Stage(
            what,
            parse_duration(_PROMETHEUS_DEFAULT),
            f"{dep.prometheus_where}: `{key}` unset (Prometheus default)",
        )
    return Stage(what, parse_duration(value), f"{dep.prometheus_where}: `global.{key}`")


def rule_groups(dep: Deployment) -> list[tuple[Path, dict[str, Any]]]:
    """Every rule group of the mode's rule files, with the file it is in."""
    out = []
    for entry in dep.prometheus.get("rule_files") or []:
        path = dep.rule_file(str(entry))
        doc = yaml.safe_load(path.read_text()) or {}
        out += [(path, group) for group in doc.get("groups") or []]
    return out


def _group_interval(dep: Deployment, path: Path, group: Mapping[str, Any], what: str) -> Stage:
    if "interval" in group:
        where = f"{rel(path)}: `interval` of group {group['name']}"
        return Stage(what, parse_duration(group["interval"]), where)
    return _global(dep, "evaluation_interval", what)


def query_offset(dep: Deployment) -> Stage | None:
    """The largest ``query_offset`` of an alert group (Prometheus 2.53+), if any is set:
    rules then read data that old, so every alert waits that much longer."""
    offsets = []
    default = (dep.prometheus.get("global") or {}).get("rule_query_offset")
    for path, group in rule_groups(dep):
        if any("alert" in r for r in group.get("rules") or []):
            if "query_offset" in group:
                where = f"{rel(path)}: `query_offset` of group {group['name']}"
                offsets.append(
                    Stage("rule query offset", parse_duration(group["query_offset"]), where)
                )
            elif default is not None:
                offsets.append(
                    Stage(
                        "rule query offset",
                        parse_duration(default),
                        f"{dep.prometheus_where}: `global.rule_query_offset`",
                    )
                )
    worst = max(offsets, key=lambda st: st.seconds, default=None)
    return worst if worst is not None and worst.seconds > 0 else None


def evaluation(dep: Deployment) -> tuple[Stage, Stage | None, list[dict[str, Any]]]:
    """The slowest alert group's interval, the slowest recording group's, and the alerts."""
    groups = rule_groups(dep)
    alerts = [r for _, g in groups for r in g.get("rules") or [] if "alert" in r]
    alerting = [
        _group_interval(dep, p, g, "rule evaluation")
        for p, g in groups
        if any("alert" in r for r in g.get("rules") or [])
    ]
    recording = [
        _group_interval(dep, p, g, "recording rule evaluation (alerts reading a recorded series)")
        for p, g in groups
        if any("record" in r for r in g.get("rules") or [])
    ]
    if not alerting:
        raise DeploymentError(f"{dep.prometheus_where}: its rule files hold no alert")
    return (
        max(alerting, key=lambda s: s.seconds),
        max(recording, key=lambda s: s.seconds) if recording else None,
        alerts,
    )


# --- Alertmanager ------------------------------------------------------------------


def routes(dep: Deployment, severities: Sequence[str]) -> list[Route]:
    """Each receiver an alert of each severity reaches, with its group_wait."""
    out = []
    for severity in severities:
        try:
            found = reached(dep.alertmanager["route"], {"severity": severity})
        except (KeyError, ValueError) as exc:
            raise DeploymentError(f"{dep.alertmanager_where}: {exc}") from exc
        for r in found:
            wait = Stage(
                "Alertmanager `group_wait`",
                parse_duration(r.group_wait),
                f"{dep.alertmanager_where}: {r.group_wait_from}",
            )
            out.append(Route(severity, r.receiver, wait, parse_duration(r.group_interval)))
    return out
