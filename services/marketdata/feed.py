"""The simulated feed: a seeded random walk per symbol, written to Redis.

Each tick sets ``md:last:<SYM>`` (what the gateway prices against), pushes onto the
bounded history ``md:hist:<SYM>`` (what the signal model reads) and publishes on
``md:ticks`` (what websocket clients receive). The ``feed_stall`` fault stops the ticks;
staleness keeps being measured, so it climbs, and a reconnect is counted when the feed
comes back. The ``price_shock`` fault quotes every symbol ``pct`` percent below its walk
(a gap down) while it lasts; the walk goes on underneath, so prices gap back up after it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import zlib

import redis.asyncio as aioredis
from opentelemetry.instrumentation.utils import suppress_instrumentation

from services.common.faults import FaultWatcher
from services.common.tasks import cancel_and_wait
from services.common.telemetry import meters

_log = logging.getLogger("services.marketdata.feed")
TICKS_CHANNEL = "md:ticks"
HISTORY_LEN = 64
#: Starting prices for well-known symbols; others start at 100.
START_PRICES = {"AAPL": 190.0, "MSFT": 410.0, "GOOG": 170.0, "AMZN": 180.0, "TSLA": 240.0}


def history_key(symbol: str) -> str:
    return f"md:hist:{symbol}"


class Feed:
    """Publishes ticks every ``interval_s`` for ``symbols`` unless stalled by a fault."""

    def __init__(
        self,
        client: aioredis.Redis,
        symbols: tuple[str, ...],
        interval_s: float,
        faults: FaultWatcher,
        seed: int = 7,
    ) -> None:
        self.client = client
        self.symbols = symbols
        self.interval_s = interval_s
        self.faults = faults
        # One generator per symbol, seeded from its name: the same walk every run.
        self.rngs = {s: random.Random(seed ^ zlib.crc32(s.encode())) for s in symbols}
        self.walk = {s: START_PRICES.get(s, 100.0) for s in symbols}
        #: The last price published per symbol (the walk, shocked while a shock lasts).
        self.prices = dict(self.walk)
        self.shocked = False
        self.last_tick: dict[str, float] = {}
        self.connected = False
        self.started = time.time()
        self._task: asyncio.Task[None] | None = None

    def staleness(self, now: float | None = None) -> dict[str, float]:
        """Seconds since each symbol's last tick (since start for symbols never ticked)."""
        now = time.time() if now is None else now
        return {s: now - self.last_tick.get(s, self.started) for s in self.symbols}

    def _next_price(self, symbol: str, factor: float = 1.0) -> float:
        step = self.rngs[symbol].gauss(0, 0.0008)
        self.walk[symbol] = max(0.01, self.walk[symbol] * (1 + step))
        self.prices[symbol] = round(max(0.01, self.walk[symbol] * factor), 4)
        return self.prices[symbol]

    def _shock_factor(self) -> float:
        shock = self.faults.get("price_shock")
        factor = 1.0 if shock is None else 1 - shock.params["pct"] / 100
        if (shock is not None) != self.shocked:
            self.shocked = shock is not None
            if shock is not None:
                _log.warning("price shock: quoting every symbol %g%% lower", shock.params["pct"])
            else:
                _log.warning("price shock over: quoting the walk again")
        return factor

    async def tick(self) -> None:
        """Publish one tick for every symbol."""
        now = time.time()
        factor = self._shock_factor()
        pipe = self.client.pipeline(transaction=False)
        for symbol in self.symbols:
            price = self._next_price(symbol, factor)
            quote = json.dumps({"s": symbol, "p": price, "t": now})
            pipe.set(f"md:last:{symbol}", quote)
            pipe.lpush(history_key(symbol), price)
            pipe.ltrim(history_key(symbol), 0, HISTORY_LEN - 1)
            pipe.publish(TICKS_CHANNEL, quote)
        await pipe.execute()
        for symbol in self.symbols:
            self.last_tick[symbol] = now
        meters().market_data_messages.add(len(self.symbols))

    def _set_connected(self, up: bool) -> None:
        if up and not self.connected and self.last_tick:
            meters().market_data_reconnects.add(1)
            _log.warning("market feed reconnected")
        elif not up and self.connected:
            _log.warning("market feed disconnected")
        self.connected = up
        meters().dependency_up.set(1 if up else 0, dependency="market_feed")

    def publish_staleness(self) -> None:
        for symbol, age in self.staleness().items():
            meters().market_data_staleness.set(age, symbol=symbol)

    async def run(self) -> None:
        meters().market_data_subscribed_symbols.set(len(self.symbols))
        while True:
            stalled = self.faults.get("feed_stall") is not None
            if stalled:
                self._set_connected(False)
            else:
                try:
                    # Ticks are constant background traffic: metrics, not traces.
                    with suppress_instrumentation():
                        await self.tick()
                    self._set_connected(True)
                except (aioredis.RedisError, OSError) as exc:
                    _log.warning("feed could not publish ticks: %s", exc)
                    self._set_connected(False)
            self.publish_staleness()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self.started = time.time()
        self._task = asyncio.create_task(self.run(), name="market-feed")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
