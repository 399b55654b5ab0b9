"""Service settings, parsed once from the environment into a frozen dataclass.

Two rules, one table (:data:`SETTINGS`):

- **Risk and limit settings fail closed.** A bad value (garbage, a unit, a thousands
  separator, a sign, NaN/inf, zero where it means nothing, non-ASCII digits) raises
  :class:`SettingsError`, which names every bad variable, its value and what is expected;
  ``python -m services`` prints that one message and exits with :data:`EX_CONFIG` before
  any port is bound. Falling back to a default limit would trade on a limit nobody chose.
- **Other tunables fail open**, like the telemetry settings: one warning naming the
  variable and the value, then the default.

Unset and empty variables take the documented default, under both rules.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.common.auth import KEYS_VAR, client_key, parse_keys
from services.common.ports import POSTGRES_PORT, REDIS_PORT, local_url

#: Upper bound on one order's size: a fat-finger guard, far above any position limit.
MAX_ORDER_QUANTITY = 1_000_000

_log = logging.getLogger("services.config")

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "TSLA")
PREFIX = "TRADING_OTEL_"
#: The exit status of a service that refuses its configuration (sysexits' EX_CONFIG).
EX_CONFIG = 78

# ASCII only ([0-9], not \d): int() and float() also take fullwidth and Arabic-Indic digits,
# "1_000" and "nan".
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_WHOLE = re.compile(r"[0-9]+")
_ASCII_BLANKS = " \t\r\n"
_NUMBER_FORM = "in ASCII digits, e.g. 10000, 2.5 or 1e6, with no unit, sign, currency or separator"


class SettingsError(ValueError):
    """Fail-closed settings with bad values: the service must not start.

    Attributes:
        problems: One line per bad variable, naming it, its value and what is expected.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        head = "invalid risk or limit setting" + ("s" if len(problems) > 1 else "")
        super().__init__(head + (": " if len(problems) == 1 else ":\n  ") + "\n  ".join(problems))


def _number(*, zero_ok: bool = False, maximum: float | None = None) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        text = raw.strip(_ASCII_BLANKS)
        if not _NUMBER.fullmatch(text):
            raise ValueError("not a plain number")
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("not finite")
        if value < 0 or (value == 0 and not zero_ok):
            raise ValueError("out of range")
        if maximum is not None and value > maximum:
            raise ValueError("out of range")
        return value

    return parse


def _whole(raw: str) -> int:
    text = raw.strip(_ASCII_BLANKS)
    if not _WHOLE.fullmatch(text) or int(text) == 0:
        raise ValueError("not a whole number > 0")
    return int(text)


def _shown(raw: str, limit: int = 80) -> str:
    """``raw`` as a repr, cut short: an error names the value without echoing a novel."""
    return repr(raw) if len(raw) <= limit else repr(raw[:limit]) + f"... ({len(raw)} chars)"


def _text(raw: str) -> str:
    return raw.strip()


def _url(raw: str) -> str:
    return raw.strip().rstrip("/")


def _symbols(raw: str) -> tuple[str, ...]:
    out = tuple(s.strip().upper() for s in raw.split(",") if s.strip())
    if not out:
        raise ValueError("empty symbol list")
    return out


@dataclass(frozen=True)
class Setting:
    """One ``TRADING_OTEL_*`` variable of the services."""

    name: str  #: without the prefix
    field: str  #: the :class:`ServiceSettings` field it sets
    parse: Callable[[str], Any]  #: raises ValueError on a bad value
    expected: str  #: what a good value looks like, for the error or warning
    fail_closed: bool = False  #: a risk or limit setting: a bad value refuses to start

    @property
    def var(self) -> str:
        return PREFIX + self.name


_POSITIVE = f"a number > 0, {_NUMBER_FORM}"
_RISK = True

#: Every setting of the services, declared once. ``fail_closed`` marks the risk and limit
#: settings; ``TRADING_OTEL_API_KEYS`` (parsed by :func:`parse_keys`) fails closed too.
SETTINGS: tuple[Setting, ...] = (
    Setting("PG_DSN", "pg_dsn", _text, "a Postgres DSN"),
    Setting("REDIS_URL", "redis_url", _text, "a Redis URL"),
    Setting("BROKER_URL", "broker_url", _url, "a URL"),
    Setting("GATEWAY_URL", "gateway_url", _url, "a URL"),
    Setting("SIGNAL_URL", "signal_url", _url, "a URL"),
    Setting("SYMBOLS", "symbols", _symbols, "a comma-separated list of symbols"),
    Setting("ACCOUNT", "account", _text, "an account id"),
    Setting("MAX_POSITION", "max_position", _number(), _POSITIVE, _RISK),
    Setting("MAX_EXPOSURE_USD", "max_exposure_usd", _number(), _POSITIVE, _RISK),
    Setting("DAILY_LOSS_LIMIT_USD", "daily_loss_limit_usd", _number(), _POSITIVE, _RISK),
    Setting(
        "BREAKER_ERRORS", "breaker_errors", _whole, "a whole number > 0 in ASCII digits", _RISK
    ),
    Setting("BROKER_TIMEOUT", "broker_timeout_s", _number(), f"seconds, {_POSITIVE}", _RISK),
    Setting("STALE_AFTER", "stale_after_s", _number(), f"seconds, {_POSITIVE}", _RISK),
    Setting(
        "MAX_BODY_BYTES",
        "max_body_bytes",
        _whole,
        "a whole number of bytes > 0 in ASCII digits",
        _RISK,
    ),
    Setting(
        "ORCHESTRATOR_ORDER_QTY",
        "orchestrator_order_qty",
        _number(maximum=MAX_ORDER_QUANTITY),
        f"a number > 0 and <= {MAX_ORDER_QUANTITY}, {_NUMBER_FORM}",
        _RISK,
    ),
    # It decides whether the orchestrator trades on its own: "off" must not mean "every 10 s".
    Setting(
        "ORCHESTRATOR_INTERVAL",
        "orchestrator_interval_s",
        _number(zero_ok=True),
        f"seconds >= 0 (0 turns the timer off), {_NUMBER_FORM}",
        _RISK,
    ),
    Setting("BROKER_LATENCY_MS", "broker_latency_ms", _number(zero_ok=True), "milliseconds >= 0"),
    Setting("FEED_INTERVAL", "feed_interval_s", _number(), "seconds > 0"),
)

#: The variables that refuse to start on a bad value (docs/services.md marks the same ones).
FAIL_CLOSED: tuple[str, ...] = (*(s.var for s in SETTINGS if s.fail_closed), KEYS_VAR)


@dataclass(frozen=True)
class ServiceSettings:
    """Everything a service reads from its environment (``TRADING_OTEL_*``)."""

    pg_dsn: str = f"postgresql://postgres@127.0.0.1:{POSTGRES_PORT}/trading"
    redis_url: str = f"redis://127.0.0.1:{REDIS_PORT}/0"
    broker_url: str = local_url("broker-simulator")
    gateway_url: str = local_url("execution-gateway")
    signal_url: str = local_url("signal-service")
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
        """Build settings from ``environ`` (``os.environ`` by default).

        Raises:
            SettingsError: A fail-closed setting has a bad value; the message lists every
                one of them (variable, value, what is expected).
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for setting in SETTINGS:
            raw = env.get(setting.var)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[setting.field] = setting.parse(raw)
            except ValueError:
                if setting.fail_closed:
                    problems.append(f"{setting.var}={_shown(raw)}: expected {setting.expected}")
                else:
                    _log.warning(
                        "%s=%s is invalid (expected %s); using the default %r",
                        setting.var,
                        _shown(raw),
                        setting.expected,
                        getattr(cls, setting.field),
                    )
        try:
            # Falling back to "no keys" would switch authentication off. The message names
            # the key's position, never the key.
            values["api_keys"] = parse_keys(env.get(KEYS_VAR, ""))
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise SettingsError(problems)
        return cls(**values, api_key=client_key(env))
