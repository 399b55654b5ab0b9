"""Trading meters: instruments created once from the catalogue, with guarded attributes.

Every instrument on :class:`TradingMeters` is built from the catalogue (``CATALOGUE``).
Recording goes through a thin guard that keeps metric cardinality bounded whatever the
SDK does: attribute names outside the declaration are dropped, enum values outside the
allowed set fold into ``_other``, symbols outside the allow-list (or past the top-N cap)
fold into ``_other``, and identifiers such as order or account IDs can never become
metric attributes. Bad input is logged once and never raises into a trading path.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry import metrics

from otel._internal.catalogue import (
    CATALOGUE,
    OTHER_SYMBOL,
    MetricSpec,
)
from otel._internal.recording import BoundRecorder, is_lean
from otel._internal.settings import symbol_policy
from otel._internal.variables import DEFAULT_SYMBOL_CAP

_log = logging.getLogger("otel.meters")

#: Attribute names that identify one order or one account. They explode cardinality and,
#: for accounts, are personal data: allowed on spans (accounts hashed), never on metrics.
FORBIDDEN_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "order_id", "order.id", "orderid", "client_order_id", "client.order.id",
        "clordid", "cl_ord_id", "account_id", "account.id", "accountid", "account",
    }
)  # fmt: skip

_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9._/-]{0,15}$")
OTHER = OTHER_SYMBOL


def _is_forbidden(name: str) -> bool:
    return name.lower() in FORBIDDEN_ATTRIBUTES


class SymbolGuard:
    """Bounds the ``symbol`` attribute to an allow-list, or to the first ``cap`` symbols seen.

    Args:
        allowed: Symbols to admit (case-insensitive). ``None`` admits the first ``cap``
            well-formed symbols seen by this process.
        cap: Maximum number of distinct symbols when there is no allow-list.
    """

    def __init__(self, allowed: Iterable[str] | None = None, cap: int = DEFAULT_SYMBOL_CAP) -> None:
        if cap < 0:
            raise ValueError(f"symbol cap must be >= 0, got {cap}")
        self.cap = cap
        self.fixed = allowed is not None
        self._admitted: set[str] = {s.strip().upper() for s in allowed or () if s.strip()}
        self._lock = threading.Lock()
        self._warned = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SymbolGuard:
        """Build from ``TRADING_OTEL_SYMBOLS`` and ``TRADING_OTEL_SYMBOL_CAP`` (one parser)."""
        allowed, cap = symbol_policy(os.environ if environ is None else environ)
        return cls(allowed, cap)

    def __call__(self, value: object) -> str:
        """The symbol to use as a metric attribute: ``value`` itself or ``_other``."""
        sym = str(value).strip().upper()
        if sym in self._admitted:
            return sym
        if self.fixed or not _SYMBOL_RE.match(sym):
            return OTHER
        with self._lock:
            if sym in self._admitted:
                return sym
            if len(self._admitted) < self.cap:
                self._admitted.add(sym)
                return sym
            if not self._warned:
                self._warned = True
                _log.warning(
                    "more than %d distinct symbols recorded; further symbols fold into %r "
                    "(set TRADING_OTEL_SYMBOLS to choose them)",
                    self.cap,
                    OTHER,
                )
        return OTHER


class _Guard:
    """Validates the attributes of one metric against its declaration."""

    __slots__ = ("_enums", "_names", "_symbol_attrs", "_symbols", "_warned", "spec")

    def __init__(self, spec: MetricSpec, symbols: SymbolGuard) -> None:
        self.spec = spec
        self._symbols = symbols
        self._names = frozenset(spec.attribute_names)
        self._enums = {a.name: frozenset(a.values) for a in spec.attributes if a.values}
        self._symbol_attrs = frozenset(a.name for a in spec.attributes if a.is_symbol)
        self._warned: set[tuple[str, str]] = set()

    def _warn(self, attr: str, reason: str, value: object) -> None:
        key = (attr, reason)
        if key in self._warned:
            return
        self._warned.add(key)
        _log.warning(
            "metric %s: attribute %s=%r %s; recorded as a safe fallback",
            self.spec.prom_name,
            attr,
            value,
            reason,
        )

    def check(self, attributes: Mapping[str, object]) -> dict[str, str]:
        """Return a safe attribute dict for ``attributes``; never raises."""
        out: dict[str, str] = {}
        for name, value in attributes.items():
            if name not in self._names:
                forbidden = _is_forbidden(name)
                reason = (
                    "is an identifier, never a metric attribute"
                    if forbidden
                    else "is not declared for this metric"
                )
                self._warn(name, reason, "<dropped>")
                continue
            if name in self._symbol_attrs:
                out[name] = self._symbols(value)
                continue
            text = value if isinstance(value, str) else str(value)
            if text in self._enums[name]:
                out[name] = text
            else:
                self._warn(name, f"is not one of {sorted(self._enums[name])}", value)
                out[name] = OTHER
        for name in self._names - out.keys():
            # A missing attribute would split the series into two shapes; fill it instead.
            self._warn(name, "is missing", None)
            out[name] = OTHER
        return out


#: Caller attribute tuples remembered per instrument; past this, lookups still work but
#: are not memoised (the bound set itself stays bounded by the guard).
_INPUT_CACHE_MAX = 4096


class GuardedInstrument:
    """A catalogue instrument whose attributes pass through the guard.

    Use :meth:`add` for counters and up-down counters, :meth:`record` for histograms and
    :meth:`set` for gauges. Each accepts ``attributes`` as a mapping or keyword arguments.
    For a hot loop, :meth:`bind` returns a recorder for one attribute set.
    """

    __slots__ = ("_by_input", "_by_series", "_guard", "_lean", "_method", "instrument", "spec")

    def __init__(
        self, spec: MetricSpec, instrument: object, guard: _Guard, lean: bool = True
    ) -> None:
        self.spec = spec
        self._lean = lean
        self.instrument = instrument
        self._guard = guard
        self._method = {
            "counter": "add",
            "updowncounter": "add",
            "histogram": "record",
            "gauge": "set",
        }[spec.kind]
        # Two levels: the caller's exact items (fast hit), then the validated series, so
        # differently ordered or folded inputs share one recorder.
        self._by_input: dict[tuple[tuple[str, object], ...], BoundRecorder] = {}
        self._by_series: dict[tuple[tuple[str, str], ...], BoundRecorder] = {}

    def _use_guard(self, guard: _Guard) -> None:
        self._guard = guard
        self._by_input = {}
        self._by_series = {}

    def bind(self, attributes: Mapping[str, object] | None = None, **kw: object) -> BoundRecorder:
        """A recorder for one attribute set: ``rec = m.order_latency.bind(...); rec(0.12)``.

        The attributes are validated once, here; each call then costs only the SDK's
        aggregation (see ``otel/_internal/recording.py``).
        """
        if kw:
            attributes = {**attributes, **kw} if attributes else kw
        key = tuple(attributes.items()) if attributes else ()
        bound = self._by_input.get(key)
        if bound is not None:
            return bound
        safe = self._guard.check(attributes or {})
        series = tuple(sorted(safe.items()))
        bound = self._by_series.get(series)
        if bound is None:
            bound = BoundRecorder(
                self.instrument,
                self._method,
                safe,
                self.spec.kind in ("counter", "histogram"),
                lean=self._lean,
            )
            self._by_series[series] = bound
        if len(self._by_input) < _INPUT_CACHE_MAX:
            self._by_input[key] = bound
        return bound

    def _emit(
        self, value: float, attributes: Mapping[str, object] | None, kw: dict[str, object]
    ) -> None:
        try:
            if kw:
                attributes = {**attributes, **kw} if attributes else kw
            # The cache hit of bind(), inlined: this is every recording's hot path.
            bound = self._by_input.get(tuple(attributes.items()) if attributes else ())
            if bound is None:
                bound = self.bind(attributes)
            bound(value)
        except Exception:  # a meter must never break an order path
            _log.exception("recording %s failed", self.spec.prom_name)

    def add(
        self, value: float = 1, attributes: Mapping[str, object] | None = None, **kw: object
    ) -> None:
        """Add to a counter or up-down counter."""
        self._emit(value, attributes, kw)

    def record(
        self, value: float, attributes: Mapping[str, object] | None = None, **kw: object
    ) -> None:
        """Record a histogram measurement."""
        self._emit(value, attributes, kw)

    def set(
        self, value: float, attributes: Mapping[str, object] | None = None, **kw: object
    ) -> None:
        """Set a gauge value."""
        self._emit(value, attributes, kw)


class TradingMeters:
    """One guarded instrument per catalogue entry, created once.

    Args:
        meter_provider: Provider to create instruments on; the global one by default.
        symbols: Symbol guard; built from ``TRADING_OTEL_SYMBOLS`` by default.
    """

    order_latency: GuardedInstrument
    orders: GuardedInstrument
    order_rejections: GuardedInstrument
    fills: GuardedInstrument
    fill_slippage: GuardedInstrument
    position_quantity: GuardedInstrument
    positions_open: GuardedInstrument
    pnl: GuardedInstrument
    risk_limit: GuardedInstrument
    circuit_breaker_state: GuardedInstrument
    circuit_breaker_trips: GuardedInstrument
    risk_check_duration: GuardedInstrument
    broker_request_duration: GuardedInstrument
    dependency_up: GuardedInstrument
    auth_failures: GuardedInstrument
    signal_generation_duration: GuardedInstrument
    signal_predictions: GuardedInstrument
    model_loaded: GuardedInstrument
    model_age: GuardedInstrument
    model_reloads: GuardedInstrument
    orchestration_run_duration: GuardedInstrument
    orchestration_runs: GuardedInstrument
    heartbeat_timestamp: GuardedInstrument
    market_data_messages: GuardedInstrument
    market_data_staleness: GuardedInstrument
    market_data_subscribed_symbols: GuardedInstrument
    market_data_reconnects: GuardedInstrument
    websocket_connections: GuardedInstrument
    cache_requests: GuardedInstrument
    websocket_messages: GuardedInstrument

    def __init__(
        self,
        meter_provider: metrics.MeterProvider | None = None,
        symbols: SymbolGuard | None = None,
    ) -> None:
        self.provider = (
            meter_provider if meter_provider is not None else metrics.get_meter_provider()
        )
        self.symbols = symbols if symbols is not None else SymbolGuard.from_env()
        meter = self.provider.get_meter("trading_otel.meters", _version())
        lean = is_lean(self.provider)
        for spec in CATALOGUE:
            bad = [a for a in spec.attribute_names if _is_forbidden(a)]
            if bad:
                raise ValueError(f"{spec.name}: {bad} can never be metric attributes")
            setattr(
                self,
                spec.key,
                GuardedInstrument(spec, _create(meter, spec), _Guard(spec, self.symbols), lean),
            )


def _create(meter: metrics.Meter, spec: MetricSpec) -> object:
    kw = {"name": spec.name, "unit": spec.unit, "description": spec.description}
    if spec.kind == "counter":
        return meter.create_counter(**kw)
    if spec.kind == "updowncounter":
        return meter.create_up_down_counter(**kw)
    if spec.kind == "histogram":
        advice = list(spec.buckets) if spec.buckets else None
        return meter.create_histogram(**kw, explicit_bucket_boundaries_advisory=advice)
    return meter.create_gauge(**kw)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("trading-otel")
    except Exception:  # not installed (e.g. run from a source tree)
        return "0"


_instance: TradingMeters | None = None
_instance_lock = threading.Lock()


def get_meters() -> TradingMeters:
    """The process-wide :class:`TradingMeters`, bound to the current global MeterProvider.

    Cheap to call on every request: one identity check. If ``configure()`` installed a new
    global provider since the last call, the instruments are re-created on it.
    """
    global _instance
    provider = metrics.get_meter_provider()
    inst = _instance
    if inst is not None and inst.provider is provider:
        return inst
    with _instance_lock:
        if _instance is None or _instance.provider is not provider:
            symbols = _instance.symbols if _instance is not None else None
            _instance = TradingMeters(provider, symbols)
        return _instance


def set_symbols(allowed: Iterable[str] | None, cap: int = DEFAULT_SYMBOL_CAP) -> None:
    """Replace the symbol policy of the process-wide meters (used by ``configure()``)."""
    meters = get_meters()
    meters.symbols = SymbolGuard(allowed, cap)
    for spec in CATALOGUE:
        inst: GuardedInstrument = getattr(meters, spec.key)
        inst._use_guard(_Guard(spec, meters.symbols))


@dataclass
class OrderOutcome:
    """Handle yielded by :func:`order_timer`; the body says how the order ended."""

    outcome: str | None = None
    reason: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def filled(self) -> None:
        """The order was filled."""
        self.outcome = "filled"

    def rejected(self, reason: str) -> None:
        """The order was rejected, for one of the catalogue's rejection reasons."""
        self.outcome = "rejected"
        self.reason = reason


@contextmanager
def order_timer(
    symbol: str, side: str, order_type: str, *, meters: TradingMeters | None = None
) -> Iterator[OrderOutcome]:
    """Time one order and record latency and count in a ``finally``, errors included.

    Records ``trading_order_latency_seconds`` and ``trading_orders_total``, plus
    ``trading_order_rejections_total`` for a rejection. An exception escaping the body
    counts as outcome ``error`` and is re-raised. A body that sets no outcome also counts
    as ``error`` (with a warning), because silence usually means a missed branch.

    Example::

        with order_timer("AAPL", "buy", "market") as order:
            if not risk_ok:
                order.rejected("position_limit")
            else:
                await broker.submit(...)
                order.filled()
    """
    handle = OrderOutcome()
    start = time.perf_counter()
    failed = False
    try:
        yield handle
    except BaseException:
        failed = True
        raise
    finally:
        elapsed = time.perf_counter() - start
        m = meters if meters is not None else get_meters()
        outcome = "error" if failed else handle.outcome
        if outcome is None:
            _log.warning("order_timer for %s ended without an outcome; counted as error", symbol)
            outcome = "error"
        m.order_latency.record(
            elapsed, symbol=symbol, side=side, order_type=order_type, outcome=outcome
        )
        m.orders.add(1, symbol=symbol, side=side, status=outcome)
        if outcome == "rejected":
            # An undeclared reason folds into _other through the guard.
            m.order_rejections.add(1, reason=handle.reason or "")
