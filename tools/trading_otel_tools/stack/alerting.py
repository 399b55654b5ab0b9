"""The alerting half of the local stack: configs rendered for real ports, and launchers.

``deploy/prometheus/prometheus.local.yml`` and ``deploy/alertmanager/alertmanager.local.yml``
are the source of truth; these functions load them and only swap addresses, rule paths and
the runbook base URL, so the stack and the tests run exactly the rules and routes that are
shipped.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from trading_otel_tools import home
from trading_otel_tools.ports import TOOL_PORTS
from trading_otel_tools.procs import ManagedProcess, ServerError, http_probe
from trading_otel_tools.servers.alertmanager import AlertmanagerServer
from trading_otel_tools.servers.prometheus import PrometheusServer

_LAZY: dict[str, Callable[[home.Checkout], Path]] = {
    "DEPLOY_DIR": lambda c: c.deploy,
    "PROMETHEUS_LOCAL": lambda c: c.prometheus_local,
    "ALERTMANAGER_LOCAL": lambda c: c.alertmanager_local,
    "RULES_DIR": lambda c: c.rules_dir,
}


def __getattr__(name: str) -> Path:
    # The checkout's paths are resolved when read (trading_otel_tools.home), never at import.
    if name in _LAZY:
        return _LAZY[name](home.checkout())
    raise AttributeError(name)


#: Default ports of the alerting components in the local stack.
PROMETHEUS_PORT = TOOL_PORTS["prometheus"]
ALERTMANAGER_PORT = TOOL_PORTS["alertmanager"]
RECEIVER_PORT = TOOL_PORTS["alert-receiver"]


def local_runbook_base(receiver_port: int = RECEIVER_PORT) -> str:
    """The ``runbook_base_url`` of a local stack: its receiver serves ``docs/runbooks/``."""
    return f"http://127.0.0.1:{receiver_port}/runbooks"


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ServerError(f"{path} is missing: run from a checkout of trading-otel")
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def render_prometheus_config(
    targets: Mapping[str, str | Sequence[str] | None],
    alertmanager: str | None,
    rules_dir: Path | None = None,
    runbook_base: str | None = None,
) -> dict[str, Any]:
    """``prometheus.local.yml`` with its scrape targets replaced.

    Args:
        targets: ``{job_name: "host:port"}`` (or several addresses) for jobs of the local
            config; ``None`` removes
            the job (e.g. services not running their direct Prometheus endpoint). Jobs not
            named keep their default targets.
        alertmanager: ``host:port`` of Alertmanager, or ``None`` for no alerting.
        rules_dir: Where ``recording.yml`` and ``alerts.yml`` are.
        runbook_base: The external label ``runbook_base_url`` that every alert's
            ``runbook_url`` starts with (see :func:`local_runbook_base`); ``None`` keeps
            the file's value.

    Raises:
        ValueError: when ``targets`` names a job the local config does not have.
    """
    doc = copy.deepcopy(_load(home.checkout().prometheus_local))
    jobs = {job["job_name"]: job for job in doc["scrape_configs"]}
    unknown = set(targets) - set(jobs)
    if unknown:
        raise ValueError(f"unknown scrape job(s) {sorted(unknown)}; known: {sorted(jobs)}")
    kept = []
    for job in doc["scrape_configs"]:
        name = job["job_name"]
        if name in targets:
            address = targets[name]
            if address is None:
                continue
            addresses = [address] if isinstance(address, str) else list(address)
            job["static_configs"] = [{"targets": addresses}]
        kept.append(job)
    doc["scrape_configs"] = kept
    rules_dir = rules_dir or home.checkout().rules_dir
    doc["rule_files"] = [str(rules_dir / Path(p).name) for p in doc["rule_files"]]
    if alertmanager is None:
        doc.pop("alerting", None)
    else:
        doc["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    if runbook_base is not None:
        doc["global"].setdefault("external_labels", {})["runbook_base_url"] = runbook_base
    return doc


def render_alertmanager_config(receiver_url: str) -> dict[str, Any]:
    """``alertmanager.local.yml`` with every webhook pointed at ``receiver_url``.

    The channel part of each URL path (``/alerts/paging``...) is kept.
    """
    doc = copy.deepcopy(_load(home.checkout().alertmanager_local))
    base = receiver_url.rstrip("/")
    for receiver in doc["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = base + urlsplit(hook["url"]).path
    return doc


def receiver_process(
    root: Path,
    port: int,
    archive_dir: Path,
    prometheus: str | None = None,
    telemetry_dir: Path | None = None,
) -> ManagedProcess:
    """``trading-otel alerts receiver`` as a managed process (not started yet).

    With ``prometheus`` and ``telemetry_dir`` (the stack's), latency alerts are diagnosed
    from them; without, the receiver only archives.
    """
    diagnosis = (
        ["--prometheus", prometheus, "--telemetry-dir", str(telemetry_dir)]
        if prometheus and telemetry_dir
        else ["--no-diagnosis"]
    )
    return ManagedProcess(
        name="alert-receiver",
        argv=[
            sys.executable,
            "-m",
            "trading_otel_tools.alerts",
            "--port",
            str(port),
            "--dir",
            str(archive_dir),
            *diagnosis,
        ],
        log_path=root / "alert-receiver.log",
        ready=http_probe(f"http://127.0.0.1:{port}/-/healthy"),
        ports=(port,),
    )


@dataclass
class AlertingStack:
    """Prometheus (our rules), Alertmanager (local routes) and the archive receiver.

    Args:
        root: Directory for configs, data and logs (``var/stack`` or a test temp dir).
        archive_dir: Where the receiver writes ``<date>.jsonl`` (``var/alerts``).
        targets: Scrape targets by job, see :func:`render_prometheus_config`.
        prometheus_port, alertmanager_port, receiver_port: Listen ports.
    """

    root: Path
    archive_dir: Path
    targets: Mapping[str, str | None]
    prometheus_port: int = PROMETHEUS_PORT
    alertmanager_port: int = ALERTMANAGER_PORT
    receiver_port: int = RECEIVER_PORT
    receiver: ManagedProcess | None = field(default=None, init=False)
    alertmanager: AlertmanagerServer | None = field(default=None, init=False)
    prometheus: PrometheusServer | None = field(default=None, init=False)

    def start(self, timeout: float = 30.0) -> AlertingStack:
        """Start receiver, then Alertmanager, then Prometheus; stop all on any failure."""
        try:
            self.receiver = receiver_process(
                self.root / "alert-receiver", self.receiver_port, self.archive_dir
            ).start(timeout)
            self.alertmanager = AlertmanagerServer(
                self.root / "alertmanager",
                self.alertmanager_port,
                render_alertmanager_config(f"http://127.0.0.1:{self.receiver_port}"),
            ).start(timeout)
            targets: dict[str, str | None] = {
                "prometheus": f"127.0.0.1:{self.prometheus_port}",
                "alertmanager": f"127.0.0.1:{self.alertmanager_port}",
            }
            targets.update(self.targets)
            self.prometheus = PrometheusServer(
                self.root / "prometheus",
                self.prometheus_port,
                render_prometheus_config(
                    targets,
                    f"127.0.0.1:{self.alertmanager_port}",
                    runbook_base=local_runbook_base(self.receiver_port),
                ),
            ).start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop what this object started, in reverse order."""
        for part in (self.prometheus, self.alertmanager, self.receiver):
            if part is not None:
                part.stop()
