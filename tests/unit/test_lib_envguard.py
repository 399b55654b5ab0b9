"""The environment guard: bad OTEL_* values OpenTelemetry parses itself are dropped, once."""

from __future__ import annotations

import logging
import os

import pytest

from otel._internal import envguard
from tests.fixtures import env_matrix
from tests.fixtures.env_matrix import wide


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "otel.config"]


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "abc"),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "x"),
        ("OTEL_SPAN_LINK_COUNT_LIMIT", "-4"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-1"),
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "1e3"),
        ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", wide("12")),
        ("OTEL_PROPAGATORS", "nonexistent"),
        ("OTEL_PYTHON_CONTEXT", "bogus"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
        ("OTEL_METRICS_EXEMPLAR_FILTER", "bogus"),
        ("OTEL_PYTHON_LOG_LEVEL", "nope"),
        ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/nonexistent/ca.pem"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "perhaps"),
        ("OTEL_PYTHON_HTTPX_EXCLUDED_URLS", "("),
    ],
)
def test_bad_value_is_removed_with_one_warning(
    caplog: pytest.LogCaptureFixture, var: str, value: str
) -> None:
    env = {var: value, "OTEL_SERVICE_NAME": "kept"}
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        assert envguard.check(env) == [var]
    assert env == {"OTEL_SERVICE_NAME": "kept"}
    [message] = warnings_of(caplog)
    assert var in message and repr(value) in message and "default" in message


@pytest.mark.parametrize("value", ["", " ", "\t \n"])
def test_empty_values_are_unset_silently(caplog: pytest.LogCaptureFixture, value: str) -> None:
    # The SDK reads an empty limit as "no limit" and a blank OTEL_PROPAGATORS as a name.
    env = {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": value, "OTEL_PROPAGATORS": value}
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        assert envguard.check(env) == []
    assert env == {}
    assert warnings_of(caplog) == []


def test_good_values_and_unknown_variables_are_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": " 64 ",
        "OTEL_PROPAGATORS": "tracecontext, baggage",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc%20def,x-team = exec",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "GZIP",
        "OTEL_SOMETHING_NEW": "whatever",
        "OTEL_TRACES_SAMPLER": "bogus",  # Settings' variable: not the guard's to judge
    }
    before = dict(env)
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        assert envguard.check(env) == []
    assert env == before
    assert warnings_of(caplog) == []


def test_a_list_keeps_its_good_entries(caplog: pytest.LogCaptureFixture) -> None:
    env = {"OTEL_PROPAGATORS": "tracecontext,bogus,baggage"}
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        envguard.check(env)
    assert env == {"OTEL_PROPAGATORS": "tracecontext,baggage"}
    assert "'bogus'" in warnings_of(caplog)[0]


def test_headers_are_never_echoed(caplog: pytest.LogCaptureFixture) -> None:
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer s3cret,tokens3cretnoequals"}
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        envguard.check(env)
    assert env == {"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer s3cret"}
    [message] = warnings_of(caplog)
    assert "OTEL_EXPORTER_OTLP_HEADERS" in message and "#2" in message
    assert "s3cret" not in message


def test_grpc_compression_accepts_only_gzip(caplog: pytest.LogCaptureFixture) -> None:
    # The gRPC exporters raise on anything but gzip, even on "none".
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "deflate",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "none",
        "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "deflate",  # HTTP: fine
    }
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        assert envguard.check(env) == ["OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"]
    assert "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION" not in env  # removed, silently
    assert env["OTEL_EXPORTER_OTLP_METRICS_COMPRESSION"] == "deflate"


def test_long_values_are_truncated() -> None:
    assert envguard.shown("x" * 500).endswith("...'")
    assert len(envguard.shown("x" * 500)) < 70


def test_guard_runs_once_per_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(envguard, "_done", False)
    monkeypatch.setenv("OTEL_SPAN_LINK_COUNT_LIMIT", "-4")
    with caplog.at_level(logging.WARNING, logger="otel.config"):
        assert envguard.guard() == ["OTEL_SPAN_LINK_COUNT_LIMIT"]
        monkeypatch.setenv("OTEL_SPAN_LINK_COUNT_LIMIT", "-5")
        assert envguard.guard() == []
    assert len(warnings_of(caplog)) == 1


def test_an_imported_propagator_is_rebuilt_from_the_cleaned_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry import propagate

    previous = propagate.get_global_textmap()
    monkeypatch.delenv("OTEL_PROPAGATORS", raising=False)
    try:
        propagate.set_global_textmap(propagate.composite.CompositePropagator([]))
        envguard._rederive(["OTEL_PROPAGATORS"])
        assert propagate.get_global_textmap().fields == {"traceparent", "tracestate", "baggage"}
    finally:
        propagate.set_global_textmap(previous)


def test_each_variable_is_validated_in_one_place() -> None:
    """The guard never judges a variable Settings reads (that would warn twice)."""
    owned_by_settings = env_matrix.settings_variables()
    assert not owned_by_settings & set(envguard.CHECKS)
    assert not [v for v in owned_by_settings if envguard.lookup(v) is not None]


def test_the_guard_imports_no_opentelemetry() -> None:
    import subprocess
    import sys

    code = (
        "import sys, importlib.util as u\n"
        "spec = u.spec_from_file_location('g', sys.argv[1])\n"
        "m = u.module_from_spec(spec); spec.loader.exec_module(m); m.check({})\n"
        "print(sorted(n for n in sys.modules if n.startswith(('opentelemetry', 'otel'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code, envguard.__file__],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
    )
    assert out.stdout.strip() == "[]"
