"""One order through the real gateway, Postgres, Redis and broker: trace, metrics, logs."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
import redis.asyncio as aioredis
from opentelemetry.trace import SpanKind

from tests.fixtures.services import Snapshot, Telemetry

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def set_price(redis: aioredis.Redis, symbol: str, price: float) -> None:
    await redis.set(f"md:last:{symbol}", json.dumps({"p": price, "t": time.time()}))


def order(symbol: str = "AAPL", side: str = "buy", quantity: float = 10, **extra: object) -> dict:
    return {"symbol": symbol, "side": side, "quantity": quantity, "type": "market",
            "client_order_id": f"t-{uuid.uuid4().hex[:12]}", **extra}  # fmt: skip


async def test_one_order_one_trace(
    gateway: httpx.AsyncClient, redis: aioredis.Redis, telemetry: Telemetry
) -> None:
    await set_price(redis, "AAPL", 190.0)
    telemetry.clear()
    resp = await gateway.post("/api/v1/orders", json=order())
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "filled"
    trace_id = int(body["trace_id"], 16)

    spans = [s for s in telemetry.spans.get_finished_spans() if s.context.trace_id == trace_id]
    by_name = {s.name: s for s in spans}
    server = next(s for s in spans if s.kind == SpanKind.SERVER and s.parent is None)
    assert server.name == "POST /api/v1/orders"
    place = by_name["order.place"]
    assert place.attributes["trading.order.symbol"] == "AAPL"
    assert place.attributes["trading.order.side"] == "buy"
    assert place.attributes["trading.order.outcome"] == "filled"
    assert "trading.account.hash" in place.attributes
    assert "acct-demo" not in json.dumps(dict(place.attributes))
    assert by_name["risk.check"].parent.span_id == place.context.span_id

    sql = [s for s in spans if s.attributes.get("db.system.name") == "postgresql"]
    assert len(sql) >= 4
    for s in sql:
        statement = str(s.attributes.get("db.query.text", ""))
        assert "AAPL" not in statement and "190" not in statement, statement
    assert any("INSERT INTO orders" in str(s.attributes.get("db.query.text")) for s in sql)
    assert [s for s in spans if s.attributes.get("db.system") == "redis"]

    submit = by_name["broker.submit"]
    client = next(s for s in spans if s.kind == SpanKind.CLIENT and s.parent
                  and s.parent.span_id == submit.context.span_id)  # fmt: skip
    broker_server = next(s for s in spans if s.kind == SpanKind.SERVER and s is not server)
    assert broker_server.parent.span_id == client.context.span_id

    # The order event on the stream carries the trace context.
    events = await redis.xrevrange("orders:events", count=5)
    event = next(f for _, f in events if f["id"] == body["id"])
    assert event["traceparent"].split("-")[1] == body["trace_id"]

    # Persisted, and readable.
    got = (await gateway.get(f"/api/v1/orders/{body['id']}")).json()
    assert got["status"] == "filled" and got["trace_id"] == body["trace_id"]


async def test_metrics_match_orders(
    gateway: httpx.AsyncClient, redis: aioredis.Redis, telemetry: Telemetry
) -> None:
    await set_price(redis, "MSFT", 410.0)
    before = Snapshot(telemetry.metrics)
    sent = [await gateway.post("/api/v1/orders", json=order("MSFT", quantity=5)) for _ in range(3)]
    assert [r.status_code for r in sent] == [201, 201, 201]
    big = await gateway.post("/api/v1/orders", json=order("MSFT", quantity=999_999))
    assert big.json()["rejection_reason"] == "position_limit"
    after = Snapshot(telemetry.metrics)

    def delta(name: str, **attrs: str) -> float:
        return after.value(name, **attrs) - before.value(name, **attrs)

    assert delta("trading.orders", symbol="MSFT", status="filled") == 3
    assert delta("trading.orders", symbol="MSFT", status="rejected") == 1
    assert delta("trading.order.rejections", reason="position_limit") == 1
    assert delta("trading.order.latency", symbol="MSFT", outcome="filled") == 3
    assert delta("trading.fills") == 3

    exemplars = after.exemplar_trace_ids("trading.order.latency", symbol="MSFT", outcome="filled")
    assert sent[-1].json()["trace_id"] in exemplars


async def test_order_logs_carry_trace_id(
    gateway: httpx.AsyncClient, redis: aioredis.Redis, telemetry: Telemetry
) -> None:
    await set_price(redis, "GOOG", 170.0)
    telemetry.clear()
    body = (await gateway.post("/api/v1/orders", json=order("GOOG"))).json()
    # The gateway's own lines (the orchestrator's consumer also logs the order id, in
    # its own, linked trace).
    mine = [
        r for r in telemetry.logs.get_finished_logs()
        if body["id"] in str(r.log_record.body)
        and r.instrumentation_scope.name.startswith("services.gateway")
    ]  # fmt: skip
    assert len(mine) >= 2  # accepted + filled
    for r in mine:
        assert format(r.log_record.trace_id, "032x") == body["trace_id"]
