"""The market-data service's FastAPI app (port 8004): feed, quotes, ``WS /ws/quotes``."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from services.common import telemetry
from services.common.config import ServiceSettings
from services.common.faults import FaultWatcher
from services.common.telemetry import meters
from services.common.web import BodyLimitMiddleware, Dependencies, add_probes, redis_client
from services.marketdata.feed import TICKS_CHANNEL, Feed

_log = logging.getLogger("services.marketdata")
SERVICE = "market-data"


def create_app(settings: ServiceSettings | None = None, *, telemetry_on: bool = True) -> FastAPI:
    """Build the market-data app; ``telemetry_on=False`` leaves the SDK to the caller."""
    cfg = settings or ServiceSettings.from_env()
    deps = Dependencies()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if telemetry_on:
            telemetry.configure()
        client = redis_client(cfg.redis_url)
        faults = FaultWatcher(client)
        feed = Feed(client, cfg.symbols, cfg.feed_interval_s, faults)
        app.state.redis, app.state.feed = client, feed
        deps.add("redis", client.ping)
        faults.start()
        feed.start()
        deps.start()
        try:
            yield
        finally:
            await deps.stop()
            await feed.stop()
            await faults.stop()
            await client.aclose()
            if telemetry_on:
                telemetry.shutdown()

    app = FastAPI(title=SERVICE, lifespan=lifespan)
    app.add_middleware(BodyLimitMiddleware, limit=cfg.max_body_bytes)
    add_probes(app, deps, SERVICE)

    @app.get("/api/v1/quotes")
    async def quotes() -> dict[str, Any]:
        feed: Feed = app.state.feed
        return {
            "connected": feed.connected,
            "quotes": {
                s: {"price": feed.prices[s], "staleness_s": round(age, 3)}
                for s, age in feed.staleness().items()
            },
        }

    @app.websocket("/ws/quotes")
    async def ws_quotes(ws: WebSocket) -> None:
        await ws.accept()
        m = meters()
        m.websocket_connections.add(1)
        pubsub = app.state.redis.pubsub()
        await pubsub.subscribe(TICKS_CHANNEL)
        wanted = set(ws.query_params.get("symbols", "").upper().split(",")) - {""}
        try:
            while True:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.4)
                if msg is None:
                    continue
                quote = json.loads(msg["data"])
                if wanted and quote["s"] not in wanted:
                    continue
                await ws.send_json(quote)
                m.websocket_messages.add(1)
        except WebSocketDisconnect:
            pass
        except aioredis.RedisError as exc:
            _log.warning("quote stream ended: redis unavailable: %s", exc)
            await ws.close(code=1011)
        finally:
            m.websocket_connections.add(-1)
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    return app
