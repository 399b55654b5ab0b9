"""``trading-otel load``: an open-loop order generator with a client-side latency summary.

Open loop: orders are sent on a fixed schedule whatever the answers, so a slow gateway
shows up as latency (and in-flight requests) instead of silently lowering the rate.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from trading_otel_tools.stack.config import StackConfig
from trading_otel_tools.stack.manager import StackError

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "TSLA")


@dataclass(frozen=True)
class Spike:
    """A broker latency spike injected during the run."""

    delay_ms: float
    at_s: float
    for_s: float
    fraction: float = 1.0


@dataclass
class LoadReport:
    """Counts and client-side latencies (seconds) of one run."""

    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    rejections: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile ``q`` in [0, 100] of the latencies, or None without data."""
        if not self.latencies:
            return None
        data = sorted(self.latencies)
        rank = max(1, min(len(data), round(q / 100 * len(data) + 0.5)))
        return data[rank - 1]

    def as_dict(self) -> dict[str, object]:
        return {
            "sent": self.sent, "accepted": self.accepted, "rejected": self.rejected,
            "errors": self.errors, "rejections": dict(self.rejections),
            "p50_ms": _ms(self.percentile(50)), "p95_ms": _ms(self.percentile(95)),
            "p99_ms": _ms(self.percentile(99)), "elapsed_s": round(self.elapsed_s, 2),
            "throughput_per_s": round(self.sent / self.elapsed_s, 1) if self.elapsed_s else 0.0,
        }  # fmt: skip


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


async def _one(
    client: httpx.AsyncClient, url: str, body: dict[str, object], rep: LoadReport
) -> None:
    start = time.perf_counter()
    try:
        resp = await client.post(url, json=body)
        status = resp.json().get("status") if resp.headers.get("content-type", "").startswith(
            "application/json") else None  # fmt: skip
    except (httpx.HTTPError, ValueError):
        rep.errors += 1
        return
    rep.latencies.append(time.perf_counter() - start)
    if resp.status_code in (200, 201) and status == "filled":
        rep.accepted += 1
    elif resp.status_code == 200 and status == "rejected":
        rep.rejected += 1
        reason = str(resp.json().get("rejection_reason"))
        rep.rejections[reason] = rep.rejections.get(reason, 0) + 1
    else:
        rep.errors += 1


async def _run(
    gateway_url: str,
    rate: float,
    duration_s: float,
    symbols: tuple[str, ...],
    on_tick: Callable[[float], None] | None,
    on_spike: Callable[[Spike], None] | None,
    spike: Spike | None,
    seed: int,
    api_key: str | None,
) -> LoadReport:
    rep = LoadReport()
    rng = random.Random(seed)
    url = gateway_url.rstrip("/") + "/api/v1/orders"
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    tasks: set[asyncio.Task[None]] = set()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    async with httpx.AsyncClient(timeout=30, limits=limits, headers=headers) as client:
        start = time.perf_counter()
        spiked = spike is None
        for i in itertools.count():
            due = start + i / rate
            if due - start >= duration_s:
                break
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            if not spiked and spike is not None and time.perf_counter() - start >= spike.at_s:
                spiked = True
                if on_spike is not None:
                    on_spike(spike)
            body: dict[str, object] = {
                "symbol": rng.choice(symbols), "side": rng.choice(("buy", "sell")),
                "quantity": rng.randint(1, 20), "type": "market",
                "client_order_id": f"load-{uuid.uuid4().hex[:20]}",
            }  # fmt: skip
            rep.sent += 1
            task = asyncio.create_task(_one(client, url, body, rep))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if on_tick is not None:
                on_tick(min(duration_s, time.perf_counter() - start))
        if tasks:
            await asyncio.gather(*tasks)
        rep.elapsed_s = time.perf_counter() - start
    return rep


def run_load(
    config: StackConfig | None = None,
    *,
    rate: float,
    duration_s: float,
    gateway_url: str | None = None,
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS,
    spike: Spike | None = None,
    on_tick: Callable[[float], None] | None = None,
    seed: int = 1,
    api_key: str | None = None,
) -> LoadReport:
    """Send ``rate`` orders per second for ``duration_s`` seconds to the gateway.

    Args:
        config: The stack (gives the gateway URL and, for a spike, its Redis).
        rate: Orders per second (> 0).
        duration_s: Length of the run in seconds (> 0).
        gateway_url: Overrides the stack's gateway URL.
        symbols: Symbols to trade, chosen at random (seeded).
        spike: A broker latency spike injected ``spike.at_s`` seconds into the run.
        on_tick: Called with the elapsed seconds after each order is sent (progress bars).
        seed: Seed of the order generator: the same seed sends the same orders.
        api_key: Sent as ``Authorization: Bearer``; by default the stack's own key
            (``config.api_key``), else ``TRADING_OTEL_API_KEY``, else the first of
            ``TRADING_OTEL_API_KEYS`` (what the stack's gateway accepts), else none.
    """
    if rate <= 0 or duration_s <= 0:
        raise ValueError(f"rate and duration must be > 0, got rate={rate}, duration={duration_s}")
    if config is None and (gateway_url is None or spike is not None):
        raise ValueError("pass the stack config (or gateway_url, without a spike)")
    url = gateway_url or (config.url("execution-gateway") if config else "")
    on_spike = None
    if spike is not None:
        from trading_otel_tools.stack.faults import inject_fault

        assert config is not None
        cfg = config

        def on_spike(s: Spike) -> None:
            # Runs inside the load's event loop: hand the blocking Redis call to a thread.
            import threading

            threading.Thread(
                target=inject_fault,
                args=(cfg, "broker-spike", s.for_s),
                kwargs={"delay_ms": s.delay_ms, "fraction": s.fraction},
                daemon=True,
            ).start()

    if api_key is None and config is not None and config.api_key:
        api_key = config.api_key
    if api_key is None:
        from services.common.auth import client_key

        api_key = client_key(os.environ)
    return asyncio.run(
        _run(url, rate, duration_s, symbols, on_tick, on_spike, spike, seed, api_key)
    )


def wait_until_filled(config: StackConfig, *, attempts: int = 100, pause_s: float = 0.2) -> None:
    """Send a few orders until one fills: market data has given the symbols their prices.

    Raises:
        StackError: when no order filled after ``attempts`` short bursts.
    """
    for _ in range(attempts):
        if run_load(config, rate=5, duration_s=0.4).accepted:
            return
        time.sleep(pause_s)
    raise StackError("the gateway filled no order: no prices from market-data?")
