"""The local stack's ports (ARCHITECTURE "Local ports"), each declared once.

The tooling's own listeners are declared here. The demo services' ports, and those of
the Postgres and Redis they use, are declared with the services
(``services/common/ports.py``), which no wheel ships: :func:`default_ports` reads them
from the checkout when a command needs the whole table.
"""

from __future__ import annotations

from trading_otel_tools import home

#: The collector, the alerting chain and each service's direct Prometheus endpoint.
TOOL_PORTS: dict[str, int] = {
    "otlp-grpc": 4317,
    "otlp-http": 4318,
    "collector-telemetry": 8888,
    "collector-prometheus": 8889,
    "collector-health": 13133,
    "prometheus": 9090,
    "alertmanager": 9093,
    "alert-receiver": 9095,
    # Each service's pull endpoint (Prometheus scrapes it for liveness).
    "orchestrator-metrics": 9401,
    "execution-gateway-metrics": 9402,
    "signal-service-metrics": 9403,
    "market-data-metrics": 9404,
}


def local_url(component: str) -> str:
    """``http://127.0.0.1:<port>`` of one of the tooling's own listeners."""
    return f"http://127.0.0.1:{TOOL_PORTS[component]}"


def default_ports() -> dict[str, int]:
    """Every component's documented port: the services' (from the checkout) and ours."""
    ports = home.checkout_module("services.common.ports")
    return {
        **ports.SERVICE_PORTS,
        "postgres": ports.POSTGRES_PORT,
        "redis": ports.REDIS_PORT,
        **TOOL_PORTS,
    }
