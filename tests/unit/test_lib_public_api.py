"""The public surface of ``otel`` is exactly what ``__all__`` lists."""

from __future__ import annotations

import otel

PUBLIC = {
    "CATALOGUE",
    "AppInstrumentation",
    "AttributeSpec",
    "MetricSpec",
    "ConsoleFormatter",
    "JsonFormatter",
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
}


def test_all_is_pinned() -> None:
    assert set(otel.__all__) == PUBLIC
    assert len(otel.__all__) == len(PUBLIC)


def test_every_public_name_resolves() -> None:
    for name in otel.__all__:
        assert getattr(otel, name) is not None


def test_nothing_else_looks_public() -> None:
    exposed = {n for n in vars(otel) if not n.startswith("_")} - {"annotations"}
    # The tooling (CLI, stack...) lives in trading_otel_tools, never in otel.
    assert exposed - PUBLIC == set()


def test_public_callables_are_documented() -> None:
    for name in PUBLIC - {"__version__", "CATALOGUE"}:
        assert (getattr(otel, name).__doc__ or "").strip(), name
