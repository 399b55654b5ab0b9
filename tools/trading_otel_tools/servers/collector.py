"""Launch our built collector (``bin/otelcol-trading``) with one or more ``--config`` files.

Used by the local stack and by tests. Every port the shipped configs open is set through
its ``TRADING_OTEL_*`` variable, so a test collector never touches the stack's ports;
readiness is the health_check extension answering on its own port.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trading_otel_tools import home
from trading_otel_tools.collector.build import binary_path
from trading_otel_tools.ports import TOOL_PORTS
from trading_otel_tools.procs import ManagedProcess, ServerError, free_port, http_probe

#: The shipped configs: the base plus the overlays each role is run with, in order.
ROLES: dict[str, tuple[str, ...]] = {
    "local": ("common.yaml", "local.yaml"),
    "agent": ("common.yaml", "agent.yaml"),
    "gateway": ("common.yaml", "gateway.yaml"),
    "gateway-remote-write": ("common.yaml", "gateway.yaml", "remote-write.yaml"),
}


def role_files(role: str) -> list[Path]:
    """The ``--config`` files of a shipped role (``local``, ``agent``, ``gateway``...)."""
    try:
        return [home.path("collector", "config", name) for name in ROLES[role]]
    except KeyError:
        raise ValueError(f"unknown collector role {role!r}; known: {', '.join(ROLES)}") from None


@dataclass(frozen=True)
class CollectorPorts:
    """The ports a shipped config listens on."""

    otlp_grpc: int
    otlp_http: int
    health: int
    telemetry: int
    prometheus: int

    @classmethod
    def free(cls) -> CollectorPorts:
        """Fresh free ports, for tests."""
        return cls(free_port(), free_port(), free_port(), free_port(), free_port())

    @classmethod
    def defaults(cls) -> CollectorPorts:
        """The local stack's documented ports (:data:`trading_otel_tools.ports.TOOL_PORTS`)."""
        p = TOOL_PORTS
        return cls(
            p["otlp-grpc"],
            p["otlp-http"],
            p["collector-health"],
            p["collector-telemetry"],
            p["collector-prometheus"],
        )

    def env(self, host: str = "127.0.0.1") -> dict[str, str]:
        """The variables that put a shipped config on these ports."""
        return {
            "TRADING_OTEL_OTLP_GRPC_ENDPOINT": f"{host}:{self.otlp_grpc}",
            "TRADING_OTEL_OTLP_HTTP_ENDPOINT": f"{host}:{self.otlp_http}",
            "TRADING_OTEL_COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{self.health}",
            "TRADING_OTEL_COLLECTOR_TELEMETRY_HOST": "127.0.0.1",
            "TRADING_OTEL_COLLECTOR_TELEMETRY_PORT": str(self.telemetry),
            "TRADING_OTEL_COLLECTOR_PROMETHEUS_ENDPOINT": f"127.0.0.1:{self.prometheus}",
        }


@dataclass
class CollectorServer:
    """One collector process of ours.

    Args:
        root: Directory for its log, telemetry files (``telemetry/``) and queue (``queue/``).
        configs: ``--config`` files, merged in order (see :func:`role_files`).
        env: Extra ``TRADING_OTEL_*`` settings (exporter endpoints, sampling...); they win
            over the port variables.
        ports: Where it listens; fresh free ports by default.
        name: Used for the log file name and in errors.
        binary: The collector binary (``trading-otel collector build`` makes it).
    """

    root: Path
    configs: Sequence[Path]
    env: Mapping[str, str] = field(default_factory=dict)
    ports: CollectorPorts = field(default_factory=CollectorPorts.free)
    name: str = "collector"
    binary: Path = field(default_factory=binary_path)
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def telemetry_dir(self) -> Path:
        return self.root / "telemetry"

    @property
    def queue_dir(self) -> Path:
        return self.root / "queue"

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.ports.otlp_grpc}"

    @property
    def otlp_http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.otlp_http}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}/metrics"

    @property
    def telemetry_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.telemetry}/metrics"

    def full_env(self) -> dict[str, str]:
        """Everything this collector's configs read from the environment."""
        env = self.ports.env()
        env["TRADING_OTEL_TELEMETRY_DIR"] = str(self.telemetry_dir)
        env["TRADING_OTEL_COLLECTOR_QUEUE_DIR"] = str(self.queue_dir)
        env.update(self.env)
        return env

    def start(self, timeout: float = 30.0) -> CollectorServer:
        """Start the collector and wait until its health check says it is ready.

        Raises:
            ServerError: The binary is missing, a port is taken, or it exits or stays
                unready (the message carries the log's tail).
        """
        if not self.binary.is_file():
            raise ServerError(
                f"{self.binary} is missing; build it with `trading-otel collector build`"
            )
        self.telemetry_dir.mkdir(parents=True, exist_ok=True)
        self.queue_dir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            name=self.name,
            argv=[str(self.binary), *(f"--config={Path(c).resolve()}" for c in self.configs)],
            log_path=self.log_path,
            ready=http_probe(f"http://127.0.0.1:{self.ports.health}/"),
            env=self.full_env(),
            cwd=self.root,
            ports=(self.ports.otlp_grpc, self.ports.otlp_http, self.ports.health),
        )
        self.process.start(timeout)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the process we started (SIGTERM lets it flush and persist its queue)."""
        if self.process is not None:
            self.process.stop(timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()
