"""Postgres access: a connection pool and idempotent SQL migrations."""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg
from asyncpg.pool import PoolConnectionProxy

_log = logging.getLogger("services.db")

#: Any constant works: it only has to be the same for every service applying migrations.
_MIGRATION_LOCK = 7_470_001


def migration_files() -> list[tuple[str, str]]:
    """``(version, sql)`` for every migration shipped in ``services/common/migrations``."""
    root = resources.files("services.common") / "migrations"
    files = sorted((p for p in root.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


async def migrate(conn: asyncpg.Connection | PoolConnectionProxy) -> list[str]:
    """Apply the migrations not yet applied, under an advisory lock; return their versions.

    Safe to call from several services starting at once: the lock serialises them and the
    ``schema_migrations`` table makes a second run a no-op.
    """
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
            _log.info("applied migration %s", version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Open a pool and bring the schema up to date."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, timeout=5)
    async with pool.acquire() as conn:
        await migrate(conn)
    return pool


class HealthProbe:
    """``SELECT 1`` on a connection of its own, so a busy pool never reads as "Postgres down"."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: asyncpg.Connection | None = None

    async def __call__(self) -> None:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.dsn, timeout=2)
        try:
            await self._conn.fetchval("SELECT 1")
        except Exception:
            conn, self._conn = self._conn, None
            conn.terminate()
            raise

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
