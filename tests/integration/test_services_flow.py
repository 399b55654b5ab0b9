"""Signal model, orchestration cycle, linked order-event consumer, websocket quotes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import replace

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from opentelemetry.trace import SpanKind

from services.common.config import ServiceSettings
from services.marketdata.feed import history_key
from services.signals.model import ModelParams, decide, score
from tests.fixtures.services import Snapshot, Telemetry, serve_in_thread

pytestmark = pytest.mark.integration
session_loop = pytest.mark.asyncio(loop_scope="session")


def test_model_is_deterministic() -> None:
    params = ModelParams(window=5, threshold=0.25)
    low = [95.0, 100.0, 100.0, 100.0, 100.0]  # newest first: price dropped below the mean
    assert score(low, params) == score(list(low), params) > 0.25
    assert decide(score(low, params), params) == "buy"
    high = [105.0, 100.0, 100.0, 100.0, 100.0]
    assert decide(score(high, params), params) == "sell"
    assert decide(score([100.0] * 5, params), params) == "hold"
    assert score([100.0], params) == 0.0


async def seed_history(redis: aioredis.Redis, symbol: str, newest_first: list[float]) -> None:
    await redis.delete(history_key(symbol))
    await redis.rpush(history_key(symbol), *newest_first)
    await redis.set(f"md:last:{symbol}", json.dumps({"p": newest_first[0], "t": time.time()}))


@session_loop
async def test_signals_and_model_reload(
    signal_service: tuple[FastAPI, httpx.AsyncClient],
    redis: aioredis.Redis,
    telemetry: Telemetry,
) -> None:
    _, client = signal_service
    await seed_history(redis, "SIGA", [90.0, 100.0, 100.0, 100.0, 100.0])
    resp = await client.post("/api/v1/signals", json={"symbols": ["siga", "NOHIST"]})
    assert resp.status_code == 200, resp.text
    by_symbol = {s["symbol"]: s for s in resp.json()["signals"]}
    assert by_symbol["SIGA"]["side"] == "buy"
    assert by_symbol["NOHIST"] == {"symbol": "NOHIST", "score": 0.0, "side": "hold",
                                   "price": None, "samples": 0}  # fmt: skip
    assert (await client.post("/api/v1/signals", json={"symbols": []})).status_code == 422

    before = Snapshot(telemetry.metrics)
    info = (await client.post("/api/v1/model/reload")).json()
    after = Snapshot(telemetry.metrics)
    assert info["loaded"] is True and info["version"] == "meanrev-1"
    assert after.value("trading.model.reloads") == before.value("trading.model.reloads") + 1
    assert after.value("trading.model.loaded") == 1
    assert after.value("trading.signal.predictions") >= 2


@session_loop
async def test_consumer_span_is_linked_to_the_order_trace(
    orchestrator: httpx.AsyncClient,
    gateway: httpx.AsyncClient,
    redis: aioredis.Redis,
    telemetry: Telemetry,
) -> None:
    await redis.set("md:last:AAPL", json.dumps({"p": 190.0, "t": time.time()}))
    new = {"symbol": "AAPL", "side": "sell", "quantity": 1, "type": "market",
           "client_order_id": f"l-{uuid.uuid4().hex[:12]}"}  # fmt: skip
    body = (await gateway.post("/api/v1/orders", json=new)).json()
    order_trace = int(body["trace_id"], 16)
    place = next(
        s for s in telemetry.spans.get_finished_spans()
        if s.name == "order.place" and s.context.trace_id == order_trace
    )  # fmt: skip

    consumer = None
    for _ in range(100):
        consumer = next(
            (s for s in telemetry.spans.get_finished_spans()
             if s.kind == SpanKind.CONSUMER and s.attributes.get("trading.order.id") == body["id"]),
            None,
        )  # fmt: skip
        if consumer is not None:
            break
        await asyncio.sleep(0.05)
    assert consumer is not None, "the orchestrator never consumed the order event"
    assert consumer.name == "orders:events process"
    assert consumer.context.trace_id != order_trace  # its own trace...
    assert consumer.parent is None
    assert [(lk.context.trace_id, lk.context.span_id) for lk in consumer.links] == [
        (order_trace, place.context.span_id)  # ...linked to the order's span
    ]
    status = (await orchestrator.get("/api/v1/status")).json()
    assert status["events_handled"].get("filled", 0) >= 1


@session_loop
async def test_orchestration_cycle_places_orders(
    orchestrator: httpx.AsyncClient, redis: aioredis.Redis, telemetry: Telemetry
) -> None:
    # Every configured symbol gets a history that says "buy".
    for symbol in ("AAPL", "MSFT", "GOOG", "AMZN", "TSLA"):
        await seed_history(redis, symbol, [95.0, 100.0, 100.0, 100.0, 100.0, 100.0])
    before = Snapshot(telemetry.metrics)
    result = (await orchestrator.post("/api/v1/run")).json()
    after = Snapshot(telemetry.metrics)
    assert result["outcome"] == "success", result
    assert len(result["orders"]) == 5
    assert (
        after.value("trading.orchestration.runs", outcome="success")
        == before.value("trading.orchestration.runs", outcome="success") + 1
    )
    assert after.value("trading.heartbeat.timestamp") >= time.time() - 60
    assert (
        after.value("trading.orchestration.run.duration")
        == before.value("trading.orchestration.run.duration") + 1
    )


@session_loop
async def test_websocket_quotes(service_settings: ServiceSettings, telemetry: Telemetry) -> None:
    from websockets.asyncio.client import connect

    from services.marketdata.app import create_app

    cfg = replace(service_settings, symbols=("WSA", "WSB"), feed_interval_s=0.05)
    before = Snapshot(telemetry.metrics)
    with serve_in_thread(create_app(cfg, telemetry_on=False)) as url:
        ws_url = url.replace("http://", "ws://") + "/ws/quotes?symbols=wsb"
        async with connect(ws_url) as ws:
            quotes = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(3)]
            during = Snapshot(telemetry.metrics).value("trading.websocket.connections")
            assert during == before.value("trading.websocket.connections") + 1
        # The server notices the close at its next send (every ~50 ms here).
        for _ in range(100):
            after = Snapshot(telemetry.metrics)
            if after.value("trading.websocket.connections") == during - 1:
                break
            await asyncio.sleep(0.05)
    assert {q["s"] for q in quotes} == {"WSB"}
    sent = after.value("trading.websocket.messages") - before.value("trading.websocket.messages")
    assert sent >= 3
    assert after.value("trading.websocket.connections") == during - 1
