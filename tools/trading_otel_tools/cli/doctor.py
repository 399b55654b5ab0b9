"""``trading-otel doctor``: check that this machine can run the local stack and the tests."""

from __future__ import annotations

import glob
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from trading_otel_tools import home
from trading_otel_tools.collector.build import is_current
from trading_otel_tools.ports import TOOL_PORTS, default_ports
from trading_otel_tools.procs import port_in_use

#: How the doctor names each local-stack port; a taken port is only a warning, because it
#: may be our own running stack.
_LABELS: dict[str, str] = {
    "otlp-grpc": "collector OTLP gRPC",
    "otlp-http": "collector OTLP HTTP",
    "collector-prometheus": "collector Prometheus exporter",
    "collector-telemetry": "collector own telemetry",
    "collector-health": "collector health",
    "prometheus": "Prometheus",
    "alertmanager": "Alertmanager",
    "postgres": "Postgres",
    "redis": "Redis",
}


def stack_ports(checkout: bool) -> dict[str, int]:
    """The ports to look at: every documented one in a checkout, else the tooling's own."""
    ports = default_ports() if checkout else dict(TOOL_PORTS)
    services = set(ports) - set(TOOL_PORTS) - {"postgres", "redis"}
    return {_LABELS.get(k, k): p for k, p in ports.items() if k in _LABELS or k in services}


#: Binaries from Debian packages, with the package that provides each.
BINARIES: dict[str, str] = {
    "redis-server": "redis-server",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "go": "golang-go",
    "wrk": "wrk",
}


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str


def run_checks(root: Path | None = None) -> list[Check]:
    """Run every check and return the results; never raises."""
    root = root or home.find_home()
    checks: list[Check] = []
    py_ok = sys.version_info >= (3, 11)
    checks.append(Check("python", "ok" if py_ok else "fail", sys.version.split()[0]))
    for binary, package in BINARIES.items():
        found = shutil.which(binary)
        detail = found or f"missing: apt-get install {package} (make test installs it)"
        checks.append(Check(binary, "ok" if found else "fail", detail))
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    checks.append(
        Check(
            "postgres (initdb)",
            "ok" if initdb else "fail",
            initdb[-1] if initdb else "missing: apt-get install postgresql",
        )
    )
    if root is None:
        detail = f"none found from {Path.cwd()}: pass --repo DIR or set {home.ENV_VAR}"
        checks.append(Check("checkout", "warn", detail))
    else:
        checks.append(_collector_check(root))
    for name, port in stack_ports(root is not None).items():
        taken = port_in_use(port)
        checks.append(
            Check(
                f"port {port} ({name})",
                "warn" if taken else "ok",
                "in use (our running stack, or another process)" if taken else "free",
            )
        )
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        checks.append(Check("OTEL_SDK_DISABLED", "warn", "true: services emit no telemetry"))
    return checks


def _collector_check(root: Path) -> Check:
    binary = root / "bin" / "otelcol-trading"
    if not binary.exists():
        return Check("collector", "fail", "bin/otelcol-trading missing: make collector")
    if not is_current(root / "collector" / "manifest.yaml", binary):
        return Check("collector", "warn", "built from another manifest: make collector")
    return Check("collector", "ok", str(binary))


def register(app: typer.Typer) -> None:
    """Add ``doctor`` to the top-level app."""

    @app.command()
    def doctor() -> None:
        """Check binaries, the collector build and the stack's ports on this machine."""
        console = Console()
        table = Table(title="trading-otel doctor")
        for col in ("check", "status", "detail"):
            table.add_column(col)
        colour = {"ok": "green", "warn": "yellow", "fail": "red"}
        checks = run_checks()
        for c in checks:
            table.add_row(c.name, f"[{colour[c.status]}]{c.status}[/]", c.detail)
        console.print(table)
        failed = [c for c in checks if c.status == "fail"]
        if failed:
            console.print(f"[red]{len(failed)} check(s) failed[/]")
            raise typer.Exit(1)
        console.print("[green]ready[/]")
