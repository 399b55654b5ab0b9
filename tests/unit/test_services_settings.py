"""The services' settings: risk and limit settings fail closed, the other tunables fail open."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import pytest

from services.common.config import FAIL_CLOSED, SETTINGS, ServiceSettings, SettingsError

REPO = Path(__file__).resolve().parents[2]

#: Values a person might type for a limit, none of which is one.
BAD_LIMITS = [
    "500 shares",
    "$25,000",
    "25,000",
    "1_000",
    "abc",
    "-5",
    "+5",
    "0",
    "0.0",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e999",
    "10k",
    "5 000",
    "\uff11\uff12\uff13",
    "\u0661\u0662\u0663",
    "\u00a0500",
    "0x10",
    "1/2",
    ".5",
]
NUMERIC_LIMITS = [
    "TRADING_OTEL_MAX_POSITION",
    "TRADING_OTEL_MAX_EXPOSURE_USD",
    "TRADING_OTEL_DAILY_LOSS_LIMIT_USD",
    "TRADING_OTEL_BROKER_TIMEOUT",
    "TRADING_OTEL_STALE_AFTER",
    "TRADING_OTEL_ORCHESTRATOR_ORDER_QTY",
]


def test_the_fail_closed_list() -> None:
    assert FAIL_CLOSED == (
        "TRADING_OTEL_MAX_POSITION",
        "TRADING_OTEL_MAX_EXPOSURE_USD",
        "TRADING_OTEL_DAILY_LOSS_LIMIT_USD",
        "TRADING_OTEL_BREAKER_ERRORS",
        "TRADING_OTEL_BROKER_TIMEOUT",
        "TRADING_OTEL_STALE_AFTER",
        "TRADING_OTEL_MAX_BODY_BYTES",
        "TRADING_OTEL_ORCHESTRATOR_ORDER_QTY",
        "TRADING_OTEL_ORCHESTRATOR_INTERVAL",
        "TRADING_OTEL_API_KEYS",
    )


def test_every_field_is_declared_once() -> None:
    declared = [s.field for s in SETTINGS]
    assert len(declared) == len(set(declared))
    fields = {f.name for f in dataclasses.fields(ServiceSettings)}
    assert set(declared) == fields - {"api_keys", "api_key"}


@pytest.mark.parametrize("var", NUMERIC_LIMITS)
@pytest.mark.parametrize("raw", BAD_LIMITS)
def test_a_bad_limit_refuses_and_names_variable_value_and_form(var: str, raw: str) -> None:
    with pytest.raises(SettingsError) as err:
        ServiceSettings.from_env({var: raw})
    message = str(err.value)
    assert f"{var}={raw!r}: expected " in message
    assert err.value.problems == (message.removeprefix("invalid risk or limit setting: "),)


@pytest.mark.parametrize("var", ["TRADING_OTEL_BREAKER_ERRORS", "TRADING_OTEL_MAX_BODY_BYTES"])
@pytest.mark.parametrize("raw", ["2.5", "1e3", "0", "00", "-1", "five", "\uff11\uff16"])
def test_whole_number_limits(var: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(f"{var}={raw!r}: expected a whole number")):
        ServiceSettings.from_env({var: raw})


def test_the_orchestrator_interval_may_be_zero_but_not_off() -> None:
    assert (
        ServiceSettings.from_env(
            {"TRADING_OTEL_ORCHESTRATOR_INTERVAL": "0"}
        ).orchestrator_interval_s
        == 0
    )
    # "off" falling back to the 10 s default would start trading on a timer.
    with pytest.raises(SettingsError, match="TRADING_OTEL_ORCHESTRATOR_INTERVAL='off'"):
        ServiceSettings.from_env({"TRADING_OTEL_ORCHESTRATOR_INTERVAL": "off"})


def test_the_orchestrator_order_is_bounded_like_an_order() -> None:
    ok = ServiceSettings.from_env({"TRADING_OTEL_ORCHESTRATOR_ORDER_QTY": "1000000"})
    assert ok.orchestrator_order_qty == 1_000_000
    with pytest.raises(SettingsError, match=r"expected a number > 0 and <= 1000000"):
        ServiceSettings.from_env({"TRADING_OTEL_ORCHESTRATOR_ORDER_QTY": "1000001"})


def test_good_limits_are_read() -> None:
    s = ServiceSettings.from_env(
        {
            "TRADING_OTEL_MAX_POSITION": " 500 ",
            "TRADING_OTEL_MAX_EXPOSURE_USD": "1e9",
            "TRADING_OTEL_DAILY_LOSS_LIMIT_USD": "25000.50",
            "TRADING_OTEL_BREAKER_ERRORS": "3",
            "TRADING_OTEL_BROKER_TIMEOUT": "0.5",
            "TRADING_OTEL_STALE_AFTER": "3600",
            "TRADING_OTEL_MAX_BODY_BYTES": "65536",
            "TRADING_OTEL_ORCHESTRATOR_ORDER_QTY": "2.5",
            "TRADING_OTEL_ORCHESTRATOR_INTERVAL": "0.25",
        }
    )
    assert (s.max_position, s.max_exposure_usd, s.daily_loss_limit_usd) == (500, 1e9, 25000.5)
    assert (s.breaker_errors, s.broker_timeout_s, s.stale_after_s) == (3, 0.5, 3600)
    assert (s.max_body_bytes, s.orchestrator_order_qty, s.orchestrator_interval_s) == (
        65536,
        2.5,
        0.25,
    )


def test_unset_or_empty_limits_take_the_documented_default() -> None:
    defaults = ServiceSettings()
    assert ServiceSettings.from_env({}) == defaults
    assert ServiceSettings.from_env(dict.fromkeys(FAIL_CLOSED, "  ")) == defaults


def test_every_bad_limit_is_listed_in_one_error_with_the_key_never_shown() -> None:
    env = {
        "TRADING_OTEL_MAX_POSITION": "500 shares",
        "TRADING_OTEL_DAILY_LOSS_LIMIT_USD": "$25,000",
        "TRADING_OTEL_API_KEYS": "short-secret",
        "TRADING_OTEL_FEED_INTERVAL": "fast",  # fail-open: not in the error
    }
    with pytest.raises(SettingsError) as err:
        ServiceSettings.from_env(env)
    assert err.value.problems[:2] == (
        "TRADING_OTEL_MAX_POSITION='500 shares': expected a number > 0, in ASCII digits, "
        "e.g. 10000, 2.5 or 1e6, with no unit, sign, currency or separator",
        "TRADING_OTEL_DAILY_LOSS_LIMIT_USD='$25,000': expected a number > 0, in ASCII digits, "
        "e.g. 10000, 2.5 or 1e6, with no unit, sign, currency or separator",
    )
    assert "TRADING_OTEL_API_KEYS: key #1" in err.value.problems[2]
    assert "short-secret" not in str(err.value) and "FEED_INTERVAL" not in str(err.value)


def test_a_long_value_is_cut_short_in_the_message() -> None:
    with pytest.raises(SettingsError) as err:
        ServiceSettings.from_env({"TRADING_OTEL_MAX_POSITION": "9" * 5000 + "x"})
    assert len(str(err.value)) < 400 and "(5001 chars)" in str(err.value)


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("TRADING_OTEL_FEED_INTERVAL", "nan"),
        ("TRADING_OTEL_FEED_INTERVAL", "0"),
        ("TRADING_OTEL_BROKER_LATENCY_MS", "inf"),
        ("TRADING_OTEL_SYMBOLS", " , "),
    ],
)
def test_other_tunables_fail_open_with_a_warning(
    var: str, raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="services.config"):
        assert ServiceSettings.from_env({var: raw}) == ServiceSettings()
    if raw.strip(" ,"):
        assert f"{var}={raw!r} is invalid (expected " in caplog.text


def test_the_services_doc_marks_exactly_the_fail_closed_settings() -> None:
    table = (REPO / "docs" / "services.md").read_text().split("## Environment", 1)[1]
    marked = set(re.findall(r"^\| `(TRADING_OTEL_\w+)`[^\n]*\*\*fails closed\*\*", table, re.M))
    assert marked == set(FAIL_CLOSED)


def test_the_docs_quote_the_real_refusal() -> None:
    with pytest.raises(SettingsError) as err:
        ServiceSettings.from_env({"TRADING_OTEL_MAX_POSITION": "500 shares"})
    line = f"execution-gateway: refusing to start: {err.value}"
    for doc in ("configuration.md", "services.md"):
        assert line in (REPO / "docs" / doc).read_text(), doc
