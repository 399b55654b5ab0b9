"""Secrets in exception text and log messages are masked before any exporter sees them."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import Status, StatusCode

from otel._internal import sanitize, scrub
from otel._internal.logs import ConsoleFormatter, JsonFormatter, setup_logging
from otel._internal.sanitize import MASK
from otel._internal.settings import Settings
from tests.fixtures.lib import OFFLINE, MemoryTelemetry, memory_telemetry


@pytest.fixture
def mt() -> Iterator[MemoryTelemetry]:
    t = memory_telemetry()
    try:
        yield t
    finally:
        t.telemetry.shutdown(5)


@pytest.fixture
def shipping(mt: MemoryTelemetry) -> Iterator[logging.Logger]:
    """A logger whose records go to ``mt.logs`` over the OTLP handler, not to stdout."""
    root = logging.getLogger()
    level = root.level
    undo = setup_logging(
        Settings.from_env({**OFFLINE, "TRADING_OTEL_LOG_STDOUT": "false"}),
        mt.telemetry.logger_provider,
    )
    try:
        yield logging.getLogger("services.gw")
    finally:
        undo()
        root.setLevel(level)


def failed_span(mt: MemoryTelemetry, message: str) -> ReadableSpan:
    """The exported span of a block that raised ``ValueError(message)``."""
    tracer = mt.telemetry.tracer_provider.get_tracer("t")
    with pytest.raises(ValueError), tracer.start_as_current_span("model.reload"):
        raise ValueError(message)
    (span,) = mt.spans.get_finished_spans()
    return span


# --- spans --------------------------------------------------------------------------


def test_exception_on_a_span_keeps_names_not_values(mt: MemoryTelemetry) -> None:
    span = failed_span(mt, 'bad entry: token=CANARY1 {"password": "CANARY2"}')
    (event,) = span.events
    attrs = dict(event.attributes or {})
    assert attrs["exception.type"] == "ValueError"
    assert attrs["exception.message"] == f'bad entry: token={MASK} {{"password": "{MASK}"}}'
    assert f"token={MASK}" in attrs["exception.stacktrace"]
    assert f'"password": "{MASK}"' in attrs["exception.stacktrace"]
    assert span.status.status_code is StatusCode.ERROR
    assert (
        span.status.description == f'ValueError: bad entry: token={MASK} {{"password": "{MASK}"}}'
    )
    assert "CANARY" not in span.to_json()
    assert event.dropped_attributes == 0


def test_a_normal_span_is_left_as_it_was(mt: MemoryTelemetry) -> None:
    tracer = mt.telemetry.tracer_provider.get_tracer("t")
    status = Status(StatusCode.ERROR, "broker timeout: 5s, key rotation pending")
    with tracer.start_as_current_span("order.place", attributes={"qty": 5}) as live:
        live.add_event("fill", {"price": 187.25, "note": "ok: filled"})
        live.set_status(status)
        before = live.events[0].attributes  # type: ignore[attr-defined]
    with tracer.start_as_current_span("order.ack"):
        pass
    place, ack = mt.spans.get_finished_spans()
    assert place.events[0].attributes is before  # not copied
    assert place.status is status
    assert dict(place.attributes or {}) == {"qty": 5}
    assert ack.events == () and ack.status.description is None


def test_a_configured_name_is_masked_too(mt: MemoryTelemetry) -> None:
    undo = sanitize.set_sensitive_params(["account_ref"])
    try:
        span = failed_span(mt, "no such account account_ref=CANARY6 qty=5")
    finally:
        undo()
    message = dict(span.events[0].attributes or {})["exception.message"]
    assert message == f"no such account account_ref={MASK} qty=5"
    assert "CANARY6" not in span.to_json()


def test_the_scrubbers_come_first_in_their_chains(mt: MemoryTelemetry) -> None:
    # What runs before them could hand the data to an export thread unmasked.
    spans = mt.telemetry.tracer_provider._active_span_processor._span_processors
    assert isinstance(spans[0], scrub.SpanScrubber)
    provider = mt.telemetry.logger_provider
    assert provider is not None
    logs = provider._multi_log_record_processor._log_record_processors
    assert isinstance(logs[0], scrub.LogScrubber)


def test_an_unknown_sdk_layout_means_one_warning_and_no_scrubbing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert scrub._sdk_shape_ok()
    monkeypatch.setattr(scrub, "_sdk_shape_ok", lambda: False)
    with caplog.at_level(logging.WARNING, "otel.scrub"):
        processor = scrub.span_scrubber()
    assert type(processor) is SpanProcessor
    assert "not masked in the process" in caplog.text


def test_a_failure_while_masking_never_reaches_the_caller(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    span = ReadableSpan("odd", events=(object(),), status=Status(StatusCode.ERROR, "x"))  # type: ignore[arg-type]
    monkeypatch.setattr(scrub, "_warned", set())
    with caplog.at_level(logging.WARNING, "otel.scrub"):
        scrub.SpanScrubber().on_end(span)
        scrub.SpanScrubber().on_end(span)
    assert caplog.text.count("exported as is") == 1


# --- logs ---------------------------------------------------------------------------


def test_log_message_and_exception_keep_names_not_values(
    mt: MemoryTelemetry, shipping: logging.Logger
) -> None:
    shipping.warning("login failed api_key=%s", "CANARY3")
    try:
        raise RuntimeError("refresh failed secret=CANARY4")
    except RuntimeError:
        shipping.exception("token refresh: password: %s", "CANARY5")
    login, refresh = (r.log_record for r in mt.logs.get_finished_logs())
    assert login.body == f"login failed api_key={MASK}"
    assert refresh.body == f"token refresh: password: {MASK}"
    attrs = dict(refresh.attributes or {})
    assert attrs["exception.message"] == f"refresh failed secret={MASK}"
    assert f"refresh failed secret={MASK}" in attrs["exception.stacktrace"]
    shipped = "".join(r.to_json() for r in mt.logs.get_finished_logs())
    assert "CANARY" not in shipped


def test_a_normal_log_record_is_left_as_it_was(
    mt: MemoryTelemetry, shipping: logging.Logger
) -> None:
    shipping.warning("order %s rejected: qty=%d over the limit", "o-7", 5000, extra={"sym": "A"})
    (rec,) = (r.log_record for r in mt.logs.get_finished_logs())
    assert rec.body == "order o-7 rejected: qty=5000 over the limit"
    attrs = dict(rec.attributes or {})
    assert attrs["sym"] == "A" and "exception.message" not in attrs


def test_a_structured_body_has_its_strings_masked(mt: MemoryTelemetry) -> None:
    provider = mt.telemetry.logger_provider
    assert provider is not None
    provider.get_logger("t").emit(body={"request": "x-api-key: CANARY7", "qty": 5})
    (rec,) = (r.log_record for r in mt.logs.get_finished_logs())
    assert rec.body == {"request": f"x-api-key: {MASK}", "qty": 5}


# --- stdout lines -------------------------------------------------------------------


def _record(msg: str, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise RuntimeError("refresh failed secret=CANARY9")
        except RuntimeError:
            info = sys.exc_info()
    return logging.LogRecord("services.gw", logging.ERROR, __file__, 1, msg, None, info)


@pytest.mark.parametrize("formatter", [JsonFormatter, ConsoleFormatter])
def test_stdout_lines_keep_names_not_values(formatter: type[logging.Formatter]) -> None:
    line = formatter().format(_record("login failed token=CANARY8", exc=True))
    assert "CANARY" not in line
    assert f"token={MASK}" in line and f"secret={MASK}" in line
    plain = formatter().format(_record("order o-1 placed: qty=5"))
    assert "order o-1 placed: qty=5" in plain


def test_stdout_json_message_is_masked_in_its_field() -> None:
    out = json.loads(JsonFormatter().format(_record("api_key=CANARY10 refused")))
    assert out["msg"] == f"api_key={MASK} refused"
