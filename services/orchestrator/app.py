"""The orchestrator's FastAPI app (port 8001): timer-driven cycles and the event consumer."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import Any

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI

from services.common.config import ServiceSettings
from services.common.tasks import cancel_and_wait
from services.common.web import Dependencies, redis_client, service_app
from services.orchestrator.consumer import OrderEventConsumer
from services.orchestrator.cycle import Cycle

_log = logging.getLogger("services.orchestrator")
SERVICE = "orchestrator"


async def _timer(cycle: Cycle, interval_s: float, lock: asyncio.Lock) -> None:
    while True:
        await asyncio.sleep(interval_s)
        async with lock:
            await cycle.run()


def create_app(
    settings: ServiceSettings | None = None,
    *,
    telemetry_on: bool = True,
    http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """Build the orchestrator.

    Args:
        settings: Settings; read from the environment by default.
        telemetry_on: False leaves the SDK to the caller (tests).
        http_mounts: Transports by URL prefix for the calls to the other services
            (tests route them in-process).
    """
    cfg = settings or ServiceSettings.from_env()
    deps = Dependencies()

    async def setup(app: FastAPI, stack: AsyncExitStack) -> None:
        client = redis_client(cfg.redis_url)
        stack.push_async_callback(client.aclose)
        # The consumer blocks on XREADGROUP for up to 0.5 s: it needs a longer read timeout.
        stream_client = aioredis.from_url(cfg.redis_url, socket_timeout=5, decode_responses=True)
        stack.push_async_callback(stream_client.aclose)
        http = httpx.AsyncClient(timeout=10, mounts=http_mounts)
        stack.push_async_callback(http.aclose)
        app.state.cycle = Cycle(cfg, http)
        app.state.lock = asyncio.Lock()
        app.state.consumer = OrderEventConsumer(stream_client)
        deps.add("redis", client.ping)
        app.state.consumer.start()
        stack.push_async_callback(app.state.consumer.stop)
        if cfg.orchestrator_interval_s > 0:
            timer = asyncio.create_task(
                _timer(app.state.cycle, cfg.orchestrator_interval_s, app.state.lock)
            )
            stack.push_async_callback(cancel_and_wait, timer)

    app = service_app(SERVICE, setup, deps, max_body_bytes=cfg.max_body_bytes,
                      telemetry_on=telemetry_on, check_interval_s=2.0)  # fmt: skip

    @app.post("/api/v1/run")
    async def run_now() -> dict[str, Any]:
        cycle: Cycle = app.state.cycle
        async with app.state.lock:
            return await cycle.run()

    @app.get("/api/v1/status")
    async def status() -> dict[str, Any]:
        return {
            "runs": app.state.cycle.runs,
            "last_run": app.state.cycle.last,
            "events_handled": dict(app.state.consumer.handled),
        }

    return app
