"""HTTP client of the broker simulator. Trace context travels in the request headers."""

from __future__ import annotations

import time
from typing import Any

import httpx

from services.common.telemetry import meters, tracer


class BrokerUnavailable(Exception):
    """The broker could not be reached or failed (connection, timeout, 5xx)."""


class BrokerClient:
    """Submits orders; the ``broker.submit`` span wraps the instrumented HTTP call."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s)

    async def submit(self, order: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        with tracer().start_as_current_span("broker.submit") as span:
            span.set_attribute("peer.service", "broker-simulator")
            try:
                resp = await self.http.post("/api/v1/orders", json=order)
                if resp.status_code >= 500:
                    raise BrokerUnavailable(f"broker answered HTTP {resp.status_code}")
                if resp.status_code >= 400:
                    # Our own request was refused: a bug on our side, not an outage.
                    raise RuntimeError(f"broker refused the order: {resp.status_code} {resp.text}")
                reply: dict[str, Any] = resp.json()
                span.set_attribute("trading.broker.status", str(reply.get("status")))
                return reply
            except httpx.TransportError as exc:
                raise BrokerUnavailable(f"{type(exc).__name__}: {exc or 'no detail'}") from exc
            finally:
                meters().broker_request_duration.record(
                    time.perf_counter() - start, operation="submit"
                )

    async def health(self) -> None:
        resp = await self.http.get("/health")
        resp.raise_for_status()

    async def aclose(self) -> None:
        await self.http.aclose()
