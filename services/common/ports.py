"""The demo services' ports, declared once.

The local stack (``trading-otel up``, in the tooling) takes these same numbers from here,
and the services' default URLs for each other are built from them.
"""

from __future__ import annotations

#: Each service's HTTP port in the local stack (ARCHITECTURE "Local ports").
SERVICE_PORTS: dict[str, int] = {
    "orchestrator": 8001,
    "execution-gateway": 8002,
    "signal-service": 8003,
    "market-data": 8004,
    "broker-simulator": 8005,
}

#: The servers the services use, on their standard ports.
POSTGRES_PORT = 5432
REDIS_PORT = 6379


def local_url(service: str) -> str:
    """``http://127.0.0.1:<port>`` of one service in the local stack."""
    return f"http://127.0.0.1:{SERVICE_PORTS[service]}"
