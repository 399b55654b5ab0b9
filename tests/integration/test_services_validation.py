"""Bad order input gets a clear 4xx and leaves nothing behind in Postgres."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from trading_otel_tools.servers.postgres import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def good(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"symbol": "AAPL", "side": "buy", "quantity": 1, "type": "market",
                            "client_order_id": f"v-{uuid.uuid4().hex[:12]}"}  # fmt: skip
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


CASES = [
    ("unknown side", good(side="hold"), 422, "side"),
    ("negative quantity", good(quantity=-5), 422, "quantity"),
    ("zero quantity", good(quantity=0), 422, "quantity"),
    ("missing symbol", good(symbol=...), 422, "symbol"),
    ("missing client id", good(client_order_id=...), 422, "client_order_id"),
    ("lowercase junk symbol", good(symbol="aapl; drop"), 422, "symbol"),
    ("limit without price", good(type="limit"), 422, "limit_price"),
    ("unknown field", good(account="x"), 422, "account"),
    ("huge payload", good(client_order_id="x" * 50_000), 413, "too large"),
]


async def _count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM orders"))
    finally:
        await conn.close()


@pytest.mark.parametrize(("case", "body", "status", "mentions"), CASES, ids=[c[0] for c in CASES])
async def test_bad_order_is_refused_and_not_persisted(
    gateway: httpx.AsyncClient,
    postgres_server: PostgresServer,
    case: str,
    body: dict[str, Any],
    status: int,
    mentions: str,
) -> None:
    before = await _count(postgres_server.dsn)
    resp = await gateway.post("/api/v1/orders", json=body)
    assert resp.status_code == status, resp.text
    assert mentions in resp.text
    assert await _count(postgres_server.dsn) == before


async def test_not_json_is_refused(gateway: httpx.AsyncClient) -> None:
    resp = await gateway.post(
        "/api/v1/orders", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.json()["detail"] == "invalid request"


async def test_streamed_huge_body_is_refused(gateway: httpx.AsyncClient) -> None:
    # No content-length: the limit must hold while the body streams in.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 1024

    resp = await gateway.post("/api/v1/orders", content=chunks())
    assert resp.status_code == 413


async def test_duplicate_client_order_id_conflicts(
    gateway: httpx.AsyncClient, postgres_server: PostgresServer
) -> None:
    # No price is set for TSLA: the market-data rejection is still a stored order.
    body = good(symbol="TSLA")
    first = await gateway.post("/api/v1/orders", json=body)
    assert first.status_code in (200, 201)
    before = await _count(postgres_server.dsn)
    second = await gateway.post("/api/v1/orders", json=body)
    assert second.status_code == 409
    assert "already used" in second.json()["detail"]
    assert await _count(postgres_server.dsn) == before


async def test_unknown_order_is_404(gateway: httpx.AsyncClient) -> None:
    assert (await gateway.get(f"/api/v1/orders/{uuid.uuid4()}")).status_code == 404
    assert (await gateway.get("/api/v1/orders/not-a-uuid")).status_code == 422
