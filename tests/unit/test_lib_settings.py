"""Settings.from_env: good values parse, every bad value warns once and falls back."""

from __future__ import annotations

import logging

import pytest

from otel._internal import bootstrap
from otel._internal.settings import DEFAULT_EXCLUDED_ROUTES, Settings
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


def test_bad_otlp_timeout_warns_once_and_uses_the_sdk_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        s = Settings.from_env({"OTEL_EXPORTER_OTLP_TIMEOUT": "-10"})
    assert all(s.otlp[sig].timeout_s == 10.0 for sig in ("traces", "metrics", "logs"))
    assert len(caplog.records) == 1 and "'-10'" in caplog.messages[0]
    assert Settings.from_env({"OTEL_EXPORTER_OTLP_TIMEOUT": "2500"}).otlp["logs"].timeout_s == 2.5
