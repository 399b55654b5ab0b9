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

__version__ = "0.1.0"

from otel._internal.app import AppInstrumentation, instrument_app
from otel._internal.bootstrap import Telemetry, configure, shutdown
from otel._internal.logs import ConsoleFormatter, JsonFormatter
from otel._internal.meters import TradingMeters, get_meters, order_timer
from otel._internal.settings import Settings

__all__ = [
    "AppInstrumentation",
    "ConsoleFormatter",
    "JsonFormatter",
    "Settings",
    "Telemetry",
    "TradingMeters",
    "__version__",
    "configure",
    "get_meters",
    "instrument_app",
    "order_timer",
    "shutdown",
]
