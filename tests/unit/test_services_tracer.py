"""The services' tracer is built once per global tracer provider."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from services.common import telemetry


def test_one_tracer_per_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = TracerProvider(), TracerProvider()
    current = [first]
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: current[0])
    monkeypatch.setattr(telemetry, "_tracer", None)
    a = telemetry.tracer()
    assert telemetry.tracer() is a
    assert a._instrumentation_scope.name == "trading.services"  # type: ignore[attr-defined]
    current[0] = second
    b = telemetry.tracer()
    assert b is not a and telemetry.tracer() is b
    with b.start_as_current_span("x") as span:
        assert span.is_recording()
