"""The order path: validate → risk → persist → broker → fill, position, P&L → order event."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from opentelemetry import propagate
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Status, StatusCode

from services.common.config import ServiceSettings
from services.common.telemetry import meters, order_timer, tracer
from services.common.web import Dependencies
from services.gateway.broker_client import BrokerClient, BrokerUnavailable
from services.gateway.models import OrderRequest
from services.gateway.positions import Position, slippage_bps
from services.gateway.risk import Breaker, Prices, RiskChecker
from services.gateway.store import OrderStore

_log = logging.getLogger("services.gateway.orders")

#: Redis stream of order events, consumed by the orchestrator.
ORDER_STREAM = "orders:events"


def account_hash(account: str) -> str:
    """A stable pseudonym for the account: spans may carry it, never the account itself."""
    return hashlib.sha256(account.encode()).hexdigest()[:16]


@dataclass
class Result:
    """What the HTTP layer answers: a status code and the order view."""

    http_status: int
    body: dict[str, Any]


class Gateway:
    """Owns the collaborators of the order path; one per app."""

    def __init__(
        self,
        settings: ServiceSettings,
        store: OrderStore,
        redis: aioredis.Redis,
        broker: BrokerClient,
        risk: RiskChecker,
        breaker: Breaker,
        prices: Prices,
        deps: Dependencies,
    ) -> None:
        self.settings = settings
        self.store = store
        self.redis = redis
        self.broker = broker
        self.risk = risk
        self.breaker = breaker
        self.prices = prices
        self.deps = deps
        self.account_hash = account_hash(settings.account)
        # True until a success resets the shared consecutive-error count (saves a write).
        self._broker_errors_seen = True

    async def place(self, req: OrderRequest) -> Result:
        order_id = uuid.uuid4()
        with tracer().start_as_current_span("order.place") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            span.set_attributes({
                "trading.order.id": str(order_id),
                "trading.order.client_id": req.client_order_id,
                "trading.order.symbol": req.symbol,
                "trading.order.side": req.side,
                "trading.order.type": req.type,
                "trading.order.quantity": req.quantity,
                "trading.account.hash": self.account_hash,
            })  # fmt: skip
            view = {
                "id": str(order_id), "client_order_id": req.client_order_id,
                "symbol": req.symbol, "side": req.side, "type": req.type,
                "quantity": req.quantity, "limit_price": req.limit_price, "trace_id": trace_id,
            }  # fmt: skip
            with order_timer(req.symbol, req.side, req.type) as timer:
                result = await self._place(order_id, req, trace_id, view)
                status = result.body["status"]
                span.set_attribute("trading.order.outcome", status)
                if status == "filled":
                    timer.filled()
                elif status == "rejected":
                    reason = result.body["rejection_reason"]
                    span.set_attribute("trading.order.rejection_reason", reason)
                    timer.rejected(reason)
                else:
                    timer.outcome = "error"
                    span.set_status(Status(StatusCode.ERROR, result.body.get("detail")))
            await self._publish(view | result.body)
            return result

    async def _place(
        self, order_id: uuid.UUID, req: OrderRequest, trace_id: str, view: dict[str, Any]
    ) -> Result:
        price = await self.prices.get(req.symbol)
        reason = "market_data_stale" if price is None else await self.risk.check(req, price)
        if reason is not None or price is None:
            reason = reason or "market_data_stale"
            await self.store.insert(order_id, req, self.account_hash, "rejected", trace_id, reason)
            _log.info("order %s %s %s rejected: %s", order_id, req.side, req.symbol, reason)
            return Result(200, view | {"status": "rejected", "rejection_reason": reason})
        await self.store.insert(order_id, req, self.account_hash, "accepted", trace_id)
        _log.info("order %s %s %g %s accepted", order_id, req.side, req.quantity, req.symbol)
        try:
            reply = await self.broker.submit({
                "order_id": str(order_id), "symbol": req.symbol, "side": req.side,
                "quantity": req.quantity, "order_type": req.type,
                "limit_price": req.limit_price, "reference_price": price,
            })  # fmt: skip
        except BrokerUnavailable as exc:
            self.deps.mark("broker", False)
            self._broker_errors_seen = True
            tripped = await self.breaker.broker_error()
            await self.store.set_status(order_id, "error", "broker_unavailable")
            _log.error("order %s: broker unavailable: %s%s", order_id, exc,
                       " (circuit breaker tripped)" if tripped else "")  # fmt: skip
            return Result(502, view | {"status": "error", "rejection_reason": "broker_unavailable",
                                       "detail": f"broker unavailable: {exc}"})  # fmt: skip
        self.deps.mark("broker", True)
        if self._broker_errors_seen:
            await self.breaker.broker_ok()
            self._broker_errors_seen = False
        if reply["status"] != "filled":
            await self.store.set_status(
                order_id, "rejected", "broker_reject", reply["broker_order_id"]
            )
            _log.info("order %s rejected by the broker: %s", order_id, reply.get("reason"))
            return Result(200, view | {"status": "rejected", "rejection_reason": "broker_reject",
                                       "detail": reply.get("reason")})  # fmt: skip
        fill = float(reply["fill_price"])
        with tracer().start_as_current_span("position.update"):
            position, realized = await self.store.book_fill(
                order_id, req, fill, reply["broker_order_id"]
            )
            m = meters()
            m.fills.add(1)
            m.fill_slippage.record(slippage_bps(price, fill))
            m.position_quantity.set(position.quantity, symbol=req.symbol)
            # P&L gauges and the daily-loss breaker are refreshed by pnl_loop(), once a
            # second, rather than with three more queries on every order.
        _log.info("order %s filled at %.4f (realized %.2f)", order_id, fill, realized)
        return Result(
            201, view | {"status": "filled", "fill_price": fill, "rejection_reason": None}
        )

    async def refresh_pnl(self) -> dict[str, float]:
        """Recompute realized, unrealized and daily P&L; trip the daily-loss breaker."""
        rows = await self.store.positions()
        prices = await self.prices.get_many([r["symbol"] for r in rows])
        unrealized = sum(
            Position(r["quantity"], r["avg_price"]).unrealized(prices[r["symbol"]])
            for r in rows
            if r["symbol"] in prices
        )
        realized = sum(r["realized_pnl"] for r in rows)
        daily = await self.store.daily_realized() + unrealized
        m = meters()
        m.pnl.set(realized, kind="realized")
        m.pnl.set(unrealized, kind="unrealized")
        m.pnl.set(daily, kind="daily")
        m.positions_open.set(sum(1 for r in rows if abs(r["quantity"]) > 1e-9))
        if daily <= -self.settings.daily_loss_limit_usd:
            _log.warning("daily loss %.2f beyond limit: tripping the circuit breaker", daily)
            await self.breaker.trip("daily_loss")
        return {"realized": realized, "unrealized": unrealized, "daily": daily}

    async def pnl_loop(self, interval_s: float = 1.0) -> None:
        """Keep the P&L gauges current and trip the daily-loss breaker (background task)."""
        while True:
            try:
                with suppress_instrumentation():
                    await self.refresh_pnl()
            except Exception as exc:  # a dependency is down: the gauges wait for it
                _log.debug("P&L refresh failed: %s", exc)
            await asyncio.sleep(interval_s)

    async def _publish(self, event: dict[str, Any]) -> None:
        """Put the order event on the stream with the trace context, so consumers can link."""
        fields: dict[Any, Any] = {k: str(v) for k, v in event.items() if v is not None}
        propagate.inject(fields)
        try:
            await self.redis.xadd(ORDER_STREAM, fields, maxlen=100_000, approximate=True)
        except Exception as exc:  # the order is booked; a lost event must not fail it
            _log.error("order %s: could not publish the order event: %s", event.get("id"), exc)
