"""Pre-trade risk: market prices and breaker state from Redis, exposure from Postgres."""

from __future__ import annotations

import json
import time

import redis.asyncio as aioredis
from opentelemetry import trace

from services.common.config import ServiceSettings
from services.common.faults import FaultWatcher
from services.common.telemetry import meters, tracer
from services.gateway.models import OrderRequest
from services.gateway.store import OrderStore

BREAKER_KEY = "risk:breaker"
ERRORS_KEY = "risk:broker_errors"
BREAKERS = ("daily_loss", "broker_errors")


def price_key(symbol: str) -> str:
    """Redis key of a symbol's latest quote, written by market-data: ``{"p": .., "t": ..}``."""
    return f"md:last:{symbol}"


class Prices:
    """Latest prices from Redis, refused when older than ``stale_after_s``."""

    def __init__(self, client: aioredis.Redis, stale_after_s: float) -> None:
        self.client = client
        self.stale_after_s = stale_after_s

    async def get_many(self, symbols: list[str]) -> dict[str, float]:
        if not symbols:
            return {}
        raw = await self.client.mget([price_key(s) for s in symbols])
        now = time.time()
        out: dict[str, float] = {}
        for symbol, value in zip(symbols, raw, strict=True):
            quote = json.loads(value) if value else None
            fresh = quote is not None and now - float(quote["t"]) <= self.stale_after_s
            meters().cache_requests.add(1, cache="price", result="hit" if fresh else "miss")
            if fresh and quote is not None:
                out[symbol] = float(quote["p"])
        return out

    async def get(self, symbol: str) -> float | None:
        return (await self.get_many([symbol])).get(symbol)


class Breaker:
    """The circuit breakers, shared by every gateway process through Redis."""

    def __init__(self, client: aioredis.Redis, max_errors: int) -> None:
        self.client = client
        self.max_errors = max_errors

    async def open_breakers(self) -> list[str]:
        state = await self.client.hgetall(BREAKER_KEY)
        return [b for b in BREAKERS if state.get(b) == "1"]

    async def trip(self, breaker: str) -> None:
        await self.client.hset(BREAKER_KEY, breaker, "1")
        meters().circuit_breaker_state.set(1, breaker=breaker)
        meters().circuit_breaker_trips.add(1)

    async def broker_error(self) -> bool:
        """Count a consecutive broker error; trip at the limit. True when it tripped now."""
        count = int(await self.client.incr(ERRORS_KEY))
        if count == self.max_errors:
            await self.trip("broker_errors")
            return True
        return False

    async def broker_ok(self) -> None:
        await self.client.set(ERRORS_KEY, 0)

    async def reset(self) -> None:
        await self.client.delete(BREAKER_KEY, ERRORS_KEY)
        for breaker in BREAKERS:
            meters().circuit_breaker_state.set(0, breaker=breaker)

    async def publish_state(self) -> None:
        opened = await self.open_breakers()
        for breaker in BREAKERS:
            meters().circuit_breaker_state.set(1 if breaker in opened else 0, breaker=breaker)


class RiskChecker:
    """The pre-trade checks, in the ``risk.check`` span. Returns a rejection reason or None."""

    def __init__(
        self, settings: ServiceSettings, store: OrderStore, breaker: Breaker, faults: FaultWatcher
    ) -> None:
        self.settings = settings
        self.store = store
        self.breaker = breaker
        self.faults = faults

    def publish_limits(self) -> None:
        m = meters()
        m.risk_limit.set(self.settings.daily_loss_limit_usd, limit="daily_loss_usd")
        m.risk_limit.set(self.settings.max_position, limit="position_quantity")
        m.risk_limit.set(self.settings.max_exposure_usd, limit="exposure_usd")

    async def check(self, req: OrderRequest, price: float) -> str | None:
        start = time.perf_counter()
        with tracer().start_as_current_span("risk.check") as span:
            try:
                reason = await self._check(req, price)
            finally:
                meters().risk_check_duration.record(time.perf_counter() - start)
            span.set_attribute("trading.risk.result", reason or "pass")
            return reason

    async def _check(self, req: OrderRequest, price: float) -> str | None:
        opened = await self.breaker.open_breakers()
        if opened:
            trace.get_current_span().set_attribute("trading.risk.open_breakers", opened)
            return "circuit_breaker"
        slow = self.faults.get("pg_slow")
        delay = slow.params["delay_ms"] / 1000 if slow is not None else 0.0
        row = await self.store.risk_row(req.symbol, delay)
        signed = req.quantity if req.side == "buy" else -req.quantity
        new_position = row.position + signed
        if abs(new_position) > self.settings.max_position:
            return "position_limit"
        growing = abs(new_position) > abs(row.position)
        if growing and row.exposure + req.quantity * price > self.settings.max_exposure_usd:
            return "exposure_limit"
        if row.daily_realized <= -self.settings.daily_loss_limit_usd:
            await self.breaker.trip("daily_loss")
            return "daily_loss_limit"
        return None
