"""The services' only contact with the ``otel`` library: configure, instrument, meters.

Every service calls :func:`configure` in its lifespan and :func:`shutdown` at its end, and
records trading meters through :func:`meters`. ``configure()`` gives every FastAPI app in
the process its server spans (through FastAPI's own telemetry hook), so the apps need no
middleware of their own. Health probes are excluded by the library's defaults.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager

from opentelemetry import trace

import otel
from otel import OrderOutcome

_log = logging.getLogger("services.telemetry")


def configure() -> None:
    """Set up traces, metrics and logs from ``OTEL_*``/``TRADING_OTEL_*`` (never raises)."""
    try:
        otel.configure()
    except Exception:  # telemetry must never keep a trading service from starting
        _log.exception("otel.configure failed; continuing without telemetry")


def shutdown() -> None:
    """Flush and close the telemetry pipelines."""
    try:
        otel.shutdown()
    except Exception:
        _log.exception("otel.shutdown failed")


def meters() -> otel.TradingMeters:
    """The process-wide trading meters (one instrument per catalogue entry)."""
    return otel.get_meters()


def order_timer(symbol: str, side: str, order_type: str) -> AbstractContextManager[OrderOutcome]:
    """Time one order; records latency, orders_total and rejections in a ``finally``."""
    return otel.order_timer(symbol, side, order_type)


#: The tracer and the provider it came from: the SDK builds a new Tracer on every
#: ``get_tracer`` call, and the order path asks four times per order.
_tracer: tuple[object, trace.Tracer] | None = None


def tracer() -> trace.Tracer:
    """The services' tracer; it follows the current global provider."""
    global _tracer
    provider = trace.get_tracer_provider()
    cached = _tracer
    if cached is not None and cached[0] is provider:
        return cached[1]
    found = provider.get_tracer("trading.services")
    _tracer = (provider, found)
    return found
