"""``trading-otel fault``: inject and clear faults in a running stack (through its Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from otel._internal.stack.config import StackConfig
from services.common import faults as _faults

#: CLI name -> stored fault name; ``redis-down`` is special (Redis cannot flag itself).
FAULT_NAMES: dict[str, str] = {
    "broker-spike": "broker_spike",
    "broker-reject": "broker_reject",
    "broker-disconnect": "broker_disconnect",
    "broker-slow-fills": "broker_slow_fills",
    "feed-stall": "feed_stall",
    "pg-slow": "pg_slow",
    "redis-down": "redis_down",
}


def _client(config: StackConfig) -> aioredis.Redis:
    return aioredis.from_url(config.redis_url, socket_connect_timeout=2, decode_responses=True)


async def _inject(
    config: StackConfig, name: str, duration_s: float, params: dict[str, float]
) -> str:
    if name not in FAULT_NAMES:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
    client = _client(config)
    try:
        if name == "redis-down":
            if params:
                raise ValueError("redis-down takes no parameters")
            await _faults.pause_redis(client, duration_s)
            return f"redis unavailable to every client for {duration_s:g}s (CLIENT PAUSE)"
        fault = await _faults.set_fault(client, FAULT_NAMES[name], duration_s, **params)
        shown = ", ".join(f"{k}={v:g}" for k, v in fault.params.items())
        return f"{name} active for {duration_s:g}s" + (f" ({shown})" if shown else "")
    finally:
        await client.aclose()


def inject_fault(config: StackConfig, name: str, duration_s: float, **params: float) -> str:
    """Activate a fault for ``duration_s`` seconds; returns a one-line description.

    Args:
        config: The running stack (its Redis carries the fault flags).
        name: One of :data:`FAULT_NAMES` (CLI spelling, e.g. ``broker-spike``).
        duration_s: The fault ends by itself after this many seconds.
        params: Fault parameters, e.g. ``delay_ms=400, fraction=0.5`` for ``broker-spike``.

    Raises:
        ValueError: Unknown fault, unknown parameter or value out of range.
        redis.exceptions.ConnectionError: The stack's Redis is not running.
    """
    return asyncio.run(_inject(config, name, duration_s, params))


async def _clear(config: StackConfig, name: str | None) -> list[str]:
    client = _client(config)
    try:
        if name is not None and name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
        cleared = []
        if name in (None, "redis-down"):
            await _faults.unpause_redis(client)
            if name == "redis-down":
                return ["redis-down"]
        stored = None if name is None else FAULT_NAMES[name]
        back = {v: k for k, v in FAULT_NAMES.items()}
        cleared += [back[n] for n in await _faults.clear_faults(client, stored)]
        return cleared
    finally:
        await client.aclose()


def clear_fault(config: StackConfig, name: str | None = None) -> list[str]:
    """Clear one fault, or every fault (and any Redis pause); returns those that were active."""
    return asyncio.run(_clear(config, name))


async def _list(config: StackConfig) -> dict[str, Any]:
    client = _client(config)
    try:
        active = await _faults.read_faults(client)
    finally:
        await client.aclose()
    back = {v: k for k, v in FAULT_NAMES.items()}
    return {back[n]: {"params": f.params, "until": f.until} for n, f in active.items()}


def list_faults(config: StackConfig) -> dict[str, Any]:
    """The faults active now: ``{name: {"params": ..., "until": unix_time}}``."""
    return asyncio.run(_list(config))
