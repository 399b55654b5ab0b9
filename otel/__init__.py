"""trading-otel: OpenTelemetry for trading services, configured by environment alone.

The public surface is what ``__all__`` lists; everything else is private.

Typical use in a FastAPI service::

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        otel.configure(service_name="execution-gateway")
        yield
        otel.shutdown()
"""

from __future__ import annotations

# Before anything imports OpenTelemetry: the SDK parses some variables at import time
# and raises on a bad value (see otel/_internal/envguard.py).
from otel._internal import envguard as _envguard
from otel._internal.version import __version__

_envguard.guard()

from otel._internal.app import AppInstrumentation, instrument_app  # noqa: E402
from otel._internal.bootstrap import Telemetry, configure, shutdown  # noqa: E402
from otel._internal.catalogue import CATALOGUE, AttributeSpec, MetricSpec  # noqa: E402
from otel._internal.logs import ConsoleFormatter, JsonFormatter  # noqa: E402
from otel._internal.meters import (  # noqa: E402
    OrderOutcome,
    SymbolGuard,
    TradingMeters,
    get_meters,
    order_timer,
)
from otel._internal.settings import Settings  # noqa: E402

__all__ = [
    "CATALOGUE",
    "AppInstrumentation",
    "AttributeSpec",
    "ConsoleFormatter",
    "JsonFormatter",
    "MetricSpec",
    "OrderOutcome",
    "Settings",
    "SymbolGuard",
    "Telemetry",
    "TradingMeters",
    "__version__",
    "configure",
    "get_meters",
    "instrument_app",
    "order_timer",
    "shutdown",
]
