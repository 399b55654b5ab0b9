"""The execution gateway's FastAPI app (port 8002)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.common.auth import ApiKeyAuth
from services.common.config import ServiceSettings
from services.common.db import HealthProbe, create_pool
from services.common.faults import FaultWatcher
from services.common.tasks import cancel_and_wait
from services.common.telemetry import meters
from services.common.web import Dependencies, redis_client, service_app
from services.gateway.broker_client import BrokerClient
from services.gateway.models import OrderRequest
from services.gateway.orders import Gateway
from services.gateway.risk import Breaker, Prices, RiskChecker
from services.gateway.store import OrderStore

_log = logging.getLogger("services.gateway")
SERVICE = "execution-gateway"


def create_app(settings: ServiceSettings | None = None, *, telemetry_on: bool = True) -> FastAPI:
    """Build the gateway; ``telemetry_on=False`` leaves the SDK to the caller (tests)."""
    cfg = settings or ServiceSettings.from_env()
    deps = Dependencies()
    auth = ApiKeyAuth(cfg.api_keys, SERVICE)
    # Every /api/v1 route needs a key when keys are configured; the probes never do.
    guard = auth.dependencies()

    async def setup(app: FastAPI, stack: AsyncExitStack) -> None:
        pool = await create_pool(cfg.pg_dsn, max_size=20)
        stack.push_async_callback(pool.close)
        pg_probe = HealthProbe(cfg.pg_dsn)
        stack.push_async_callback(pg_probe.close)
        redis = redis_client(cfg.redis_url)
        stack.push_async_callback(redis.aclose)
        broker = BrokerClient(cfg.broker_url, cfg.broker_timeout_s)
        stack.push_async_callback(broker.aclose)
        faults = FaultWatcher(redis)
        store = OrderStore(pool)
        breaker = Breaker(redis, cfg.breaker_errors)
        risk = RiskChecker(cfg, store, breaker, faults)
        app.state.gateway = Gateway(
            cfg, store, redis, broker, risk, breaker, Prices(redis, cfg.stale_after_s), deps
        )
        deps.add("postgres", pg_probe)
        deps.add("redis", redis.ping)
        deps.add("broker", broker.health)
        risk.publish_limits()
        auth.warn_if_open()
        faults.start()
        stack.push_async_callback(faults.stop)
        pnl = asyncio.create_task(app.state.gateway.pnl_loop(), name="pnl")
        stack.push_async_callback(cancel_and_wait, pnl)
        try:
            await breaker.publish_state()
        except aioredis.RedisError as exc:
            _log.warning("could not read the circuit breaker state at startup: %s", exc)

    app = service_app(SERVICE, setup, deps, max_body_bytes=cfg.max_body_bytes,
                      telemetry_on=telemetry_on)  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if request.url.path == "/api/v1/orders":
            meters().order_rejections.add(1, reason="validation")
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)

    @app.exception_handler(aioredis.RedisError)
    async def redis_down(request: Request, exc: aioredis.RedisError) -> JSONResponse:
        deps.mark("redis", False)
        return JSONResponse({"detail": f"redis unavailable: {exc}"}, status_code=503)

    @app.exception_handler(asyncpg.PostgresConnectionError)
    async def pg_down(request: Request, exc: Exception) -> JSONResponse:
        deps.mark("postgres", False)
        return JSONResponse({"detail": f"postgres unavailable: {exc}"}, status_code=503)

    @app.post("/api/v1/orders", dependencies=guard)
    async def place_order(order: OrderRequest) -> JSONResponse:
        gw: Gateway = app.state.gateway
        if await gw.store.exists(order.client_order_id):
            raise HTTPException(409, f"client_order_id {order.client_order_id!r} already used")
        result = await gw.place(order)
        return JSONResponse(result.body, status_code=result.http_status)

    @app.get("/api/v1/orders/{order_id}", dependencies=guard)
    async def get_order(order_id: uuid.UUID) -> dict[str, Any]:
        found = await app.state.gateway.store.get(order_id)
        if found is None:
            raise HTTPException(404, f"no order {order_id}")
        return dict(found)

    @app.get("/api/v1/positions", dependencies=guard)
    async def positions() -> dict[str, Any]:
        gw: Gateway = app.state.gateway
        rows = await gw.store.positions()
        prices = await gw.prices.get_many([r["symbol"] for r in rows])
        for r in rows:
            r["market_price"] = prices.get(r["symbol"])
            mp = r["market_price"]
            r["unrealized_pnl"] = (mp - r["avg_price"]) * r["quantity"] if mp else 0.0
        return {"positions": rows, "pnl": await gw.refresh_pnl()}

    @app.get("/api/v1/circuit-breaker", dependencies=guard)
    async def breaker_state() -> dict[str, Any]:
        gw: Gateway = app.state.gateway
        return {"open": await gw.breaker.open_breakers()}

    @app.post("/api/v1/circuit-breaker/reset", dependencies=guard)
    async def breaker_reset() -> dict[str, Any]:
        gw: Gateway = app.state.gateway
        await gw.breaker.reset()
        _log.warning("circuit breaker reset by API call")
        return {"open": []}

    return app
