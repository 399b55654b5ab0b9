"""The gateway's SQL: orders, fills, positions and the risk query (asyncpg, bind parameters).

Every statement uses ``$n`` parameters, so the statements the asyncpg instrumentation puts
on spans never carry literal values.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.gateway.models import OrderRequest
from services.gateway.positions import Position, apply_fill

_RISK = """
SELECT
  coalesce((SELECT quantity FROM positions WHERE symbol = $1), 0) AS position,
  coalesce((SELECT sum(abs(quantity) * avg_price) FROM positions), 0) AS exposure,
  coalesce((SELECT sum(realized_pnl) FROM fills
            WHERE filled_at >= date_trunc('day', now())), 0) AS daily_realized
"""
#: The same query behind the ``pg_slow`` fault: the sleep happens inside Postgres, so the
#: asyncpg span (not the application) shows where the time went.
_RISK_SLOW = _RISK + " FROM (SELECT pg_sleep($2)) AS fault_injected_delay"


@dataclass(frozen=True)
class RiskRow:
    position: float
    exposure: float
    daily_realized: float


class OrderStore:
    """Typed access to the gateway's tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def risk_row(self, symbol: str, delay_s: float = 0.0) -> RiskRow:
        if delay_s > 0:
            row = await self.pool.fetchrow(_RISK_SLOW, symbol, delay_s)
        else:
            row = await self.pool.fetchrow(_RISK, symbol)
        assert row is not None  # an aggregate-only SELECT always returns one row
        return RiskRow(row["position"], row["exposure"], row["daily_realized"])

    async def exists(self, client_order_id: str) -> bool:
        found = await self.pool.fetchval(
            "SELECT 1 FROM orders WHERE client_order_id = $1", client_order_id
        )
        return found is not None

    async def insert(
        self,
        order_id: uuid.UUID,
        req: OrderRequest,
        account_hash: str,
        status: str,
        trace_id: str,
        reason: str | None = None,
    ) -> None:
        await self.pool.execute(
            "INSERT INTO orders (id, client_order_id, account_hash, symbol, side, order_type,"
            " quantity, limit_price, status, rejection_reason, trace_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            order_id, req.client_order_id, account_hash, req.symbol, req.side, req.type,
            req.quantity, req.limit_price, status, reason, trace_id,
        )  # fmt: skip

    async def set_status(
        self, order_id: uuid.UUID, status: str, reason: str | None = None,
        broker_order_id: str | None = None,
    ) -> None:  # fmt: skip
        await self.pool.execute(
            "UPDATE orders SET status = $2, rejection_reason = $3,"
            " broker_order_id = coalesce($4, broker_order_id), updated_at = now() WHERE id = $1",
            order_id, status, reason, broker_order_id,
        )  # fmt: skip

    async def book_fill(
        self, order_id: uuid.UUID, req: OrderRequest, price: float, broker_order_id: str
    ) -> tuple[Position, float]:
        """Mark the order filled, store the fill and move the position, in one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO positions (symbol) VALUES ($1) ON CONFLICT (symbol) DO NOTHING",
                req.symbol,
            )
            row = await conn.fetchrow(
                "SELECT quantity, avg_price FROM positions WHERE symbol = $1 FOR UPDATE",
                req.symbol,
            )
            assert row is not None  # inserted just above
            new, realized = apply_fill(
                Position(row["quantity"], row["avg_price"]), req.side, req.quantity, price
            )
            await conn.execute(
                "UPDATE positions SET quantity = $2, avg_price = $3,"
                " realized_pnl = realized_pnl + $4, updated_at = now() WHERE symbol = $1",
                req.symbol, new.quantity, new.avg_price, realized,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO fills (order_id, symbol, side, quantity, price, realized_pnl)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                order_id, req.symbol, req.side, req.quantity, price, realized,
            )  # fmt: skip
            await conn.execute(
                "UPDATE orders SET status = 'filled', fill_price = $2, broker_order_id = $3,"
                " updated_at = now() WHERE id = $1",
                order_id, price, broker_order_id,
            )  # fmt: skip
        return new, realized

    async def get(self, order_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT id, client_order_id, symbol, side, order_type, quantity, limit_price,"
            " status, rejection_reason, fill_price, trace_id FROM orders WHERE id = $1",
            order_id,
        )
        if row is None:
            return None
        out = dict(row)
        out["id"] = str(out["id"])
        out["type"] = out.pop("order_type")
        return out

    async def positions(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT symbol, quantity, avg_price, realized_pnl FROM positions ORDER BY symbol"
        )
        return [dict(r) for r in rows]

    async def daily_realized(self) -> float:
        value = await self.pool.fetchval(
            "SELECT coalesce(sum(realized_pnl), 0) FROM fills"
            " WHERE filled_at >= date_trunc('day', now())"
        )
        return float(value)
