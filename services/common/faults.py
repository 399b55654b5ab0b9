"""Fault flags shared through Redis, so one command can reach every service.

A fault is a Redis key ``trading:fault:<name>`` holding JSON parameters and an absolute
deadline, with a matching TTL: Redis expires it on time, and the deadline keeps it
time-bounded inside a service even while Redis is unreachable. Services poll the flags in
the background (with instrumentation suppressed, so polling never produces spans) and read
them from memory on the hot path.

"Redis unavailable" cannot live in Redis itself; :func:`pause_redis` uses Redis's own
time-bounded ``CLIENT PAUSE`` instead, which makes every client's command block until the
pause ends (and so time out in the services).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from opentelemetry.instrumentation.utils import suppress_instrumentation

from services.common.tasks import cancel_and_wait

_log = logging.getLogger("services.faults")
PREFIX = "trading:fault:"

#: Fault name -> (parameter names with their defaults, what it does).
FAULTS: dict[str, tuple[dict[str, float], str]] = {
    "broker_spike": ({"delay_ms": 500.0, "fraction": 1.0}, "broker adds delay_ms to a fraction"),
    "broker_reject": ({"rate": 1.0}, "broker rejects this fraction of orders"),
    "broker_disconnect": ({}, "broker refuses connections"),
    "broker_slow_fills": ({"delay_ms": 300.0}, "every fill takes delay_ms longer"),
    "feed_stall": ({}, "market data feed stops publishing ticks"),
    "pg_slow": ({"delay_ms": 200.0}, "risk query sleeps delay_ms in Postgres (pg_sleep)"),
    "price_shock": ({"pct": 10.0}, "market data quotes every symbol pct percent lower"),
}


@dataclass(frozen=True)
class Fault:
    """One active fault: its parameters and when it ends (Unix time)."""

    name: str
    params: dict[str, float]
    until: float

    def active(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.until


def _check(name: str, params: dict[str, float]) -> dict[str, float]:
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
    defaults = FAULTS[name][0]
    unknown = set(params) - set(defaults)
    if unknown:
        raise ValueError(f"fault {name!r} takes {sorted(defaults) or 'no parameters'}, "
                         f"not {sorted(unknown)}")  # fmt: skip
    merged = {**defaults, **params}
    for key, value in merged.items():
        if (
            value < 0
            or (key in ("fraction", "rate") and value > 1)
            or (key == "pct" and value >= 100)
        ):
            raise ValueError(f"fault {name!r}: {key}={value} is out of range")
    return merged


async def set_fault(client: aioredis.Redis, name: str, duration_s: float, **params: float) -> Fault:
    """Activate ``name`` for ``duration_s`` seconds (replacing any earlier setting)."""
    if duration_s <= 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration_s}")
    fault = Fault(name, _check(name, params), time.time() + duration_s)
    payload = json.dumps({"params": fault.params, "until": fault.until})
    await client.set(PREFIX + name, payload, px=max(1, int(duration_s * 1000)))
    return fault


async def clear_faults(client: aioredis.Redis, name: str | None = None) -> list[str]:
    """Clear one fault (or all, and any Redis pause); return the names that were active."""
    names = [name] if name else list(FAULTS)
    keys = [PREFIX + n for n in names]
    present = [n for n, v in zip(names, await client.mget(keys), strict=True) if v is not None]
    await client.delete(*keys)
    return present


async def read_faults(client: aioredis.Redis) -> dict[str, Fault]:
    """The faults active right now."""
    names = list(FAULTS)
    values = await client.mget([PREFIX + n for n in names])
    out: dict[str, Fault] = {}
    for name, raw in zip(names, values, strict=True):
        if raw is None:
            continue
        try:
            data: dict[str, Any] = json.loads(raw)
            fault = Fault(name, {k: float(v) for k, v in data["params"].items()}, data["until"])
        except (ValueError, KeyError, TypeError):
            _log.warning("ignoring malformed fault flag %s=%r", name, raw)
            continue
        if fault.active():
            out[name] = fault
    return out


async def pause_redis(client: aioredis.Redis, duration_s: float) -> None:
    """Make Redis unavailable to every client for ``duration_s`` (``CLIENT PAUSE ... ALL``)."""
    if duration_s <= 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration_s}")
    await client.execute_command("CLIENT", "PAUSE", int(duration_s * 1000), "ALL")  # type: ignore[no-untyped-call]


async def unpause_redis(client: aioredis.Redis) -> None:
    """End a :func:`pause_redis` early."""
    await client.execute_command("CLIENT", "UNPAUSE")  # type: ignore[no-untyped-call]


class FaultWatcher:
    """Keeps an in-memory copy of the active faults, refreshed from Redis in the background."""

    def __init__(self, client: aioredis.Redis, interval_s: float = 0.2) -> None:
        self._client = client
        self._interval = interval_s
        self._faults: dict[str, Fault] = {}
        self._task: asyncio.Task[None] | None = None

    def get(self, name: str) -> Fault | None:
        """The fault if active now (deadline checked locally, Redis not consulted)."""
        fault = self._faults.get(name)
        return fault if fault is not None and fault.active() else None

    async def refresh(self) -> None:
        with suppress_instrumentation():
            self._faults = await read_faults(self._client)

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (aioredis.RedisError, OSError) as exc:
                # Keep the last known faults: their deadlines still bound them.
                _log.debug("fault refresh failed: %s", exc)
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fault-watcher")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
