"""API keys on the real gateway and signal service: 401s, the counter, and no key leaks."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis as syncredis
import redis.asyncio as aioredis
from fastapi import FastAPI

from services.common.config import ServiceSettings
from services.marketdata.feed import history_key
from tests.fixtures.services import Snapshot, Telemetry, serve_asgi, serve_in_thread
from trading_otel_tools.servers.redis import RedisServer
from trading_otel_tools.stack.load import LoadReport, run_load

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

KEY = "gw-key-0123456789abcdef"
OTHER = "gw-key-fedcba9876543210"
WRONG = "guessed-key-not-ours-0001"
SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "TSLA")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def order(client_order_id: str | None = None) -> dict[str, object]:
    return {"symbol": "MSFT", "side": "buy", "quantity": 1, "type": "market",
            "client_order_id": client_order_id or f"a-{uuid.uuid4().hex[:12]}"}  # fmt: skip


def failures(telemetry: Telemetry, reason: str) -> float:
    return Snapshot(telemetry.metrics).value("trading.auth.failures", reason=reason)


@pytest.fixture(scope="module")
def locked_settings(gateway_settings: ServiceSettings) -> ServiceSettings:
    return replace(gateway_settings, api_keys=(KEY, OTHER), api_key=KEY)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def locked_gateway(
    telemetry: Telemetry, locked_settings: ServiceSettings, redis: aioredis.Redis
) -> AsyncIterator[httpx.AsyncClient]:
    """A second gateway, on the same Postgres, Redis and broker, that requires a key."""
    from services.gateway.app import create_app

    await redis.set("md:last:MSFT", json.dumps({"p": 410.0, "t": time.time()}))
    app = create_app(locked_settings, telemetry_on=False)
    async with serve_asgi(app, "http://locked-gateway") as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def locked_signals(
    telemetry: Telemetry, locked_settings: ServiceSettings
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    from services.signals.app import create_app

    app = create_app(locked_settings, telemetry_on=False)
    async with serve_asgi(app, "http://locked-signal") as client:
        yield app, client


async def test_an_order_without_a_good_key_is_refused_and_counted(
    locked_gateway: httpx.AsyncClient, telemetry: Telemetry
) -> None:
    missing0, invalid0 = failures(telemetry, "missing"), failures(telemetry, "invalid")
    coid = f"a-{uuid.uuid4().hex[:12]}"
    resp = await locked_gateway.post("/api/v1/orders", json=order(coid))
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert resp.json()["detail"].startswith("missing API key")
    for headers in (bearer(WRONG), {"Authorization": f"Basic {KEY}"}, {"Authorization": "Bearer"}):
        resp = await locked_gateway.post("/api/v1/orders", json=order(coid), headers=headers)
        assert resp.status_code == 401
        assert resp.json()["detail"].startswith("invalid API key")
    assert failures(telemetry, "missing") == missing0 + 1
    assert failures(telemetry, "invalid") == invalid0 + 3

    # Nothing of the refused attempts was stored: the same client_order_id is still free.
    resp = await locked_gateway.post("/api/v1/orders", json=order(coid), headers=bearer(KEY))
    assert resp.status_code == 201, resp.text
    resp = await locked_gateway.post("/api/v1/orders", json=order(), headers=bearer(OTHER))
    assert resp.status_code == 201, resp.text
    assert failures(telemetry, "invalid") == invalid0 + 3


async def test_every_api_route_is_guarded_but_not_the_probes(
    locked_gateway: httpx.AsyncClient, telemetry: Telemetry
) -> None:
    routes = [("GET", "/api/v1/positions"), ("GET", "/api/v1/circuit-breaker"),
              ("POST", "/api/v1/circuit-breaker/reset"),
              ("GET", f"/api/v1/orders/{uuid.uuid4()}")]  # fmt: skip
    for method, path in routes:
        assert (await locked_gateway.request(method, path)).status_code == 401, path
        ok = await locked_gateway.request(method, path, headers=bearer(KEY))
        assert ok.status_code in (200, 404), (path, ok.text)
    assert (await locked_gateway.get("/health")).status_code == 200
    assert (await locked_gateway.get("/ready")).status_code == 200


async def test_authentication_comes_before_validation(
    locked_gateway: httpx.AsyncClient, telemetry: Telemetry
) -> None:
    before = Snapshot(telemetry.metrics).value("trading.order.rejections", reason="validation")
    bad = {"symbol": "msft!", "side": "hold", "quantity": -1, "client_order_id": "x"}
    assert (await locked_gateway.post("/api/v1/orders", json=bad)).status_code == 401
    after = Snapshot(telemetry.metrics).value("trading.order.rejections", reason="validation")
    assert after == before  # an anonymous caller learns nothing and costs no rejection
    resp = await locked_gateway.post("/api/v1/orders", json=bad, headers=bearer(KEY))
    assert resp.status_code == 422


async def test_no_key_reaches_spans_logs_or_metrics(
    locked_gateway: httpx.AsyncClient, telemetry: Telemetry
) -> None:
    telemetry.clear()
    await locked_gateway.post("/api/v1/orders", json=order(), headers=bearer(WRONG))
    await locked_gateway.post("/api/v1/orders", json=order(), headers=bearer(KEY))
    spans = telemetry.spans.get_finished_spans()
    server = [s for s in spans if s.name == "POST /api/v1/orders"]
    assert sorted(s.attributes.get("http.response.status_code") for s in server)[-2:] == [201, 401]
    text = json.dumps([dict(s.attributes or {}) for s in spans], default=str)
    logs = telemetry.logs.get_finished_logs()
    text += json.dumps([(str(r.log_record.body), dict(r.log_record.attributes or {}))
                        for r in logs], default=str)  # fmt: skip
    refused = [r for r in logs if "refused POST /api/v1/orders" in str(r.log_record.body)]
    assert refused and "invalid API key" in str(refused[-1].log_record.body)
    snap = Snapshot(telemetry.metrics)
    text += json.dumps([dict(p.attributes) for m in snap.metrics for p in m.data.data_points])
    assert WRONG not in text and KEY not in text


async def seed_buy_histories(redis: aioredis.Redis) -> None:
    for symbol in SYMBOLS:
        await redis.delete(history_key(symbol))
        await redis.rpush(history_key(symbol), 95.0, 100.0, 100.0, 100.0, 100.0, 100.0)
        await redis.set(f"md:last:{symbol}", json.dumps({"p": 95.0, "t": time.time()}))


@pytest.mark.parametrize(("key", "outcome"), [(KEY, "success"), (WRONG, "failure")])
async def test_the_orchestrator_presents_its_key(
    locked_gateway: httpx.AsyncClient,
    locked_signals: tuple[FastAPI, httpx.AsyncClient],
    locked_settings: ServiceSettings,
    redis: aioredis.Redis,
    telemetry: Telemetry,
    key: str,
    outcome: str,
) -> None:
    from services.orchestrator.app import create_app

    await seed_buy_histories(redis)
    mounts: dict[str, httpx.AsyncBaseTransport] = {
        "http://gateway": locked_gateway._transport,
        "http://signal": locked_signals[1]._transport,
    }
    cfg = replace(locked_settings, gateway_url="http://gateway", signal_url="http://signal",
                  api_key=key)  # fmt: skip
    async with serve_asgi(create_app(cfg, telemetry_on=False, http_mounts=mounts), "http://o") as o:
        result = (await o.post("/api/v1/run")).json()
    errors = result["errors"]
    assert result["outcome"] == outcome, result
    if outcome == "success":
        assert [p["status"] for p in result["orders"]] == ["filled"] * len(SYMBOLS)
    else:
        assert errors == [f"order {s}: HTTP 401" for s in SYMBOLS]


async def test_model_unload_needs_a_key_and_reload_brings_it_back(
    locked_signals: tuple[FastAPI, httpx.AsyncClient], telemetry: Telemetry
) -> None:
    _, client = locked_signals
    assert (await client.post("/api/v1/model/unload")).status_code == 401
    assert (await client.post("/api/v1/model/reload")).status_code == 401
    assert (await client.get("/api/v1/model")).json()["loaded"] is True  # reading is open

    info = (await client.post("/api/v1/model/unload", headers=bearer(KEY))).json()
    assert info["loaded"] is False and info["version"] is None
    assert Snapshot(telemetry.metrics).value("trading.model.loaded") == 0
    resp = await client.post("/api/v1/signals", json={"symbols": ["AAPL"]})
    assert resp.status_code == 503 and "not loaded" in resp.json()["detail"]

    info = (await client.post("/api/v1/model/reload", headers=bearer(KEY))).json()
    assert info["loaded"] is True
    assert Snapshot(telemetry.metrics).value("trading.model.loaded") == 1
    assert (await client.post("/api/v1/signals", json={"symbols": ["AAPL"]})).status_code == 200


async def test_without_keys_the_api_stays_open(
    gateway: httpx.AsyncClient,
    signal_service: tuple[FastAPI, httpx.AsyncClient],
    redis: aioredis.Redis,
) -> None:
    await redis.set("md:last:MSFT", json.dumps({"p": 410.0, "t": time.time()}))
    assert (await gateway.post("/api/v1/orders", json=order())).status_code == 201
    _, client = signal_service
    try:
        assert (await client.post("/api/v1/model/unload")).json()["loaded"] is False
    finally:
        assert (await client.post("/api/v1/model/reload")).json()["loaded"] is True


async def test_the_load_generator_presents_its_key(
    locked_settings: ServiceSettings,
    redis_server: RedisServer,
    telemetry: Telemetry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.gateway.app import create_app

    client = syncredis.Redis.from_url(redis_server.url)
    for symbol in SYMBOLS:
        client.set(f"md:last:{symbol}", json.dumps({"p": 100.0, "t": time.time()}))
    client.close()
    with serve_in_thread(create_app(locked_settings, telemetry_on=False)) as url:

        async def load(**kw: Any) -> LoadReport:  # run_load owns its event loop
            return await asyncio.to_thread(run_load, rate=20, duration_s=0.5, gateway_url=url, **kw)

        ok = await load(api_key=KEY)
        assert ok.sent == ok.accepted > 0 and ok.errors == 0
        bad = await load(api_key=WRONG)
        assert bad.errors == bad.sent > 0 and bad.accepted == 0
        anonymous = await load(api_key="")
        assert anonymous.errors == anonymous.sent > 0
        # By default the key comes from the environment, as the stack's services get it.
        monkeypatch.delenv("TRADING_OTEL_API_KEY", raising=False)
        monkeypatch.setenv("TRADING_OTEL_API_KEYS", f"{OTHER},{KEY}")
        from_env = await load()
        assert from_env.sent == from_env.accepted > 0
