"""asyncpg and redis spans against real servers: statements and keys without values."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.trace import SpanKind, StatusCode

from otel._internal.instrumentation import _redis_request_hook, instrument_asyncpg
from tests.fixtures.lib import MemoryTelemetry, memory_telemetry

pytestmark = pytest.mark.integration

SECRETS = ("ACC-9931", "4217", "101.25", "abc-secret")


def all_values(span: Any) -> str:
    parts = [str(v) for v in (span.attributes or {}).values()]
    for event in span.events:
        parts += [str(v) for v in (event.attributes or {}).values()]
    return " ".join(parts)


@pytest.fixture
def mt() -> Iterator[MemoryTelemetry]:
    t = memory_telemetry()
    undo = instrument_asyncpg(t.telemetry.tracer_provider, t.telemetry.meter_provider)
    try:
        yield t
    finally:
        undo()
        t.telemetry.shutdown(5)


@pytest.fixture
async def conn(postgres_server: Any) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(postgres_server.dsn)
    try:
        yield c
    finally:
        await c.close()


async def test_statements_carry_no_literals(mt: MemoryTelemetry, conn: asyncpg.Connection) -> None:
    await conn.execute("CREATE TEMP TABLE orders (id int PRIMARY KEY, account text, px numeric)")
    await conn.execute("INSERT INTO orders VALUES (4217, 'ACC-9931', 101.25)")
    row = await conn.fetchrow("SELECT account FROM orders WHERE id = 4217 AND px >= 101.25")
    assert row is not None and row["account"] == "ACC-9931"
    assert await conn.fetchval("SELECT px FROM orders WHERE id = $1", 4217) is not None
    stmt = await conn.prepare("SELECT count(*) FROM orders WHERE account = 'ACC-9931'")
    assert await stmt.fetchval() == 1
    spans = mt.spans.get_finished_spans()
    texts = [s.attributes["db.query.text"] for s in spans]
    assert "INSERT INTO orders VALUES (?, ?, ?)" in texts
    assert "SELECT account FROM orders WHERE id = ? AND px >= ?" in texts
    assert "SELECT px FROM orders WHERE id = $1" in texts
    assert "SELECT count(*) FROM orders WHERE account = ?" in texts
    for span in spans:
        assert span.kind == SpanKind.CLIENT
        assert span.attributes["db.system.name"] == "postgresql"
        assert not any(secret in all_values(span) for secret in SECRETS), all_values(span)
    assert {s.name.split()[0] for s in spans} >= {"CREATE", "INSERT", "SELECT"}
    (point,) = {p.count: p for p in mt.points("db.client.operation.duration")
                if p.attributes.get("db.operation.name") == "INSERT"}.values()  # fmt: skip
    assert max(point.explicit_bounds) <= 10  # seconds


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'abc-secret'::int",
        "INSERT INTO uniq VALUES ('ACC-9931'), ('ACC-9931')",
    ],
)
async def test_errors_are_recorded_without_values(
    mt: MemoryTelemetry, conn: asyncpg.Connection, sql: str
) -> None:
    await conn.execute("CREATE TEMP TABLE uniq (account text PRIMARY KEY)")
    with pytest.raises(asyncpg.PostgresError) as raised:
        await conn.execute(sql)
    span = mt.spans.get_finished_spans()[-1]
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == type(raised.value).__qualname__
    assert span.attributes["db.response.status_code"] == raised.value.sqlstate
    (event,) = span.events
    assert event.attributes["exception.message"]
    assert not any(secret in all_values(span) for secret in SECRETS), all_values(span)


async def test_pool_queries_are_traced_once(mt: MemoryTelemetry, postgres_server: Any) -> None:
    pool = await asyncpg.create_pool(postgres_server.dsn, min_size=1, max_size=1)
    try:
        assert await pool.fetchval("SELECT 40 + 2") == 42
    finally:
        await pool.close()
    texts = [s.attributes["db.query.text"] for s in mt.spans.get_finished_spans()]
    assert texts == ["SELECT ? + ?"]


async def test_pool_release_reset_is_not_traced(mt: MemoryTelemetry, postgres_server: Any) -> None:
    # Every release runs the connection's reset query; it is housekeeping, not a span.
    pool = await asyncpg.create_pool(postgres_server.dsn, min_size=1, max_size=1)
    try:
        for _ in range(3):
            async with pool.acquire() as conn:
                assert conn.get_reset_query()  # the release below really resets
                assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL statement_timeout = 5000")
    finally:
        await pool.close()
    spans = mt.spans.get_finished_spans()
    texts = [s.attributes["db.query.text"] for s in spans]
    assert texts == ["SELECT $1::int + ?"] * 3 + [
        "BEGIN;",
        "SET LOCAL statement_timeout = ?",
        "COMMIT;",
    ]
    (point,) = [p for p in mt.points("db.client.operation.duration")
                if p.attributes["db.operation.name"] == "SELECT"]  # fmt: skip
    assert point.count == 3  # no reset statement timed either


async def test_rollback_of_a_leaked_transaction_is_still_traced(
    mt: MemoryTelemetry, postgres_server: Any
) -> None:
    pool = await asyncpg.create_pool(postgres_server.dsn, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")  # left open: the release rolls it back
    finally:
        await pool.close()
    texts = [s.attributes["db.query.text"] for s in mt.spans.get_finished_spans()]
    assert texts == ["BEGIN", "ROLLBACK"]


async def test_redis_spans_have_command_and_key_shape_only(redis_server: Any) -> None:
    t = memory_telemetry()
    client = aioredis.from_url(redis_server.url)
    RedisInstrumentor.instrument_client(
        client, tracer_provider=t.telemetry.tracer_provider, request_hook=_redis_request_hook
    )
    try:
        await client.set("position:ACC9931:AAPL", "4217")
        assert await client.get("position:ACC9931:AAPL") == b"4217"
    finally:
        await client.aclose()
        t.telemetry.shutdown(5)
    spans = [s for s in t.spans.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert [s.name for s in spans] == ["SET", "GET"]
    for span in spans:
        assert span.attributes["db.redis.key_shape"] == "position:?:AAPL"
        values = all_values(span)
        assert "4217" not in values and "ACC9931" not in values, values
