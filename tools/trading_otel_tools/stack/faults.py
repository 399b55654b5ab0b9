"""``trading-otel fault``: inject and clear faults in a running stack.

Most faults are flags in the stack's Redis, obeyed by the services. Two kinds act on the
servers themselves: ``redis-down`` pauses Redis's clients (``CLIENT PAUSE``), and a
*pause* (``pg-down`` is the pause of Postgres) stops a stack process with SIGSTOP and
continues it with SIGCONT when it ends. A paused process keeps its sockets open and
answers nothing, as a hung server or a network partition does: clients time out. The
SIGCONT comes from a small detached process, so the pause ends on time even if the caller
exits; ``clear`` ends it early. ``redis-down`` only ends by itself: a paused Redis holds
every new connection's first command, the one that would unpause it included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import redis.asyncio as aioredis

from trading_otel_tools import home
from trading_otel_tools.stack.config import StackConfig
from trading_otel_tools.stack.state import Entry, StateFile


def _services_faults() -> ModuleType:
    """The services' own fault flags (``services.common.faults``), from the checkout."""
    return home.checkout_module("services.common.faults")


#: CLI name -> stored fault name; ``redis-down`` and ``pg-down`` are special: they act on
#: the servers, not through a flag (Redis cannot flag itself, Postgres is paused).
FAULT_NAMES: dict[str, str] = {
    "broker-spike": "broker_spike",
    "broker-reject": "broker_reject",
    "broker-disconnect": "broker_disconnect",
    "broker-slow-fills": "broker_slow_fills",
    "feed-stall": "feed_stall",
    "pg-slow": "pg_slow",
    "price-shock": "price_shock",
    "redis-down": "redis_down",
    "pg-down": "pg_down",
}

#: Faults that are the pause of one stack component.
PAUSE_FAULTS: dict[str, str] = {"pg-down": "postgres"}

#: Runs detached (stdlib only): at the deadline, SIGCONT the process tree unless the
#: pause was cleared, extended by a later pause, or the pid is no longer the one paused.
#: Its tree walk is :func:`_signal_tree`'s, repeated here to keep it import-free.
_RESUMER = r"""
import json, os, signal, sys, time
marker, pid, ticks, until = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
time.sleep(max(0.0, until - time.time()))
def stat(p):
    with open(f"/proc/{p}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()
try:
    with open(marker) as f:
        if float(json.load(f)["until"]) > until + 1e-3:
            sys.exit(0)
    if stat(pid)[19] == ticks:
        os.killpg(pid, signal.SIGCONT)
        tree, parents = {pid}, {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    parents[int(d)] = int(stat(d)[1])
                except (OSError, IndexError, ValueError):
                    pass
        while True:
            more = {c for c, pp in parents.items() if pp in tree} - tree
            if not more:
                break
            tree |= more
        for p in tree:
            try:
                os.kill(p, signal.SIGCONT)
            except OSError:
                pass
    os.remove(marker)
except (OSError, ValueError, KeyError, IndexError):
    pass
"""

#: Handles of the resumers started by this process, kept so that dropping one never
#: warns that its child still runs (the resumer outlives the call on purpose).
_RESUMERS: list[subprocess.Popen[bytes]] = []


def _marker(config: StackConfig, component: str) -> Path:
    return config.var_dir / "faults" / f"pause-{component}.json"


def _running(config: StackConfig, component: str) -> Entry:
    entry = StateFile(config.state_path).load().get(component)
    if entry is None or not entry.ours():
        raise ValueError(
            f"{component} is not running in the stack at {config.var_dir} "
            "(`trading-otel status` lists what is)"
        )
    return entry


def _descendants(pid: int) -> set[int]:
    """``pid`` and every process below it (by parent pid, read from ``/proc``)."""
    parents: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents[int(d)] = int(
                    Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1]
                )
    tree = {pid}
    while more := {c for c, p in parents.items() if p in tree} - tree:
        tree |= more
    return tree


def _signal_tree(pid: int, sig: int) -> None:
    """Signal ``pid``'s process group, then every descendant: Postgres's children each
    start a session of their own, so the group alone would miss the backends."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    for p in _descendants(pid):  # listed after the group stopped: no new ones fork
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, sig)


def pause_component(config: StackConfig, component: str, duration_s: float) -> str:
    """Stop one stack process (SIGSTOP to its process group) for ``duration_s`` seconds.

    Every process of the component stops (for Postgres: the postmaster and each backend).
    It keeps its listening sockets, so clients connect and then wait: scrapes, queries
    and health checks time out, as with a hung server or a partitioned network. A
    detached resumer sends SIGCONT at the deadline; :func:`resume_component` or
    :func:`clear_fault` ends it early.

    Args:
        config: The running stack (its state file names the processes).
        component: A component name as ``trading-otel status`` shows it.
        duration_s: The pause ends by itself after this many seconds.

    Raises:
        ValueError: Non-positive duration, or the component is not running in this stack.
    """
    if duration_s <= 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration_s}")
    entry = _running(config, component)
    until = time.time() + duration_s
    marker = _marker(config, component)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"until": until, "pid": entry.pid}))
    _signal_tree(entry.pid, signal.SIGSTOP)
    argv = [sys.executable, "-c", _RESUMER, str(marker), str(entry.pid),
            str(entry.start_ticks), repr(until)]  # fmt: skip
    quiet = subprocess.DEVNULL
    resumer = subprocess.Popen(
        argv, stdin=quiet, stdout=quiet, stderr=quiet, start_new_session=True
    )
    _RESUMERS.append(resumer)
    return f"{component} paused (SIGSTOP, pid {entry.pid}) for {duration_s:g}s"


def resume_component(config: StackConfig, component: str) -> bool:
    """End a pause now (SIGCONT); True if ``component`` had been paused."""
    marker = _marker(config, component)
    paused = marker.exists()
    entry = StateFile(config.state_path).load().get(component)
    if entry is not None and entry.ours():
        _signal_tree(entry.pid, signal.SIGCONT)
    marker.unlink(missing_ok=True)
    return paused


def paused_components(config: StackConfig, *, ended: bool = False) -> dict[str, float]:
    """Components paused now, with the time (Unix) each pause ends; ``ended=True`` also
    lists pauses past their end whose resumer has not (yet) removed the marker."""
    out: dict[str, float] = {}
    for path in sorted((config.var_dir / "faults").glob("pause-*.json")):
        try:
            until = float(json.loads(path.read_text())["until"])
        except (OSError, ValueError, KeyError):
            until = 0.0
        if ended or until > time.time():
            out[path.stem.removeprefix("pause-")] = until
    return out


def _pause_name(component: str) -> str:
    back = {c: n for n, c in PAUSE_FAULTS.items()}
    return back.get(component, f"pause {component}")


def _client(config: StackConfig) -> aioredis.Redis:
    return aioredis.from_url(config.redis_url, socket_connect_timeout=2, decode_responses=True)


async def _inject(
    config: StackConfig, name: str, duration_s: float, params: dict[str, float]
) -> str:
    if name not in FAULT_NAMES:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
    if name in PAUSE_FAULTS:
        if params:
            raise ValueError(f"{name} takes no parameters")
        return pause_component(config, PAUSE_FAULTS[name], duration_s)
    client = _client(config)
    try:
        if name == "redis-down":
            if params:
                raise ValueError("redis-down takes no parameters")
            await _services_faults().pause_redis(client, duration_s)
            return f"redis unavailable to every client for {duration_s:g}s (CLIENT PAUSE)"
        fault = await _services_faults().set_fault(client, FAULT_NAMES[name], duration_s, **params)
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
    if name is not None and name not in FAULT_NAMES:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
    if name in PAUSE_FAULTS:
        return [name] if resume_component(config, PAUSE_FAULTS[name]) else []
    # Pauses first: they must end even when Redis is the one unreachable.
    cleared = []
    if name is None:
        for component in paused_components(config, ended=True):
            if resume_component(config, component):
                cleared.append(_pause_name(component))
    client = _client(config)
    try:
        if name in (None, "redis-down"):
            await _services_faults().unpause_redis(client)
            if name == "redis-down":
                return ["redis-down"]
        stored = None if name is None else FAULT_NAMES[name]
        back = {v: k for k, v in FAULT_NAMES.items()}
        cleared += [back[n] for n in await _services_faults().clear_faults(client, stored)]
        return cleared
    finally:
        await client.aclose()


def clear_fault(config: StackConfig, name: str | None = None) -> list[str]:
    """Clear one fault, or every fault (with any Redis pause and paused process); returns
    those that were active."""
    return asyncio.run(_clear(config, name))


async def _list(config: StackConfig) -> dict[str, Any]:
    client = _client(config)
    try:
        active = await _services_faults().read_faults(client)
    finally:
        await client.aclose()
    back = {v: k for k, v in FAULT_NAMES.items()}
    out: dict[str, Any] = {
        back[n]: {"params": f.params, "until": f.until} for n, f in active.items()
    }
    for component, until in paused_components(config).items():
        out[_pause_name(component)] = {"params": {}, "until": until}
    return out


def list_faults(config: StackConfig) -> dict[str, Any]:
    """The faults active now: ``{name: {"params": ..., "until": unix_time}}``."""
    return asyncio.run(_list(config))
