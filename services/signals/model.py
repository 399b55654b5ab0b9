"""A mean-reversion model: buy below the recent mean, sell above it.

The model's parameters live in Redis under ``model:signal`` (a tiny model registry), so
``reload`` picks up a newly published version. The score is the negated z-score of the
latest price against the window's mean, clipped to [-1, 1]: deterministic for given prices.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from services.marketdata.feed import history_key

REGISTRY_KEY = "model:signal"


@dataclass(frozen=True)
class ModelParams:
    version: str = "meanrev-1"
    window: int = 20
    threshold: float = 0.25
    published_at: float = 0.0

    @classmethod
    def from_json(cls, raw: str) -> ModelParams:
        data: dict[str, Any] = json.loads(raw)
        params = cls(
            version=str(data["version"]),
            window=int(data["window"]),
            threshold=float(data["threshold"]),
            published_at=float(data["published_at"]),
        )
        if params.window < 2 or not 0 < params.threshold < 1:
            raise ValueError(f"bad model parameters in {REGISTRY_KEY}: {raw}")
        return params

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


def score(prices: list[float], params: ModelParams) -> float:
    """Mean-reversion score of the newest price (``prices[0]``) over the window."""
    window = prices[: params.window]
    if len(window) < 2:
        return 0.0
    mean = statistics.fmean(window)
    stdev = statistics.pstdev(window)
    if stdev == 0:
        return 0.0
    z = (window[0] - mean) / stdev
    return max(-1.0, min(1.0, -z / 2))


def decide(value: float, params: ModelParams) -> str:
    if value >= params.threshold:
        return "buy"
    if value <= -params.threshold:
        return "sell"
    return "hold"


class SignalModel:
    """The loaded model: parameters, load time and reload count."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.params: ModelParams | None = None
        self.loaded_at = 0.0
        self.reloads = 0

    @property
    def loaded(self) -> bool:
        return self.params is not None

    def age_s(self) -> float:
        return time.time() - self.params.published_at if self.params else 0.0

    async def load(self) -> ModelParams:
        """Load from the registry, publishing the default model if none is there yet."""
        raw = await self.client.get(REGISTRY_KEY)
        if raw is None:
            params = ModelParams(published_at=time.time())
            await self.client.set(REGISTRY_KEY, params.to_json(), nx=True)
            raw = await self.client.get(REGISTRY_KEY) or params.to_json()
        params = ModelParams.from_json(raw if isinstance(raw, str) else raw.decode())
        if self.params is not None:
            self.reloads += 1
        self.params, self.loaded_at = params, time.time()
        return params

    def unload(self) -> ModelParams | None:
        """Stop serving the model (signals answer 503 until the next load); returns it."""
        params, self.params = self.params, None
        return params

    async def predict(
        self, symbols: list[str], params: ModelParams | None = None
    ) -> list[dict[str, Any]]:
        """Signals for ``symbols`` from ``params`` (the loaded model by default)."""
        params = params or self.params
        if params is None:
            raise RuntimeError("model not loaded")
        pipe = self.client.pipeline(transaction=False)
        for symbol in symbols:
            pipe.lrange(history_key(symbol), 0, params.window - 1)
        histories = await pipe.execute()
        out = []
        for symbol, raw in zip(symbols, histories, strict=True):
            prices = [float(p) for p in raw]
            value = score(prices, params)
            out.append({
                "symbol": symbol, "score": round(value, 4), "side": decide(value, params),
                "price": prices[0] if prices else None, "samples": len(prices),
            })  # fmt: skip
        return out
