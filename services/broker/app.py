"""The broker simulator's HTTP API (``POST /api/v1/orders``).

Latency is log-normal around ``TRADING_OTEL_BROKER_LATENCY_MS`` with a thin slow tail, as
real venues look. Faults (see :mod:`services.common.faults`) add a latency spike to a
fraction of orders, reject a fraction, or slow every fill down. The disconnect fault is
applied one level down, by :mod:`services.broker.server`, which stops accepting TCP
connections.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import uuid
from contextlib import AsyncExitStack
from typing import Literal

from fastapi import FastAPI
from opentelemetry import trace
from pydantic import BaseModel, Field

from services.common.config import ServiceSettings
from services.common.faults import FaultWatcher
from services.common.web import Dependencies, redis_client, service_app

_log = logging.getLogger("services.broker")
SERVICE = "broker-simulator"


class BrokerOrder(BaseModel):
    """An order as the gateway submits it."""

    order_id: str = Field(min_length=1, max_length=64)
    symbol: str = Field(min_length=1, max_length=16)
    side: Literal["buy", "sell"]
    quantity: float = Field(gt=0)
    order_type: Literal["market", "limit"]
    limit_price: float | None = Field(default=None, gt=0)
    reference_price: float = Field(gt=0, description="The gateway's last market price")


class BrokerReply(BaseModel):
    broker_order_id: str
    status: Literal["filled", "rejected"]
    fill_price: float | None = None
    reason: str | None = None


class LatencyModel:
    """Log-normal latency with a 1% tail five times slower."""

    def __init__(self, median_ms: float, rng: random.Random | None = None) -> None:
        self.median_ms = median_ms
        self.rng = rng or random.Random()

    def sample_ms(self) -> float:
        if self.median_ms <= 0:
            return 0.0
        value = self.rng.lognormvariate(math.log(self.median_ms), 0.35)
        if self.rng.random() < 0.01:
            value *= 5
        return value


def fill_price(order: BrokerOrder, rng: random.Random) -> float | None:
    """The execution price, with up to 3 bp of adverse slippage; None if a limit can't fill."""
    slip = rng.uniform(0, 3e-4)
    sign = 1 if order.side == "buy" else -1
    price = order.reference_price * (1 + sign * slip)
    if order.order_type == "limit" and order.limit_price is not None:
        marketable = (
            order.limit_price >= price if order.side == "buy" else order.limit_price <= price
        )
        if not marketable:
            return None
    return round(price, 4)


def create_app(settings: ServiceSettings | None = None, *, telemetry_on: bool = True) -> FastAPI:
    """Build the broker app; ``telemetry_on=False`` leaves the SDK to the caller (tests)."""
    cfg = settings or ServiceSettings.from_env()
    latency = LatencyModel(cfg.broker_latency_ms)
    deps = Dependencies()

    async def setup(app: FastAPI, stack: AsyncExitStack) -> None:
        client = redis_client(cfg.redis_url)
        stack.push_async_callback(client.aclose)
        watcher = FaultWatcher(client)
        app.state.faults = watcher
        deps.add("redis", client.ping)
        watcher.start()
        stack.push_async_callback(watcher.stop)

    app = service_app(SERVICE, setup, deps, max_body_bytes=cfg.max_body_bytes,
                      telemetry_on=telemetry_on, check_interval_s=2.0)  # fmt: skip

    @app.post("/api/v1/orders", response_model=BrokerReply)
    async def submit(order: BrokerOrder) -> BrokerReply:
        watcher: FaultWatcher = app.state.faults
        rng = latency.rng
        delay_ms = latency.sample_ms()
        spike = watcher.get("broker_spike")
        if spike is not None and rng.random() < spike.params["fraction"]:
            delay_ms += spike.params["delay_ms"]
        slow = watcher.get("broker_slow_fills")
        if slow is not None:
            delay_ms += slow.params["delay_ms"]
        span = trace.get_current_span()
        span.set_attribute("broker.latency_ms", round(delay_ms, 3))
        await asyncio.sleep(delay_ms / 1000)
        broker_id = uuid.uuid4().hex[:16]
        reject = watcher.get("broker_reject")
        if reject is not None and rng.random() < reject.params["rate"]:
            _log.info("broker rejected order %s (reject fault)", order.order_id)
            return BrokerReply(broker_order_id=broker_id, status="rejected", reason="venue_reject")
        price = fill_price(order, rng)
        if price is None:
            return BrokerReply(
                broker_order_id=broker_id, status="rejected", reason="limit_not_marketable"
            )
        return BrokerReply(broker_order_id=broker_id, status="filled", fill_price=price)

    return app
