"""The stack as an ordered list of components: name, ports, start, ready check, stop signal.

To add a server, write one :class:`Component` (usually a few lines around its launcher in
``tools/trading_otel_tools/servers/``) and put it in :data:`COMPONENTS` after what it depends on.
Components with the same ``wave`` start concurrently; waves start in order.
"""

from __future__ import annotations

import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

from trading_otel_tools import home
from trading_otel_tools.procs import ManagedProcess, http_ok, port_in_use
from trading_otel_tools.stack.config import StackConfig

Launch = Callable[[StackConfig, frozenset[str]], ManagedProcess]


@dataclass(frozen=True)
class Component:
    """One process of the local stack.

    Attributes:
        name: Shown by ``status``; also the key of its log file and state entry.
        port_keys: Keys into :attr:`StackConfig.ports` it listens on.
        launch: Starts it, waits until ready and returns the running process. Gets the
            config and the names of every component in this stack (e.g. the services
            only export OTLP when the collector is part of it).
        ready: Readiness probe, used by ``status``.
        missing: Returns why the component cannot run here (binary not built or not
            installed), or None. A missing optional component is skipped with a note.
        wave: Start order; components of one wave start concurrently.
        stop_signal: Signal for a clean stop (Postgres wants SIGINT, "fast" shutdown).
    """

    name: str
    port_keys: tuple[str, ...]
    launch: Launch
    ready: Callable[[StackConfig], bool]
    missing: Callable[[], str | None] = lambda: None
    wave: int = 0
    stop_signal: int = signal.SIGTERM

    def ports(self, config: StackConfig) -> list[int]:
        return [config.port(k) for k in self.port_keys]


# --- data stores -------------------------------------------------------------------


def _postgres(config: StackConfig, _: frozenset[str]) -> ManagedProcess:
    from trading_otel_tools.servers.postgres import PostgresServer

    server = PostgresServer(config.var_dir / "postgres", config.port("postgres"))
    server.start(config.ready_timeout_s)
    assert server.process is not None
    return server.process


def _pg_ready(config: StackConfig) -> bool:
    from trading_otel_tools.servers.postgres import PostgresServer

    return PostgresServer(config.var_dir / "postgres", config.port("postgres"))._ready()


def _pg_missing() -> str | None:
    from trading_otel_tools.procs import ServerError
    from trading_otel_tools.servers.postgres import pg_bindir

    try:
        pg_bindir()
    except ServerError as exc:
        return str(exc)
    return None


def _redis(config: StackConfig, _: frozenset[str]) -> ManagedProcess:
    from trading_otel_tools.servers.redis import RedisServer

    server = RedisServer(config.var_dir / "redis", config.port("redis"))
    server.start(config.ready_timeout_s)
    assert server.process is not None
    return server.process


def _which(binary: str) -> Callable[[], str | None]:
    return lambda: None if shutil.which(binary) else f"{binary} is not installed"


# --- telemetry backends --------------------------------------------------------------


def _collector_ports(config: StackConfig) -> object:
    from trading_otel_tools.servers.collector import CollectorPorts

    return CollectorPorts(
        config.port("otlp-grpc"), config.port("otlp-http"), config.port("collector-health"),
        config.port("collector-telemetry"), config.port("collector-prometheus"),
    )  # fmt: skip


def _collector(config: StackConfig, _: frozenset[str]) -> ManagedProcess:
    from trading_otel_tools.servers.collector import CollectorPorts, CollectorServer, role_files

    ports = _collector_ports(config)
    assert isinstance(ports, CollectorPorts)
    config.telemetry_dir.mkdir(parents=True, exist_ok=True)
    server = CollectorServer(
        config.var_dir / "collector",
        role_files("local"),
        env={"TRADING_OTEL_TELEMETRY_DIR": str(config.telemetry_dir)},
        ports=ports,
    )
    server.start(config.ready_timeout_s)
    assert server.process is not None
    return server.process


def _collector_missing() -> str | None:
    from trading_otel_tools.collector.build import binary_path

    return None if binary_path().is_file() else "collector not built (trading-otel collector build)"


def _alert_receiver(config: StackConfig, _: frozenset[str]) -> ManagedProcess:
    from trading_otel_tools.stack.alerting import receiver_process

    proc = receiver_process(
        config.var_dir / "alert-receiver",
        config.port("alert-receiver"),
        config.var_dir / "alerts",
        prometheus=config.url("prometheus"),
        telemetry_dir=config.telemetry_dir,
    )
    return proc.start(config.ready_timeout_s)


def _alertmanager(config: StackConfig, _: frozenset[str]) -> ManagedProcess:
    from trading_otel_tools.servers.alertmanager import AlertmanagerServer
    from trading_otel_tools.stack.alerting import render_alertmanager_config

    server = AlertmanagerServer(
        config.var_dir / "alertmanager",
        config.port("alertmanager"),
        render_alertmanager_config(f"http://127.0.0.1:{config.port('alert-receiver')}"),
    )
    server.start(config.ready_timeout_s)
    assert server.process is not None
    return server.process


def _prometheus(config: StackConfig, names: frozenset[str]) -> ManagedProcess:
    from trading_otel_tools.servers.prometheus import PrometheusServer
    from trading_otel_tools.stack.alerting import (
        local_runbook_base,
        render_prometheus_config,
    )

    def target(key: str, component: str) -> str | None:
        return f"127.0.0.1:{config.port(key)}" if component in names else None

    targets: dict[str, str | None] = {
        "prometheus": f"127.0.0.1:{config.port('prometheus')}",
        "alertmanager": target("alertmanager", "alertmanager"),
        "otel-collector-exporter": target("collector-prometheus", "collector"),
        "otel-collector": target("collector-telemetry", "collector"),
    }
    for service in SERVICE_METRICS_PORTS:
        targets[service] = target(f"{service}-metrics", service)
    scraped: dict[str, str | list[str] | None] = dict(targets)
    for job, address in config.extra_targets:
        known = scraped.get(job)
        scraped[job] = ([known] if isinstance(known, str) else known or []) + [address]
    alerting = f"127.0.0.1:{config.port('alertmanager')}" if "alertmanager" in names else None
    server = PrometheusServer(
        config.var_dir / "prometheus",
        config.port("prometheus"),
        render_prometheus_config(
            scraped,
            alerting,
            config.rules_dir,
            runbook_base=local_runbook_base(config.port("alert-receiver")),
        ),
    )
    server.start(config.ready_timeout_s)
    assert server.process is not None
    return server.process


# --- the services ------------------------------------------------------------------

#: Services that run a direct Prometheus endpoint (scraped by Prometheus for liveness).
SERVICE_METRICS_PORTS = ("orchestrator", "execution-gateway", "signal-service", "market-data")


def service_env(config: StackConfig, name: str, names: frozenset[str]) -> dict[str, str]:
    """The environment of one service in this stack: where everything else is."""
    env = {
        "OTEL_SERVICE_NAME": name,
        "TRADING_OTEL_PG_DSN": config.pg_dsn,
        "TRADING_OTEL_REDIS_URL": config.redis_url,
        "TRADING_OTEL_BROKER_URL": config.url("broker-simulator"),
        "TRADING_OTEL_GATEWAY_URL": config.url("execution-gateway"),
        "TRADING_OTEL_SIGNAL_URL": config.url("signal-service"),
        # Freshness on a laptop (docs/performance.md, "Freshness"): an order is queryable
        # in Prometheus within seconds and its trace on disk within about one. The export
        # interval is also the first stage of every alert on a trading_* series
        # (docs/alerting.md, "Alert latency", computed from this value). Production modes
        # keep the longer intervals of deploy/compose and deploy/k8s.
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_BSP_SCHEDULE_DELAY": "500",
    }
    if config.api_key:
        env["TRADING_OTEL_API_KEYS"] = config.api_key
    exporters = []
    if "collector" in names:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{config.port('otlp-grpc')}"
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
        exporters.append("otlp")
    else:
        env["OTEL_TRACES_EXPORTER"] = env["OTEL_LOGS_EXPORTER"] = "none"
    if name in SERVICE_METRICS_PORTS:
        exporters.append("prometheus")
        env["OTEL_EXPORTER_PROMETHEUS_HOST"] = "127.0.0.1"
        env["OTEL_EXPORTER_PROMETHEUS_PORT"] = str(config.port(f"{name}-metrics"))
    env["OTEL_METRICS_EXPORTER"] = ",".join(exporters) or "none"
    return env | dict(config.service_env)


def _service(name: str) -> Launch:
    def launch(config: StackConfig, names: frozenset[str]) -> ManagedProcess:
        port = config.port(name)
        proc = ManagedProcess(
            name=name,
            argv=[sys.executable, "-m", "services", name, "--port", str(port)],
            # `python -m services` runs from the checkout: services are in no wheel.
            cwd=home.repo_root(),
            log_path=config.log_dir / f"{name}.log",
            ready=lambda: http_ok(f"http://127.0.0.1:{port}/ready"),
            env=service_env(config, name, names),
            ports=(port,),
        )
        return proc.start(config.ready_timeout_s)

    return launch


def _service_ready(name: str) -> Callable[[StackConfig], bool]:
    return lambda config: http_ok(f"{config.url(name)}/ready")


def _http_ready(key: str, path: str) -> Callable[[StackConfig], bool]:
    return lambda config: http_ok(f"http://127.0.0.1:{config.port(key)}{path}")


def _service_component(name: str, wave: int) -> Component:
    keys = (name, f"{name}-metrics") if name in SERVICE_METRICS_PORTS else (name,)
    return Component(name, keys, _service(name), _service_ready(name), wave=wave)


COMPONENTS: tuple[Component, ...] = (
    Component("postgres", ("postgres",), _postgres, _pg_ready, _pg_missing, wave=0,
              stop_signal=signal.SIGINT),
    Component("redis", ("redis",), _redis, lambda c: port_in_use(c.port("redis")),
              _which("redis-server"), wave=0),
    Component("collector", ("otlp-grpc", "otlp-http", "collector-health",
                            "collector-telemetry", "collector-prometheus"),
              _collector, _http_ready("collector-health", "/"), _collector_missing, wave=0),
    Component("alert-receiver", ("alert-receiver",), _alert_receiver,
              _http_ready("alert-receiver", "/-/healthy"), wave=0),
    Component("alertmanager", ("alertmanager",), _alertmanager,
              _http_ready("alertmanager", "/-/ready"), _which("prometheus-alertmanager"), wave=1),
    Component("prometheus", ("prometheus",), _prometheus, _http_ready("prometheus", "/-/ready"),
              _which("prometheus"), wave=2),
    _service_component("broker-simulator", 3),
    _service_component("market-data", 3),
    _service_component("signal-service", 3),
    _service_component("execution-gateway", 4),
    _service_component("orchestrator", 5),
)  # fmt: skip

#: Components the stack cannot run without (the rest are skipped with a note if missing).
REQUIRED = frozenset({"postgres", "redis"})
