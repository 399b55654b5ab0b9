"""API-key settings: parsed once, refused when weak, never shown; the CLI's new faults."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.common.auth import ApiKeyAuth, client_key
from services.common.config import ServiceSettings
from trading_otel_tools.cli import app

KEY = "gw-key-0123456789abcdef"
OTHER = "gw-key-fedcba9876543210"


def test_keys_come_from_the_environment_and_never_show() -> None:
    cfg = ServiceSettings.from_env({"TRADING_OTEL_API_KEYS": f" {KEY} ,, {OTHER} "})
    assert cfg.api_keys == (KEY, OTHER)
    assert cfg.api_key == KEY  # a client in the same environment presents the first
    assert KEY not in repr(cfg) and OTHER not in repr(cfg)
    assert ServiceSettings.from_env({}).api_keys == ()
    assert ServiceSettings.from_env({}).api_key is None


def test_a_client_key_of_its_own_wins() -> None:
    env = {"TRADING_OTEL_API_KEYS": KEY, "TRADING_OTEL_API_KEY": OTHER}
    assert client_key(env) == OTHER
    assert client_key({"TRADING_OTEL_API_KEY": "  "}) is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [("short-key", "key #1 is shorter than 16"), (f"{KEY},has a space inside!", "key #2 holds")],
)
def test_a_weak_key_refuses_to_start_without_showing_it(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        ServiceSettings.from_env({"TRADING_OTEL_API_KEYS": raw})
    assert "TRADING_OTEL_API_KEYS" in str(err.value)
    for key in raw.split(","):
        assert key not in str(err.value)


def test_reasons() -> None:
    auth = ApiKeyAuth((KEY, OTHER), "execution-gateway")
    assert auth.reason(None) == "missing"
    assert auth.reason("   ") == "missing"
    assert auth.reason(f"Bearer {KEY}") is None
    assert auth.reason(f"bearer   {OTHER}  ") is None
    assert auth.reason("Bearer") == "invalid"
    assert auth.reason(f"Basic {KEY}") == "invalid"
    assert auth.reason(f"Bearer {KEY}x") == "invalid"
    assert ApiKeyAuth((), "execution-gateway").reason(None) is None  # off without keys


def test_cli_refuses_a_shock_of_100_percent_before_touching_redis(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["fault", "price-shock", "--pct", "100", "--var-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "out of range" in result.output


def test_cli_pause_of_a_component_that_is_not_running(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["fault", "pg-down", "--var-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "postgres is not running" in result.output
    result = CliRunner().invoke(app, ["fault", "pause", "orchestrator", "--var-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "orchestrator is not running" in result.output


def test_an_open_api_puts_no_dependency_on_the_order_route() -> None:
    # No key set: the order path runs no auth code at all, not even a no-op dependency.
    assert ApiKeyAuth((), "execution-gateway").dependencies() == []
    (dep,) = ApiKeyAuth(("k" * 16,), "execution-gateway").dependencies()
    assert isinstance(dep.dependency, ApiKeyAuth)
