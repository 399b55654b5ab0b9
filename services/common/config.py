"""Service settings, parsed once from the environment into a frozen dataclass.

A bad value never stops a service: it is logged (naming the variable and the value) and
the default applies, as the project's environment contract requires.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from services.common.auth import KEYS_VAR, client_key, parse_keys

_log = logging.getLogger("services.config")
T = TypeVar("T")

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "TSLA")


def _get(env: Mapping[str, str], name: str, default: T, cast: Callable[[str], T]) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return cast(raw.strip())
    except ValueError as exc:
        _log.warning("%s=%r is invalid (%s); using the default %r", name, raw, exc, default)
        return default


def _positive(cast: Callable[[str], T]) -> Callable[[str], T]:
    def check(raw: str) -> T:
        value = cast(raw)
        if float(value) <= 0:  # type: ignore[arg-type]
            raise ValueError("must be > 0")
        return value

    return check


def _non_negative(cast: Callable[[str], T]) -> Callable[[str], T]:
    def check(raw: str) -> T:
        value = cast(raw)
        if float(value) < 0:  # type: ignore[arg-type]
            raise ValueError("must be >= 0")
        return value

    return check


def _symbols(raw: str) -> tuple[str, ...]:
    out = tuple(s.strip().upper() for s in raw.split(",") if s.strip())
    if not out:
        raise ValueError("empty symbol list")
    return out


@dataclass(frozen=True)
class ServiceSettings:
    """Everything a service reads from its environment (``TRADING_OTEL_*``)."""

    pg_dsn: str = "postgresql://postgres@127.0.0.1:5432/trading"
    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str = "http://127.0.0.1:8005"
    gateway_url: str = "http://127.0.0.1:8002"
    signal_url: str = "http://127.0.0.1:8003"
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    account: str = "acct-demo"
    max_position: float = 10_000.0
    max_exposure_usd: float = 5_000_000.0
    daily_loss_limit_usd: float = 50_000.0
    breaker_errors: int = 5
    broker_timeout_s: float = 2.0
    broker_latency_ms: float = 8.0
    orchestrator_interval_s: float = 10.0
    orchestrator_order_qty: float = 10.0
    feed_interval_s: float = 0.2
    stale_after_s: float = 5.0
    max_body_bytes: int = 16_384
    #: Keys the gateway accepts (empty: authentication off). Never in a repr or a log.
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    #: The key this service presents to the gateway (the orchestrator's orders).
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """Build settings from ``environ`` (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        d = cls()
        p = "TRADING_OTEL_"
        return cls(
            pg_dsn=_get(env, p + "PG_DSN", d.pg_dsn, str),
            redis_url=_get(env, p + "REDIS_URL", d.redis_url, str),
            broker_url=_get(env, p + "BROKER_URL", d.broker_url, str).rstrip("/"),
            gateway_url=_get(env, p + "GATEWAY_URL", d.gateway_url, str).rstrip("/"),
            signal_url=_get(env, p + "SIGNAL_URL", d.signal_url, str).rstrip("/"),
            symbols=_get(env, p + "SYMBOLS", d.symbols, _symbols),
            account=_get(env, p + "ACCOUNT", d.account, str),
            max_position=_get(env, p + "MAX_POSITION", d.max_position, _positive(float)),
            max_exposure_usd=_get(
                env, p + "MAX_EXPOSURE_USD", d.max_exposure_usd, _positive(float)
            ),
            daily_loss_limit_usd=_get(
                env, p + "DAILY_LOSS_LIMIT_USD", d.daily_loss_limit_usd, _positive(float)
            ),
            breaker_errors=_get(env, p + "BREAKER_ERRORS", d.breaker_errors, _positive(int)),
            broker_timeout_s=_get(env, p + "BROKER_TIMEOUT", d.broker_timeout_s, _positive(float)),
            broker_latency_ms=_get(
                env, p + "BROKER_LATENCY_MS", d.broker_latency_ms, _non_negative(float)
            ),
            orchestrator_interval_s=_get(
                env, p + "ORCHESTRATOR_INTERVAL", d.orchestrator_interval_s, _non_negative(float)
            ),
            orchestrator_order_qty=_get(
                env, p + "ORCHESTRATOR_ORDER_QTY", d.orchestrator_order_qty, _positive(float)
            ),
            feed_interval_s=_get(env, p + "FEED_INTERVAL", d.feed_interval_s, _positive(float)),
            stale_after_s=_get(env, p + "STALE_AFTER", d.stale_after_s, _positive(float)),
            max_body_bytes=_get(env, p + "MAX_BODY_BYTES", d.max_body_bytes, _positive(int)),
            # A bad key list refuses to start (raises): falling back to "no keys" would
            # switch authentication off.
            api_keys=parse_keys(env.get(KEYS_VAR, "")),
            api_key=client_key(env),
        )
