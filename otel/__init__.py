"""trading-otel: OpenTelemetry for trading services, configured by environment alone.

The public surface is what ``__all__`` lists; everything else is private.
"""

from __future__ import annotations

__all__: list[str] = []
