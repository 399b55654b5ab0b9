"""The trading meter catalogue: every custom metric is declared here, once.

Instruments, views, ``trading-otel metrics list``, ``docs/metrics.md`` and the naming
tests are all derived from :data:`CATALOGUE`. Prometheus names (``prom_name``) are a
public API: dashboards, alert rules and users' queries depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

InstrumentKind = Literal["counter", "updowncounter", "histogram", "gauge"]

# Every bucket set the library uses lives here; views.py builds the views from them.

#: HTTP server and client durations, seconds; a trading API answers in ~1 ms to a few
#: seconds.
HTTP_DURATION_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Database and cache calls, seconds; a trading query or Redis call takes ~0.1 ms to a
#: few seconds.
DB_DURATION_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
)  # fmt: skip
#: Order placement: ~1 ms to 10 s. 0.25 s is a boundary because it is the default SLO.
ORDER_LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25,
    0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0,
)  # fmt: skip
#: A single DB/Redis-backed risk check: sub-millisecond to a couple of seconds.
RISK_CHECK_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
#: Signal generation runs a model: milliseconds to tens of seconds.
SIGNAL_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
#: A whole orchestration cycle (signals + several orders): 50 ms to 2 minutes.
ORCHESTRATION_BUCKETS: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip
#: Fill slippage in basis points.
SLIPPAGE_BPS_BUCKETS: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)

#: The instrumentations' latency histograms (semantic-convention names) and their buckets.
#: The SDK's default boundaries are millisecond-scale: 0.12 s would land in ``le="5"``.
INSTRUMENTATION_HISTOGRAMS: dict[str, tuple[float, ...]] = {
    "http.server.request.duration": HTTP_DURATION_BUCKETS,
    "http.client.request.duration": HTTP_DURATION_BUCKETS,
    "db.client.operation.duration": DB_DURATION_BUCKETS,
}

SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit")
ORDER_OUTCOMES = ("filled", "rejected", "error")
ORDER_STATUSES = ("accepted", "filled", "rejected", "error")
REJECTION_REASONS = (
    "validation",
    "position_limit",
    "exposure_limit",
    "daily_loss_limit",
    "circuit_breaker",
    "broker_reject",
    "broker_unavailable",
    "market_data_stale",
)
#: The symbol label is bounded: values outside the allow-list fold into this one.
OTHER_SYMBOL = "_other"


@dataclass(frozen=True)
class AttributeSpec:
    """One allowed metric attribute.

    ``values`` is the closed set of allowed values; ``None`` means the value is a
    trading symbol, bounded by the symbol allow-list instead.
    """

    name: str
    values: tuple[str, ...] | None = None
    description: str = ""

    @property
    def is_symbol(self) -> bool:
        return self.values is None


@dataclass(frozen=True)
class MetricSpec:
    """The single declaration of one trading metric."""

    key: str
    """Python attribute name on the meters object, e.g. ``order_latency``."""
    name: str
    """OpenTelemetry instrument name (dotted)."""
    kind: InstrumentKind
    unit: str
    description: str
    prom_name: str
    """Base name as Prometheus shows it after OTLP→Prometheus translation."""
    attributes: tuple[AttributeSpec, ...] = ()
    buckets: tuple[float, ...] | None = None
    service: str = "any"
    """Which service records it (documentation only)."""
    exemplars: bool = field(default=False)
    """Whether exemplars are expected on it (latency histograms)."""

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)


SYMBOL = AttributeSpec("symbol", None, "Instrument symbol; bounded by TRADING_OTEL_SYMBOLS")


def _enum(name: str, values: tuple[str, ...], description: str = "") -> AttributeSpec:
    return AttributeSpec(name, values, description)


CATALOGUE: tuple[MetricSpec, ...] = (
    # --- execution gateway: orders ---------------------------------------------------
    MetricSpec(
        "order_latency", "trading.order.latency", "histogram", "s",
        "End-to-end order placement latency in the execution gateway, from request "
        "validation to the broker's answer.",
        "trading_order_latency_seconds",
        (SYMBOL, _enum("side", SIDES), _enum("order_type", ORDER_TYPES),
         _enum("outcome", ORDER_OUTCOMES)),
        ORDER_LATENCY_BUCKETS, "execution-gateway", exemplars=True,
    ),
    MetricSpec(
        "orders", "trading.orders", "counter", "{order}",
        "Orders handled by the execution gateway, by final status.",
        "trading_orders_total",
        (SYMBOL, _enum("side", SIDES), _enum("status", ORDER_STATUSES)),
        service="execution-gateway",
    ),
    MetricSpec(
        "order_rejections", "trading.order.rejections", "counter", "{order}",
        "Orders rejected before or by the broker, by reason.",
        "trading_order_rejections_total",
        (_enum("reason", REJECTION_REASONS),),
        service="execution-gateway",
    ),
    MetricSpec(
        "fills", "trading.fills", "counter", "{fill}",
        "Fills received from the broker.", "trading_fills_total",
        service="execution-gateway",
    ),
    # Annotation units ({bp}, {USD}) add no Prometheus suffix, so the unit is spelled in the
    # instrument name: both the collector and our endpoint then expose the prom_name.
    MetricSpec(
        "fill_slippage", "trading.fill.slippage_bps", "histogram", "{bp}",
        "Absolute difference between the expected and the fill price, in basis points.",
        "trading_fill_slippage_bps", buckets=SLIPPAGE_BPS_BUCKETS,
        service="execution-gateway",
    ),
    # --- positions, P&L, risk -----------------------------------------------------------
    MetricSpec(
        "position_quantity", "trading.position.quantity", "gauge", "{share}",
        "Signed net position per symbol (negative is short).",
        "trading_position_quantity", (SYMBOL,), service="execution-gateway",
    ),
    MetricSpec(
        "positions_open", "trading.positions.open", "gauge", "{position}",
        "Number of symbols with a non-zero position.", "trading_positions_open",
        service="execution-gateway",
    ),
    MetricSpec(
        "pnl", "trading.pnl_usd", "gauge", "{USD}",
        "Profit and loss in account currency: realized, unrealized, and today's total.",
        "trading_pnl_usd", (_enum("kind", ("realized", "unrealized", "daily")),),
        service="execution-gateway",
    ),
    MetricSpec(
        "risk_limit", "trading.risk.limit", "gauge", "{limit}",
        "Configured risk limits, exported so alerts compare against the live value.",
        "trading_risk_limit",
        (_enum("limit", ("daily_loss_usd", "position_quantity", "exposure_usd")),),
        service="execution-gateway",
    ),
    MetricSpec(
        "circuit_breaker_state", "trading.circuit_breaker.state", "gauge", "{state}",
        "Circuit breaker state: 0 closed (trading), 1 open (tripped).",
        "trading_circuit_breaker_state",
        (_enum("breaker", ("daily_loss", "broker_errors")),),
        service="execution-gateway",
    ),
    MetricSpec(
        "circuit_breaker_trips", "trading.circuit_breaker.trips", "counter", "{trip}",
        "Times a circuit breaker tripped.", "trading_circuit_breaker_trips_total",
        service="execution-gateway",
    ),
    MetricSpec(
        "risk_check_duration", "trading.risk_check.duration", "histogram", "s",
        "Pre-trade risk check duration (positions and exposure from Postgres, breaker "
        "state from Redis).",
        "trading_risk_check_duration_seconds", buckets=RISK_CHECK_BUCKETS,
        service="execution-gateway", exemplars=True,
    ),
    MetricSpec(
        "broker_request_duration", "trading.broker.request.duration", "histogram", "s",
        "Duration of requests to the broker, by operation.",
        "trading_broker_request_duration_seconds",
        (_enum("operation", ("submit", "cancel", "status")),),
        ORDER_LATENCY_BUCKETS, "execution-gateway", exemplars=True,
    ),
    MetricSpec(
        "dependency_up", "trading.dependency.up", "gauge", "{up}",
        "Whether a dependency answered its last check: 1 up, 0 down.",
        "trading_dependency_up",
        (_enum("dependency", ("postgres", "redis", "broker", "market_feed")),),
    ),
    MetricSpec(
        "auth_failures", "trading.auth.failures", "counter", "{attempt}",
        "Rejected API authentications, by reason.", "trading_auth_failures_total",
        (_enum("reason", ("missing", "invalid")),),
    ),
    # --- signal service -----------------------------------------------------------------
    MetricSpec(
        "signal_generation_duration", "trading.signal.generation.duration", "histogram",
        "s", "Time to compute one batch of signals.",
        "trading_signal_generation_duration_seconds", buckets=SIGNAL_BUCKETS,
        service="signal-service", exemplars=True,
    ),
    MetricSpec(
        "signal_predictions", "trading.signal.predictions", "counter", "{prediction}",
        "Signals (one per symbol) produced by the model.",
        "trading_signal_predictions_total", service="signal-service",
    ),
    MetricSpec(
        "model_loaded", "trading.model.loaded", "gauge", "{model}",
        "Whether the signal model is loaded: 1 loaded, 0 not.", "trading_model_loaded",
        service="signal-service",
    ),
    MetricSpec(
        "model_age", "trading.model.age", "gauge", "s",
        "Seconds since the loaded model was trained or published.",
        "trading_model_age_seconds", service="signal-service",
    ),
    MetricSpec(
        "model_reloads", "trading.model.reloads", "counter", "{reload}",
        "Model reloads.", "trading_model_reloads_total", service="signal-service",
    ),
    # --- orchestrator -------------------------------------------------------------------
    MetricSpec(
        "orchestration_run_duration", "trading.orchestration.run.duration", "histogram",
        "s", "Duration of one trading cycle: signals, then orders.",
        "trading_orchestration_run_duration_seconds", buckets=ORCHESTRATION_BUCKETS,
        service="orchestrator", exemplars=True,
    ),
    MetricSpec(
        "orchestration_runs", "trading.orchestration.runs", "counter", "{run}",
        "Trading cycles, by outcome.", "trading_orchestration_runs_total",
        (_enum("outcome", ("success", "partial", "failure")),), service="orchestrator",
    ),
    MetricSpec(
        "heartbeat_timestamp", "trading.heartbeat.timestamp", "gauge", "s",
        "Unix time of the orchestrator's last completed cycle.",
        "trading_heartbeat_timestamp_seconds", service="orchestrator",
    ),
    # --- market data --------------------------------------------------------------------
    MetricSpec(
        "market_data_messages", "trading.market_data.messages", "counter", "{message}",
        "Market data ticks received from the feed.", "trading_market_data_messages_total",
        service="market-data",
    ),
    MetricSpec(
        "market_data_staleness", "trading.market_data.staleness", "gauge", "s",
        "Seconds since the last tick, per symbol.", "trading_market_data_staleness_seconds",
        (SYMBOL,), service="market-data",
    ),
    MetricSpec(
        "market_data_subscribed_symbols", "trading.market_data.subscribed_symbols",
        "gauge", "{symbol}", "Symbols the feed is subscribed to.",
        "trading_market_data_subscribed_symbols", service="market-data",
    ),
    MetricSpec(
        "market_data_reconnects", "trading.market_data.reconnects", "counter",
        "{reconnect}", "Feed reconnects.", "trading_market_data_reconnects_total",
        service="market-data",
    ),
    MetricSpec(
        "websocket_connections", "trading.websocket.connections", "updowncounter",
        "{connection}", "Open quote websocket connections.",
        "trading_websocket_connections", service="market-data",
    ),
    # --- caches -------------------------------------------------------------------------
    MetricSpec(
        "cache_requests", "trading.cache.requests", "counter", "{request}",
        "Cache lookups, by cache and result.", "trading_cache_requests_total",
        (_enum("cache", ("price", "position", "breaker", "model")),
         _enum("result", ("hit", "miss"))),
    ),
    # --- market data websocket ----------------------------------------------------------
    MetricSpec(
        "websocket_messages", "trading.websocket.messages", "counter", "{message}",
        "Quote messages sent to websocket clients.", "trading_websocket_messages_total",
        service="market-data",
    ),
)  # fmt: skip

BY_KEY: dict[str, MetricSpec] = {m.key: m for m in CATALOGUE}
BY_PROM_NAME: dict[str, MetricSpec] = {m.prom_name: m for m in CATALOGUE}
