"""Where the local stack lives and which ports it uses."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from trading_otel_tools import home
from trading_otel_tools.procs import free_port

#: The documented local ports (docs/local-stack.md, ARCHITECTURE "Local ports").
DEFAULT_PORTS: dict[str, int] = {
    "orchestrator": 8001,
    "execution-gateway": 8002,
    "signal-service": 8003,
    "market-data": 8004,
    "broker-simulator": 8005,
    "postgres": 5432,
    "redis": 6379,
    "otlp-grpc": 4317,
    "otlp-http": 4318,
    "collector-telemetry": 8888,
    "collector-prometheus": 8889,
    "collector-health": 13133,
    "prometheus": 9090,
    "alertmanager": 9093,
    "alert-receiver": 9095,
    # Each service's direct Prometheus endpoint (scraped for liveness by Prometheus).
    "orchestrator-metrics": 9401,
    "execution-gateway-metrics": 9402,
    "signal-service-metrics": 9403,
    "market-data-metrics": 9404,
}


@dataclass(frozen=True)
class StackConfig:
    """One local stack: its directory (``var/``) and its ports.

    Args:
        var_dir: Data, logs (``log/``), telemetry files and the state file live here.
        ports: Port by component key (see :data:`DEFAULT_PORTS`).
        only: Start only these components (names as in ``trading-otel status``);
            None means every component whose prerequisites are present.
        ready_timeout_s: How long one component may take to become ready.
        rules_dir: Prometheus rule files to load instead of ``deploy/prometheus/rules``
            (the fault matrix loads a profile with shortened ``for:``).
        extra_targets: ``(job, "host:port")`` pairs Prometheus scrapes besides the
            stack's own targets (e.g. a gateway-role collector beside the stack).
        api_key: When set, the services require it (``TRADING_OTEL_API_KEYS``) and
            ``run_load`` sends it; None leaves the API open, as a laptop stack is.
    """

    var_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    only: tuple[str, ...] | None = None
    ready_timeout_s: float = 60.0
    rules_dir: Path | None = None
    extra_targets: tuple[tuple[str, str], ...] = ()
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def default(cls, var_dir: Path | None = None) -> StackConfig:
        """The stack under ``<checkout>/var`` on the documented ports."""
        return cls(var_dir or home.checkout().var)

    def with_free_ports(self) -> StackConfig:
        """A copy on fresh free ports (tests: never collide with a running stack)."""
        return replace(self, ports={k: free_port() for k in self.ports})

    def port(self, key: str) -> int:
        try:
            return self.ports[key]
        except KeyError:
            raise KeyError(f"no port configured for {key!r}") from None

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def state_path(self) -> Path:
        return self.var_dir / "stack.json"

    @property
    def telemetry_dir(self) -> Path:
        return self.var_dir / "telemetry"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.port('redis')}/0"

    @property
    def pg_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port('postgres')}/trading"

    def auth_headers(self) -> dict[str, str]:
        """The header the stack's API wants (empty when it is open)."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"
