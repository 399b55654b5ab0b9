"""Each fault has its effect on the real services (broker, feed, Postgres, Redis)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from opentelemetry.trace import SpanKind

from services.common.config import ServiceSettings
from services.common.faults import clear_faults, pause_redis, set_fault, unpause_redis
from tests.fixtures.services import RunningBroker, Snapshot, Telemetry, serve_asgi
from trading_otel_tools.procs import port_in_use

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def set_price(redis: aioredis.Redis, symbol: str, price: float) -> None:
    await redis.set(f"md:last:{symbol}", json.dumps({"p": price, "t": time.time()}))


def order(symbol: str = "AMZN", quantity: float = 1) -> dict[str, object]:
    return {"symbol": symbol, "side": "buy", "quantity": quantity, "type": "market",
            "client_order_id": f"f-{uuid.uuid4().hex[:12]}"}  # fmt: skip


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest_asyncio.fixture(loop_scope="session")
async def clean_faults(redis: aioredis.Redis, gateway: httpx.AsyncClient) -> AsyncIterator[None]:
    await clear_faults(redis)
    yield
    await clear_faults(redis)
    await gateway.post("/api/v1/circuit-breaker/reset")


def slow_orders(snap: Snapshot, threshold: float) -> float:
    """Orders whose latency fell in a bucket entirely above ``threshold`` seconds."""
    total = 0.0
    for p in snap.points("trading.order.latency"):
        if p.attributes.get("symbol") != "AMZN":
            continue
        lows = (0.0, *p.explicit_bounds)
        total += sum(c for low, c in zip(lows, p.bucket_counts, strict=True) if low >= threshold)
    return total


@pytest.mark.usefixtures("clean_faults")
async def test_broker_spike_shifts_latency_histogram(
    gateway: httpx.AsyncClient, redis: aioredis.Redis, telemetry: Telemetry
) -> None:
    await set_price(redis, "AMZN", 180.0)
    before = Snapshot(telemetry.metrics)
    await set_fault(redis, "broker_spike", 10, delay_ms=300, fraction=1.0)
    await asyncio.sleep(0.5)  # the broker refreshes its fault flags every 0.2 s
    for _ in range(2):
        assert (await gateway.post("/api/v1/orders", json=order())).status_code == 201
    after = Snapshot(telemetry.metrics)
    assert slow_orders(after, 0.3) - slow_orders(before, 0.3) == 2


@pytest.mark.usefixtures("clean_faults")
async def test_disconnect_errors_then_breaker_trips(
    gateway: httpx.AsyncClient,
    redis: aioredis.Redis,
    telemetry: Telemetry,
    broker: RunningBroker,
    gateway_settings: ServiceSettings,
) -> None:
    await set_price(redis, "AMZN", 180.0)
    port = int(broker.url.rsplit(":", 1)[1])
    before = Snapshot(telemetry.metrics)
    await set_fault(redis, "broker_disconnect", 10)
    await eventually(lambda: not port_in_use(port))

    n = gateway_settings.breaker_errors
    for _ in range(n):
        resp = await gateway.post("/api/v1/orders", json=order())
        assert resp.status_code == 502
        assert resp.json()["status"] == "error"
        assert "broker unavailable" in resp.json()["detail"]
    mid = Snapshot(telemetry.metrics)
    assert mid.value("trading.dependency.up", dependency="broker") == 0
    errors = mid.value("trading.orders", symbol="AMZN", status="error")
    assert errors - before.value("trading.orders", symbol="AMZN", status="error") == n
    assert mid.value("trading.circuit_breaker.state", breaker="broker_errors") == 1

    rejected = await gateway.post("/api/v1/orders", json=order())
    assert rejected.json()["rejection_reason"] == "circuit_breaker"
    after = Snapshot(telemetry.metrics)
    cb = after.value("trading.order.rejections", reason="circuit_breaker")
    assert cb - before.value("trading.order.rejections", reason="circuit_breaker") == 1

    await clear_faults(redis, "broker_disconnect")
    await eventually(lambda: port_in_use(port))
    assert (await gateway.post("/api/v1/circuit-breaker/reset")).json() == {"open": []}
    assert (
        Snapshot(telemetry.metrics).value("trading.circuit_breaker.state", breaker="broker_errors")
        == 0
    )
    resp = await gateway.post("/api/v1/orders", json=order())
    assert resp.status_code == 201
    assert Snapshot(telemetry.metrics).value("trading.dependency.up", dependency="broker") == 1


async def test_the_broker_gate_forwards_to_sockets_without_nagle(broker: RunningBroker) -> None:
    # The gate forwards every request to uvicorn's private socket. When that socket was
    # made without naming TCP, asyncio left Nagle on for the connections it accepted, and
    # each broker answer waited about 40 ms for the gate's delayed ACK.
    async with httpx.AsyncClient(base_url=broker.url) as client:
        assert (await client.get("/health")).status_code == 200
        accepted = list(broker.server.uvicorn.server_state.connections)
        assert accepted, "the request reached no uvicorn connection"
        for conn in accepted:
            sock = conn.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), sock


@pytest.mark.usefixtures("clean_faults")
async def test_broker_reject_fault(
    gateway: httpx.AsyncClient, redis: aioredis.Redis, telemetry: Telemetry
) -> None:
    await set_price(redis, "AMZN", 180.0)
    before = Snapshot(telemetry.metrics)
    await set_fault(redis, "broker_reject", 10, rate=1.0)
    await asyncio.sleep(0.5)
    body = (await gateway.post("/api/v1/orders", json=order())).json()
    assert (body["status"], body["rejection_reason"]) == ("rejected", "broker_reject")
    after = Snapshot(telemetry.metrics)
    assert (
        after.value("trading.order.rejections", reason="broker_reject")
        - before.value("trading.order.rejections", reason="broker_reject")
        == 1
    )


@pytest.mark.usefixtures("clean_faults")
async def test_postgres_slowness_shows_in_risk_query(
    gateway: httpx.AsyncClient, redis: aioredis.Redis, telemetry: Telemetry
) -> None:
    await set_price(redis, "AMZN", 180.0)
    await set_fault(redis, "pg_slow", 10, delay_ms=300)
    await asyncio.sleep(0.5)  # the gateway's fault watcher refreshes every 0.2 s
    telemetry.clear()
    body = (await gateway.post("/api/v1/orders", json=order())).json()
    spans = [s for s in telemetry.spans.get_finished_spans()
             if format(s.context.trace_id, "032x") == body["trace_id"]]  # fmt: skip
    risk = next(s for s in spans if s.name == "risk.check")
    query = next(s for s in spans if "pg_sleep" in str(s.attributes.get("db.query.text", "")))
    assert query.parent.span_id == risk.context.span_id
    assert query.kind == SpanKind.CLIENT
    assert (query.end_time - query.start_time) / 1e9 >= 0.3


@pytest.mark.usefixtures("clean_faults")
async def test_redis_loss_flips_dependency_gauge(
    gateway: httpx.AsyncClient, redis: aioredis.Redis, telemetry: Telemetry
) -> None:
    await pause_redis(redis, 3)
    try:
        ready = await gateway.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["dependencies"]["redis"] is False
        assert Snapshot(telemetry.metrics).value("trading.dependency.up", dependency="redis") == 0
    finally:
        await unpause_redis(redis)
    assert (await gateway.get("/ready")).status_code == 200
    assert Snapshot(telemetry.metrics).value("trading.dependency.up", dependency="redis") == 1


@pytest.mark.usefixtures("clean_faults")
async def test_feed_stall_raises_staleness(
    service_settings: ServiceSettings, redis: aioredis.Redis, telemetry: Telemetry
) -> None:
    from dataclasses import replace

    from services.marketdata.app import create_app

    cfg = replace(service_settings, symbols=("FEEDA", "FEEDB"), feed_interval_s=0.05)
    app = create_app(cfg, telemetry_on=False)
    async with serve_asgi(app, "http://md") as client:

        def staleness() -> float:
            return Snapshot(telemetry.metrics).value(
                "trading.market_data.staleness", symbol="FEEDA"
            )

        await eventually(lambda: app.state.feed.connected)
        await eventually(lambda: staleness() < 0.5)
        reconnects0 = Snapshot(telemetry.metrics).value("trading.market_data.reconnects")
        await set_fault(redis, "feed_stall", 1.5)
        await eventually(lambda: staleness() >= 1.0)
        snap = Snapshot(telemetry.metrics)
        assert snap.value("trading.dependency.up", dependency="market_feed") == 0
        assert (await client.get("/api/v1/quotes")).json()["connected"] is False
        # The stall ends by itself (time-bounded); the feed reconnects.
        await eventually(lambda: staleness() < 0.5, timeout=5)
        snap = Snapshot(telemetry.metrics)
        assert snap.value("trading.market_data.reconnects") == reconnects0 + 1
        assert snap.value("trading.dependency.up", dependency="market_feed") == 1
