"""The faults added for the alert triggers, on real servers: price shock, process pauses."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from services.common.config import ServiceSettings
from services.common.faults import clear_faults, set_fault
from tests.fixtures.services import Snapshot, Telemetry, serve_asgi
from trading_otel_tools.servers.postgres import PostgresServer
from trading_otel_tools.servers.redis import RedisServer
from trading_otel_tools.stack import StackConfig, clear_fault, inject_fault, list_faults
from trading_otel_tools.stack.faults import pause_component, paused_components, resume_component
from trading_otel_tools.stack.state import Entry, StateFile, start_ticks

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def eventually(check: Callable[[], object], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest_asyncio.fixture(loop_scope="session")
async def clean_faults(redis: aioredis.Redis, gateway: httpx.AsyncClient) -> AsyncIterator[None]:
    await clear_faults(redis)
    yield
    await clear_faults(redis)
    await gateway.post("/api/v1/circuit-breaker/reset")


# --- price shock ---------------------------------------------------------------------


@pytest.mark.usefixtures("clean_faults")
async def test_price_shock_gaps_quotes_down_and_the_pnl_follows(
    service_settings: ServiceSettings,
    gateway: httpx.AsyncClient,
    redis: aioredis.Redis,
    telemetry: Telemetry,
) -> None:
    from services.marketdata.app import create_app

    symbol = f"SHK{uuid.uuid4().hex[:4].upper()}"
    cfg = replace(service_settings, symbols=(symbol,), feed_interval_s=0.05)
    app = create_app(cfg, telemetry_on=False)
    async with serve_asgi(app, "http://md"):
        feed = app.state.feed

        async def quote() -> float:
            raw = await redis.get(f"md:last:{symbol}")
            return float(json.loads(raw)["p"]) if raw else 0.0

        await eventually(lambda: feed.connected)
        buy = {"symbol": symbol, "side": "buy", "quantity": 100, "type": "market",
               "client_order_id": f"shk-{uuid.uuid4().hex[:12]}"}  # fmt: skip
        assert (await gateway.post("/api/v1/orders", json=buy)).status_code == 201

        await set_fault(redis, "price_shock", 1.5, pct=20)
        await eventually(lambda: feed.shocked)
        await asyncio.sleep(0.2)  # a few ticks at the shocked price
        walk, quoted = feed.walk[symbol], await quote()
        assert abs(quoted / walk - 0.8) < 2e-3, (quoted, walk)
        rows = (await gateway.get("/api/v1/positions")).json()["positions"]
        row = next(r for r in rows if r["symbol"] == symbol)
        # Bought at the walk, now quoted 20% lower: the loss is about 20% of the position.
        assert -0.23 * 100 * walk < row["unrealized_pnl"] < -0.17 * 100 * walk, row

        # Time-bounded: the quotes gap back up to the walk by themselves.
        await eventually(lambda: not feed.shocked, timeout=5)
        await asyncio.sleep(0.2)
        assert abs(await quote() / feed.walk[symbol] - 1) < 2e-3
        sell = dict(buy, side="sell", client_order_id=f"shk-{uuid.uuid4().hex[:12]}")
        assert (await gateway.post("/api/v1/orders", json=sell)).status_code == 201


@pytest.mark.parametrize("pct", [-1.0, 100.0, 150.0])
async def test_price_shock_refuses_impossible_moves(redis: aioredis.Redis, pct: float) -> None:
    with pytest.raises(ValueError, match="out of range"):
        await set_fault(redis, "price_shock", 5, pct=pct)


# --- pauses: a hung process, ended by a detached resumer -----------------------------


def stack_with(tmp_path: Path, redis_server: RedisServer, name: str, pid: int) -> StackConfig:
    """A stack config whose state file names ``pid`` as the component ``name``."""
    config = StackConfig(tmp_path, ports={"redis": redis_server.port})
    ticks = start_ticks(pid)
    assert ticks is not None
    StateFile(config.state_path).put(
        Entry(name, pid, ticks, (), str(tmp_path / "log"), int(signal.SIGTERM))
    )
    return config


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(5)


async def test_a_pause_ends_by_itself_and_clear_ends_it_early(
    tmp_path: Path, redis_server: RedisServer, sleeper: subprocess.Popen[bytes]
) -> None:
    config = stack_with(tmp_path, redis_server, "orchestrator", sleeper.pid)
    assert "paused" in pause_component(config, "orchestrator", 1.0)
    assert proc_state(sleeper.pid) == "T"
    listed = await asyncio.to_thread(list_faults, config)
    assert listed["pause orchestrator"]["until"] > time.time()
    await eventually(lambda: proc_state(sleeper.pid) != "T", timeout=5)  # the resumer's SIGCONT
    await eventually(lambda: not paused_components(config, ended=True))

    pause_component(config, "orchestrator", 60)
    assert await asyncio.to_thread(clear_fault, config) == ["pause orchestrator"]
    assert proc_state(sleeper.pid) != "T"
    assert resume_component(config, "orchestrator") is False

    # A longer pause is not cut short by the resumer of an earlier, shorter one.
    pause_component(config, "orchestrator", 0.5)
    pause_component(config, "orchestrator", 3.0)
    await asyncio.sleep(1.5)
    assert proc_state(sleeper.pid) == "T"
    await eventually(lambda: proc_state(sleeper.pid) != "T", timeout=5)


@pytest.mark.usefixtures("clean_faults")
async def test_pg_down_makes_the_gateway_see_postgres_down_then_up(
    tmp_path: Path,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    gateway: httpx.AsyncClient,
    telemetry: Telemetry,
) -> None:
    assert postgres_server.process is not None and postgres_server.process.pid is not None
    config = stack_with(tmp_path, redis_server, "postgres", postgres_server.process.pid)
    try:
        said = await asyncio.to_thread(inject_fault, config, "pg-down", 4)
        assert "postgres paused" in said
        assert "pg-down" in await asyncio.to_thread(list_faults, config)
        ready = await gateway.get("/ready")  # the probe times out (2 s): Postgres hangs
        assert ready.status_code == 503
        assert ready.json()["dependencies"]["postgres"] is False
        assert ready.json()["dependencies"]["redis"] is True
        snap = Snapshot(telemetry.metrics)
        assert snap.value("trading.dependency.up", dependency="postgres") == 0
    finally:
        # Ends by itself after 4 s; wait for that rather than clearing.
        async def ready_again() -> bool:
            return (await gateway.get("/ready")).status_code == 200

        deadline = time.monotonic() + 15
        while not await ready_again():
            assert time.monotonic() < deadline, "postgres did not come back"
            await asyncio.sleep(0.2)
    assert Snapshot(telemetry.metrics).value("trading.dependency.up", dependency="postgres") == 1
    assert await asyncio.to_thread(clear_fault, config, "pg-down") == []
