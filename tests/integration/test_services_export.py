"""No lost orders when telemetry export fails: the gateway as a real process, OTLP pointed
at a port where nothing listens."""

from __future__ import annotations

import json
import signal
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from tests.fixtures.services import RunningBroker
from trading_otel_tools.procs import ManagedProcess, free_port, http_probe
from trading_otel_tools.servers.postgres import PostgresServer
from trading_otel_tools.servers.redis import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_orders_succeed_with_a_dead_collector(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    broker: RunningBroker,
    server_root: Path,
) -> None:
    port, dead = free_port(), free_port()
    env = {
        "OTEL_SERVICE_NAME": "execution-gateway",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{dead}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRIC_EXPORT_INTERVAL": "300",  # fail often while the orders run
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "TRADING_OTEL_SHUTDOWN_TIMEOUT": "2",
        "TRADING_OTEL_PG_DSN": postgres_server.dsn,
        "TRADING_OTEL_REDIS_URL": redis_server.url,
        "TRADING_OTEL_BROKER_URL": broker.url,
        "TRADING_OTEL_STALE_AFTER": "3600",
    }
    gateway = ManagedProcess(
        name="gateway-dead-collector",
        argv=[sys.executable, "-m", "services", "execution-gateway", "--port", str(port)],
        log_path=server_root / "gateway-dead-collector.log",
        ready=http_probe(f"http://127.0.0.1:{port}/ready"),
        env=env,
        ports=(port,),
    )
    gateway.start(60)
    ids = [f"dc-{uuid.uuid4().hex[:12]}" for _ in range(20)]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            r = aioredis.from_url(redis_server.url)
            await r.set("md:last:GOOG", json.dumps({"p": 170.0, "t": time.time()}))
            await r.aclose()
            statuses = []
            for cid in ids:
                resp = await client.post("/api/v1/orders", json={
                    "symbol": "GOOG", "side": "buy", "quantity": 1, "type": "market",
                    "client_order_id": cid})  # fmt: skip
                statuses.append((resp.status_code, resp.json()["status"]))
        assert statuses == [(201, "filled")] * 20
    finally:
        gateway.stop(timeout=20, sig=signal.SIGTERM)
    # It exited by itself on SIGTERM (uvicorn re-raises it after a graceful shutdown), not
    # by the SIGKILL that follows a hang: the bounded shutdown gave up on the dead collector.
    assert gateway.proc is not None
    assert gateway.proc.returncode in (0, -signal.SIGTERM), gateway.proc.returncode
    conn = await asyncpg.connect(postgres_server.dsn)
    try:
        filled = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE client_order_id = ANY($1) AND status = 'filled'", ids
        )
    finally:
        await conn.close()
    assert filled == 20
