"""Log lines and OTLP log records carry the trace context of the span they were emitted in."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from otel._internal import bootstrap
from otel._internal.logs import ConsoleFormatter, JsonFormatter, make_formatter, setup_logging
from otel._internal.sanitize import redact_pairs
from otel._internal.settings import Settings
from tests.fixtures.lib import OFFLINE, MemoryTelemetry, memory_telemetry


@pytest.fixture
def mt() -> Iterator[MemoryTelemetry]:
    t = memory_telemetry()
    root = logging.getLogger()
    level = root.level
    try:
        yield t
    finally:
        root.setLevel(level)
        t.telemetry.shutdown(5)


def record(msg: str = "order %s placed", *args: object) -> logging.LogRecord:
    return logging.LogRecord("services.gw", logging.INFO, __file__, 1, msg, args or ("o-1",), None)


def test_json_line_has_ids_inside_a_span_only(mt: MemoryTelemetry) -> None:
    fmt = JsonFormatter()
    outside = json.loads(fmt.format(record()))
    assert "trace_id" not in outside and outside["msg"] == "order o-1 placed"
    with mt.telemetry.tracer_provider.get_tracer("t").start_as_current_span("place") as span:
        inside = json.loads(fmt.format(record()))
    ctx = span.get_span_context()
    assert inside["trace_id"] == format(ctx.trace_id, "032x")
    assert inside["span_id"] == format(ctx.span_id, "016x")
    assert inside["level"] == "info" and inside["logger"] == "services.gw"


def test_extra_fields_reach_the_json_line() -> None:
    rec = record()
    rec.symbol = "AAPL"
    assert json.loads(JsonFormatter().format(rec))["symbol"] == "AAPL"


def test_console_line_ends_with_the_ids(mt: MemoryTelemetry) -> None:
    with mt.telemetry.tracer_provider.get_tracer("t").start_as_current_span("place") as span:
        line = ConsoleFormatter().format(record())
    assert line.endswith(f"span_id={format(span.get_span_context().span_id, '016x')}")
    assert "order o-1 placed trace_id=" in line


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_format_is_console_on_a_tty_and_json_otherwise() -> None:
    assert isinstance(make_formatter("auto", _Tty()), ConsoleFormatter)
    assert isinstance(make_formatter("auto", io.StringIO()), JsonFormatter)
    assert isinstance(make_formatter("json", _Tty()), JsonFormatter)


def test_records_go_to_otlp_with_trace_context(mt: MemoryTelemetry) -> None:
    settings = Settings.from_env({**OFFLINE, "TRADING_OTEL_LOG_STDOUT": "false"})
    undo = setup_logging(settings, mt.telemetry.logger_provider)
    log = logging.getLogger("services.gw")
    try:
        with mt.telemetry.tracer_provider.get_tracer("t").start_as_current_span("place") as span:
            log.warning("order %s rejected", "o-7")
        logging.getLogger("opentelemetry.exporter.test").warning("export failed")
    finally:
        undo()
    log.warning("after undo: not shipped")
    shipped = [r.log_record for r in mt.logs.get_finished_logs()]
    assert [r.body for r in shipped] == ["order o-7 rejected"]
    assert shipped[0].trace_id == span.get_span_context().trace_id
    assert shipped[0].span_id == span.get_span_context().span_id


def test_logs_exporter_none_builds_no_logger_provider() -> None:
    telemetry = bootstrap.build(Settings.from_env(OFFLINE))
    try:
        assert telemetry.logger_provider is None
    finally:
        telemetry.shutdown(5)


@pytest.mark.parametrize(("app_level", "shipped"), [
    (logging.NOTSET, ["pool exhausted"]),                   # left alone: quiet per request
    (logging.INFO, ["HTTP Request: POST", "pool exhausted"]),  # the app's choice stays
])  # fmt: skip
def test_per_request_http_client_lines_stay_out_unless_asked_for(
    mt: MemoryTelemetry, app_level: int, shipped: list[str]
) -> None:
    httpx_log, root = logging.getLogger("httpx"), logging.getLogger()
    saved = httpx_log.level, root.level
    httpx_log.setLevel(app_level)
    root.setLevel(logging.WARNING)  # Python's default, which configure() lifts to INFO
    settings = Settings.from_env({**OFFLINE, "TRADING_OTEL_LOG_STDOUT": "false"})
    undo = setup_logging(settings, mt.telemetry.logger_provider)
    try:
        assert root.level == logging.INFO
        httpx_log.info("HTTP Request: POST")
        httpx_log.warning("pool exhausted")
    finally:
        undo()
        httpx_log.setLevel(saved[0])
        root.setLevel(saved[1])
    assert [r.log_record.body for r in mt.logs.get_finished_logs()] == shipped


@pytest.mark.parametrize("formatter", [JsonFormatter, ConsoleFormatter])
def test_a_lone_surrogate_does_not_fail_the_stream(formatter: type[logging.Formatter]) -> None:
    # surrogateescape decoding of a bad byte puts a lone surrogate in a message; a strict
    # UTF-8 stream (stdout in a UTF-8 locale) cannot write it.
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter())
    failures: list[logging.LogRecord] = []
    handler.handleError = failures.append  # type: ignore[method-assign]
    rec = record("order %s \ud800 placed", "o-\udcff")
    rec.symbol = "A\udc00PL"
    try:
        raise ValueError("boom \ud800")
    except ValueError:
        rec.exc_info = sys.exc_info()
    handler.handle(rec)
    handler.handle(record())  # the next line is written too
    assert failures == []
    lines = raw.getvalue().decode("utf-8")
    assert lines.count("\n") >= 2 and "order o-1 placed" in lines
    if formatter is ConsoleFormatter:
        assert "order o-\ufffd \ufffd placed" in lines and "boom \ufffd" in lines
    else:  # ASCII JSON: the escape survives, and parses
        first = json.loads(lines.splitlines()[0])
        assert first["msg"] == "order o-\udcff \ud800 placed" and first["symbol"] == "A\udc00PL"


@pytest.mark.parametrize(
    "args",
    [
        ("o-1",),
        ('quote " back\\slash \n newline \t tab \x01 ctl',),
        ("non-ASCII é € 漢 \U0001f600",),
        ("lone \ud800 surrogate",),
        ("api_key=abc123 token: t-9",),  # masked on both paths
    ],
)
@pytest.mark.parametrize("in_span", [False, True])
@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING, 5])
def test_plain_lines_equal_the_encoder_path(
    mt: MemoryTelemetry, args: tuple[str], in_span: bool, level: int
) -> None:
    fmt = JsonFormatter()
    rec = logging.LogRecord("services.gw ü", level, __file__, 1, "order %s placed", args, None)
    tracer = mt.telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("place") if in_span else contextlib.nullcontext():
        line = fmt.format(rec)  # the plain path: no extra field, no exception
        assert line == fmt.full_line(rec, redact_pairs(rec.getMessage()))
    parsed = json.loads(line)
    assert ("trace_id" in parsed) is in_span
    assert "REDACTED" in parsed["msg"] or "api_key" not in parsed["msg"]
