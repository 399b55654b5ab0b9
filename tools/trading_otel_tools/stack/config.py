"""Where the local stack lives and which ports it uses."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from trading_otel_tools import home
from trading_otel_tools.ports import default_ports
from trading_otel_tools.procs import free_port


@dataclass(frozen=True)
class StackConfig:
    """One local stack: its directory (``var/``) and its ports.

    Args:
        var_dir: Data, logs (``log/``), telemetry files and the state file live here.
        ports: Port by component key (see :func:`trading_otel_tools.ports.default_ports`).
        only: Start only these components (names as in ``trading-otel status``);
            None means every component whose prerequisites are present.
        ready_timeout_s: How long one component may take to become ready.
        rules_dir: Prometheus rule files to load instead of ``deploy/prometheus/rules``
            (the fault matrix loads a profile with shortened ``for:``).
        extra_targets: ``(job, "host:port")`` pairs Prometheus scrapes besides the
            stack's own targets (e.g. a gateway-role collector beside the stack).
        service_env: ``(VAR, value)`` pairs set in every service's environment on top of
            the stack's own (benchmarks: e.g. the previous metric export interval).
        api_key: When set, the services require it (``TRADING_OTEL_API_KEYS``) and
            ``run_load`` sends it; None leaves the API open, as a laptop stack is.
    """

    var_dir: Path
    ports: dict[str, int] = field(default_factory=default_ports)
    only: tuple[str, ...] | None = None
    ready_timeout_s: float = 60.0
    rules_dir: Path | None = None
    extra_targets: tuple[tuple[str, str], ...] = ()
    service_env: tuple[tuple[str, str], ...] = ()
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
