"""The market-data service's FastAPI app (port 8004): feed, quotes, ``WS /ws/quotes``."""

from __future__ import annotations

import contextlib
import json
import logging
from contextlib import AsyncExitStack
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from services.common.config import ServiceSettings
from services.common.faults import FaultWatcher
from services.common.telemetry import meters
from services.common.web import Dependencies, redis_client, service_app
from services.marketdata.feed import TICKS_CHANNEL, Feed

_log = logging.getLogger("services.marketdata")
SERVICE = "market-data"


def create_app(settings: ServiceSettings | None = None, *, telemetry_on: bool = True) -> FastAPI:
    """Build the market-data app; ``telemetry_on=False`` leaves the SDK to the caller."""
    cfg = settings or ServiceSettings.from_env()
    deps = Dependencies()

    async def setup(app: FastAPI, stack: AsyncExitStack) -> None:
        client = redis_client(cfg.redis_url)
        stack.push_async_callback(client.aclose)
        faults = FaultWatcher(client)
        feed = Feed(client, cfg.symbols, cfg.feed_interval_s, faults)
        app.state.redis, app.state.feed = client, feed
        deps.add("redis", client.ping)
        faults.start()
        stack.push_async_callback(faults.stop)
        feed.start()
        stack.push_async_callback(feed.stop)

    app = service_app(SERVICE, setup, deps, max_body_bytes=cfg.max_body_bytes,
                      telemetry_on=telemetry_on)  # fmt: skip

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
