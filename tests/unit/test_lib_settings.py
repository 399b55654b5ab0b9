"""Settings.from_env: good values parse, every bad value warns once and falls back."""

from __future__ import annotations

import dataclasses
import logging
import os

import pytest

from otel._internal import bootstrap
from otel._internal import otlp_settings as settings_mod
from otel._internal.settings import Settings, symbol_policy
from otel._internal.variables import (
    BY_ENV,
    BY_FIELD,
    DEFAULT_EXCLUDED_ROUTES,
    DEFAULT_SYMBOL_CAP,
    VARIABLES,
    EnvVar,
)
from tests.fixtures.env_matrix import wide
from tests.fixtures.lib import OFFLINE


def test_defaults_without_any_variable() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert s.traces_exporters == ("otlp",)
    assert s.metrics_exporters == ("otlp",)
    assert s.sampler == "parentbased_always_on"
    assert s.shutdown_timeout_s == 5.0
    assert s.fastapi_operation_spans is False
    assert s.excluded_routes == DEFAULT_EXCLUDED_ROUTES
    assert s.otlp["traces"].protocol == "http/protobuf"
    assert s.otlp["traces"].endpoint is None  # the exporter applies its default


def test_good_values_parse() -> None:
    s = Settings.from_env(
        {
            "OTEL_SERVICE_NAME": "gw",
            "OTEL_RESOURCE_ATTRIBUTES": "service.version=1.2,team=exec%20core",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
            "OTEL_METRICS_EXPORTER": "otlp, prometheus",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_PROMETHEUS_PORT": "9500",
            "OTEL_PYTHON_EXCLUDED_URLS": "ignored",
            "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": "^/internal,/debug",
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "redis, HTTPX",
            "TRADING_OTEL_SYMBOLS": "aapl,MSFT,aapl",
            "TRADING_OTEL_SYMBOL_CAP": "20",
            "TRADING_OTEL_SHUTDOWN_TIMEOUT": "1.5",
            "TRADING_OTEL_FASTAPI_OPERATION_SPANS": "true",
            "TRADING_OTEL_LOG_FORMAT": "JSON",
        }
    )
    assert s.service_name == "gw"
    assert s.resource_attributes == {"service.version": "1.2", "team": "exec core"}
    assert (s.sampler, s.sampler_arg) == ("parentbased_traceidratio", 0.25)
    assert s.metrics_exporters == ("otlp", "prometheus")
    assert s.logs_exporters == ()
    assert s.otlp["traces"].protocol == "grpc"
    assert s.otlp["metrics"].protocol == "http/protobuf"
    assert s.prometheus_port == 9500
    assert s.excluded_urls == ("^/internal", "/debug")  # the FastAPI list wins
    assert s.disabled_instrumentations == {"redis", "httpx"}
    assert s.symbols == ("AAPL", "MSFT")
    assert s.symbol_cap == 20
    assert s.shutdown_timeout_s == 1.5
    assert s.fastapi_operation_spans is True
    assert s.log_format == "json"


# (variable, bad value, field, expected default)
BAD = [
    ("OTEL_TRACES_SAMPLER_ARG", "abc", "sampler_arg", 1.0),
    ("OTEL_TRACES_SAMPLER", "sometimes", "sampler", "parentbased_always_on"),
    ("OTEL_TRACES_EXPORTER", "zipkin", "traces_exporters", ("otlp",)),
    ("OTEL_METRICS_EXPORTER", "statsd", "metrics_exporters", ("otlp",)),
    ("OTEL_LOGS_EXPORTER", "syslog", "logs_exporters", ("otlp",)),
    ("OTEL_BSP_SCHEDULE_DELAY", "-5", "bsp_schedule_delay_ms", 5000.0),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "lots", "bsp_max_queue_size", 2048),
    ("OTEL_METRIC_EXPORT_INTERVAL", "-1000", "metric_export_interval_ms", 60000.0),
    ("OTEL_EXPORTER_PROMETHEUS_PORT", "99999", "prometheus_port", 9464),
    ("OTEL_SDK_DISABLED", "perhaps", "sdk_disabled", False),
    ("TRADING_OTEL_SHUTDOWN_TIMEOUT", "soon", "shutdown_timeout_s", 5.0),
    ("TRADING_OTEL_SHUTDOWN_TIMEOUT", "-3", "shutdown_timeout_s", 5.0),
    ("TRADING_OTEL_FASTAPI_OPERATION_SPANS", "maybe", "fastapi_operation_spans", False),
    ("TRADING_OTEL_LOG_FORMAT", "xml", "log_format", "auto"),
    ("TRADING_OTEL_SYMBOL_CAP", "many", "symbol_cap", 50),
]


@pytest.mark.parametrize(
    ("var", "value", "attr", "default"), BAD, ids=[f"{b[0]}={b[1]}" for b in BAD]
)
def test_bad_value_warns_once_and_uses_default(
    caplog: pytest.LogCaptureFixture, var: str, value: str, attr: str, default: object
) -> None:
    env = {var: value}
    if var == "OTEL_TRACES_SAMPLER_ARG":
        env["OTEL_TRACES_SAMPLER"] = "traceidratio"
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env(env)
    assert getattr(s, attr) == default
    warnings = [r.getMessage() for r in caplog.records if r.name == "otel.config"]
    assert len(warnings) == 1, warnings
    assert var in warnings[0] and repr(value) in warnings[0]


def test_none_with_an_unknown_name_still_means_none() -> None:
    assert Settings.from_env({"OTEL_TRACES_EXPORTER": "none,jaeger"}).traces_exporters == ()


def test_unknown_exporter_keeps_the_valid_ones(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env({"OTEL_METRICS_EXPORTER": "prometheus,bogus"})
    assert s.metrics_exporters == ("prometheus",)
    assert len(caplog.records) == 1 and "bogus" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("env", "signal", "expected"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
            "traces",
            "http://localhost:4318/v1/traces",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "not a url", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "metrics",
            "http://localhost:4317",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://gw:4318",
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "ftp://x",
            },
            "logs",
            "http://gw:4318/v1/logs",
        ),
    ],
)
def test_endpoint_that_is_not_a_url_is_replaced(
    caplog: pytest.LogCaptureFixture, env: dict[str, str], signal: str, expected: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env(env)
    assert s.otlp[signal].endpoint == expected
    # The shared variable is read for three signals but reported once.
    assert len(caplog.records) == 1
    bad_var, bad_value = next((k, v) for k, v in env.items() if not v.startswith("http://"))
    assert bad_var in caplog.records[0].getMessage()
    assert repr(bad_value) in caplog.records[0].getMessage()


def test_endpoints_resolve_per_signal_and_protocol() -> None:
    s = Settings.from_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://gw:4318/",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:9000/custom",
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "grpc",
        }
    )
    assert s.otlp["traces"].endpoint == "http://gw:4318/v1/traces"
    assert s.otlp["metrics"].endpoint == "http://m:9000/custom"  # signal-specific: as is
    assert s.otlp["logs"].endpoint == "http://gw:4318/"  # gRPC takes the base URL


def test_malformed_resource_attribute_pair_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env({"OTEL_RESOURCE_ATTRIBUTES": "a=1,broken,b=2"})
    assert s.resource_attributes == {"a": "1", "b": "2"}
    assert len(caplog.records) == 1 and "OTEL_RESOURCE_ATTRIBUTES" in caplog.messages[0]


def test_every_bad_value_at_once_still_builds_a_pipeline(caplog: pytest.LogCaptureFixture) -> None:
    env = {var: value for var, value, _, _ in BAD if var != "OTEL_EXPORTER_PROMETHEUS_PORT"}
    env.update(OFFLINE | {"OTEL_TRACES_EXPORTER": "zipkin,none"})
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "::nonsense::"
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        telemetry = bootstrap.build(Settings.from_env(env))
    try:
        with telemetry.tracer_provider.get_tracer("t").start_as_current_span("s") as span:
            assert span.get_span_context().is_valid
    finally:
        assert telemetry.shutdown(5)


@pytest.mark.parametrize("value", ["-10", "0", "1e300", wide("10"), "ten"])
def test_bad_otlp_timeout_warns_once_and_uses_the_sdk_default(
    caplog: pytest.LogCaptureFixture, value: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env({"OTEL_EXPORTER_OTLP_TIMEOUT": value})
    assert all(s.otlp[sig].timeout_s == 10.0 for sig in ("traces", "metrics", "logs"))
    assert len(caplog.records) == 1 and repr(value) in caplog.messages[0]


@pytest.mark.parametrize(("ms", "seconds"), [("2500", 2.5), ("1000", 1.0), ("500", 0.5)])
def test_otlp_timeouts_are_milliseconds_as_the_spec_says(
    caplog: pytest.LogCaptureFixture, ms: str, seconds: float
) -> None:
    # Before: values <= 1000 were read as seconds, so a spec-valid 1000 became 17 minutes.
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env({"OTEL_EXPORTER_OTLP_TIMEOUT": ms})
    assert s.otlp["logs"].timeout_s == seconds
    assert caplog.records == []


def test_a_timeout_that_looks_like_seconds_gets_a_hint_but_stays_ms(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "10"})
    assert s.otlp["traces"].timeout_s == 0.01
    assert s.otlp["metrics"].timeout_s is None
    [message] = caplog.messages
    assert "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT" in message and "did you mean seconds" in message


@pytest.mark.parametrize(
    ("env", "named", "advice"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"},
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://c:4318/v1/logs",
                "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "grpc",
            },
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf",
        ),
    ],
)
def test_port_and_protocol_mismatch_warns_once_and_keeps_the_setting(
    caplog: pytest.LogCaptureFixture, env: dict[str, str], named: str, advice: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env(env)
    [message] = caplog.messages
    assert named in message and advice in message
    url = env[named]
    assert any(e.endpoint is not None and e.endpoint.startswith(url) for e in s.otlp.values())


def test_matching_port_and_protocol_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
        Settings.from_env(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
        )
        Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:9999"})
    assert caplog.records == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://localhost:4318/v1/{}"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, "http://c:4318/v1/{}"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:9000/"}, "https://c:9000/v1/{}"),
    ],
    ids=["default", "grpc-port", "own-port"],
)
def test_grpc_without_its_extra_warns_and_exports_over_http(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    env: dict[str, str],
    expected: str,
) -> None:
    monkeypatch.setattr(settings_mod, "grpc_installed", lambda: False)
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env({**env, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    [message] = caplog.messages
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" in message and "trading-otel[grpc]" in message
    for signal in ("traces", "metrics", "logs"):
        assert s.otlp[signal].protocol == "http/protobuf"
        assert s.otlp[signal].endpoint == expected.format(signal)


def test_grpc_with_its_extra_stays_grpc(caplog: pytest.LogCaptureFixture) -> None:
    assert settings_mod.grpc_installed()  # the test venv has every extra
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert caplog.records == [] and s.otlp["traces"].protocol == "grpc"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("OTEL_BSP_SCHEDULE_DELAY", "1e300"),  # would overflow the processor's wait
        ("OTEL_BSP_SCHEDULE_DELAY", wide("5")),  # float() takes fullwidth digits
        ("OTEL_BSP_MAX_QUEUE_SIZE", wide("2")),
        ("TRADING_OTEL_SHUTDOWN_TIMEOUT", "1e300"),  # would overflow the exit deadline
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://" + wide("collector") + ":4318"),
    ],
)
def test_huge_and_non_ascii_numbers_are_rejected(
    caplog: pytest.LogCaptureFixture, var: str, value: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        Settings.from_env({var: value})
    [message] = caplog.messages
    assert var in message and repr(value) in message


def test_bad_excluded_url_pattern_is_dropped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env({"OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": "^/ok,(,/also"})
        assert s.excluded_paths_regex() is not None
    assert s.excluded_urls == ("^/ok", "/also")
    [message] = caplog.messages
    assert "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS" in message and "'('" in message


def test_rejected_values_leave_os_environ_so_the_sdk_never_reads_them(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The gRPC exporters float() their timeout from os.environ whatever we pass them.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "abc")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "prometheus,bogus")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")  # advice: kept
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        first = Settings.from_env(os.environ)
        second = Settings.from_env(os.environ)
    assert "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT" not in os.environ
    assert os.environ["OTEL_METRICS_EXPORTER"] == "prometheus"
    assert os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://c:4317"
    assert first == second
    assert len(caplog.records) == 3  # one per variable, none from the second read


def test_every_default_is_the_tables() -> None:
    defaults = Settings()
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert {v.field for v in VARIABLES} == fields
    for f in fields - {"otlp", "resource_attributes"}:
        assert getattr(defaults, f) == BY_FIELD[f].default, f
    assert defaults.otlp["traces"].protocol == BY_ENV["OTEL_EXPORTER_OTLP_PROTOCOL"].default


# A value every simple kind rejects (fullwidth digits: float() and int() would take them).
_REJECTED = {"boolean": "maybe", "integer": wide("7"), "number": wide("7"), "choice": "bogus"}


@pytest.mark.parametrize(
    "row",
    [v for v in VARIABLES if v.kind in _REJECTED and not v.dedicated],
    ids=lambda v: v.env,
)
def test_every_table_row_is_read_and_falls_back_to_its_default(
    caplog: pytest.LogCaptureFixture, row: EnvVar
) -> None:
    value = _REJECTED[row.kind]
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env({row.env: value})
    assert getattr(s, row.field) == row.default
    [message] = caplog.messages
    assert row.env in message and repr(value) in message


def test_the_symbol_guard_uses_the_settings_parser(caplog: pytest.LogCaptureFixture) -> None:
    env = {"TRADING_OTEL_SYMBOLS": "aapl, msft,AAPL", "TRADING_OTEL_SYMBOL_CAP": "20000"}
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env(env)
        assert symbol_policy(env) == (s.symbols, s.symbol_cap) == (("AAPL", "MSFT"), 50)
    assert len(caplog.messages) == 2  # one per read, the same words
    assert caplog.messages[0] == caplog.messages[1]
    assert symbol_policy({}) == (None, DEFAULT_SYMBOL_CAP)
