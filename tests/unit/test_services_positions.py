"""Position and P&L arithmetic of the gateway, and the services' settings parsing."""

from __future__ import annotations

import logging

import pytest

from services.common.config import ServiceSettings
from services.common.faults import _check
from services.gateway.positions import Position, apply_fill, slippage_bps


def test_adding_moves_the_average_price() -> None:
    pos, realized = apply_fill(Position(10, 100.0), "buy", 10, 110.0)
    assert (pos, realized) == (Position(20, 105.0), 0.0)


def test_reducing_realises_against_the_average() -> None:
    pos, realized = apply_fill(Position(20, 105.0), "sell", 5, 115.0)
    assert (pos, realized) == (Position(15, 105.0), 50.0)


def test_closing_a_short_at_a_loss() -> None:
    pos, realized = apply_fill(Position(-10, 50.0), "buy", 10, 55.0)
    assert (pos, realized) == (Position(0.0, 0.0), -50.0)


def test_crossing_zero_opens_the_rest_at_the_fill_price() -> None:
    pos, realized = apply_fill(Position(5, 100.0), "sell", 8, 90.0)
    assert (pos, realized) == (Position(-3, 90.0), -50.0)
    assert pos.unrealized(80.0) == 30.0


@pytest.mark.parametrize(("side", "qty", "price"), [("hold", 1, 1.0), ("buy", 0, 1.0),
                                                    ("sell", 1, -2.0)])  # fmt: skip
def test_bad_fills_are_refused(side: str, qty: float, price: float) -> None:
    with pytest.raises(ValueError):
        apply_fill(Position(), side, qty, price)


def test_slippage_in_basis_points() -> None:
    assert slippage_bps(100.0, 100.05) == pytest.approx(5.0)


def test_settings_from_env_and_bad_tunables_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "TRADING_OTEL_SYMBOLS": "aapl, msft,,",
        "TRADING_OTEL_BREAKER_ERRORS": "3",
        "TRADING_OTEL_FEED_INTERVAL": "fast",
        "TRADING_OTEL_BROKER_LATENCY_MS": "-5",
        "TRADING_OTEL_BROKER_URL": "http://broker:8005/",
    }
    with caplog.at_level(logging.WARNING, logger="services.config"):
        s = ServiceSettings.from_env(env)
    assert s.symbols == ("AAPL", "MSFT")
    assert s.breaker_errors == 3
    assert s.broker_url == "http://broker:8005"
    assert s.feed_interval_s == ServiceSettings().feed_interval_s
    assert s.broker_latency_ms == ServiceSettings().broker_latency_ms
    text = caplog.text
    assert "TRADING_OTEL_FEED_INTERVAL='fast'" in text
    assert "TRADING_OTEL_BROKER_LATENCY_MS='-5'" in text


def test_fault_parameters_are_checked() -> None:
    assert _check("broker_spike", {"delay_ms": 10}) == {"delay_ms": 10, "fraction": 1.0}
    with pytest.raises(ValueError, match="unknown fault"):
        _check("nope", {})
    with pytest.raises(ValueError, match="takes"):
        _check("feed_stall", {"delay_ms": 1})
    with pytest.raises(ValueError, match="out of range"):
        _check("broker_reject", {"rate": 1.5})
