"""Python logging: stdout lines carrying trace context, and records shipped over OTLP."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider

from otel._internal.sanitize import redact_pairs
from otel._internal.settings import Settings
from otel._internal.text import clean_text

#: Attributes every LogRecord has; anything else was passed through ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "otelSpanID",
    "otelTraceID",
    "otelTraceSampled",
    "otelServiceName",
}
_OURS = "_trading_otel"
_SCALARS = (str, int, float, bool)
_PLAIN = frozenset(_SCALARS)
#: Built once: ``json.dumps(..., default=str)`` would build a new encoder per line.
_encode = json.JSONEncoder(default=str).encode


def trace_fields() -> dict[str, str]:
    """``trace_id``/``span_id`` of the current span as hex, or {} outside a span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``trace_id``/``span_id`` when emitted inside a span."""

    def format(self, record: logging.LogRecord) -> str:
        # The line leaves the process through a log shipper: mask secrets here too.
        msg = redact_pairs(record.getMessage())
        name = record.name
        if vars(record).keys() <= _STANDARD and not record.exc_info and type(name) is str:
            return _plain_line(record, name, msg)
        return self.full_line(record, msg)

    def full_line(self, record: logging.LogRecord, msg: str) -> str:
        """The line through the JSON encoder: any ``extra=`` field, an exception."""
        out: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": msg,
        }
        out.update(trace_fields())
        for key, value in vars(record).items():
            if key not in _STANDARD and key[0] != "_":
                out[key] = (
                    value if type(value) in _PLAIN or isinstance(value, _SCALARS) else repr(value)
                )
        if record.exc_info:
            out["exc"] = redact_pairs(self.formatException(record.exc_info))
        # ensure_ascii: the line is ASCII, so a lone surrogate cannot fail the stream; it
        # stays a \udXXXX escape, which Go's JSON decoder (collector, Loki) reads as U+FFFD.
        return _encode(out)


def _plain_line(record: logging.LogRecord, name: str, msg: str) -> str:
    # Most lines have no extra field and no exception: the same text as full_line (the
    # encoder's own ASCII string escape, its separators), without building a dict and
    # walking the encoder (~2 µs of ~6 a line).
    quote = encode_basestring_ascii
    line = (
        f'{{"ts": "{_iso(record.created)}", "level": {quote(record.levelname.lower())}, '
        f'"logger": {quote(name)}, "msg": {quote(msg)}'
    )
    ids = trace_fields()
    if ids:
        line += f', "trace_id": "{ids["trace_id"]}", "span_id": "{ids["span_id"]}"'
    return line + "}"


class ConsoleFormatter(logging.Formatter):
    """A readable line for a terminal, with the trace context at the end."""

    def format(self, record: logging.LogRecord) -> str:
        message = redact_pairs(record.getMessage())
        line = f"{_iso(record.created)} {record.levelname:<7} {record.name}: {message}"
        ids = trace_fields()
        if ids:
            line += f" trace_id={ids['trace_id']} span_id={ids['span_id']}"
        if record.exc_info:
            line += "\n" + redact_pairs(self.formatException(record.exc_info))
        # A lone surrogate would make the stream's write raise and lose the line.
        return line if line.isascii() else clean_text(line)


#: The last whole second formatted, and its text; swapped as one tuple, so threads agree.
_second: tuple[int, str] = (-1, "")


def _iso(created: float) -> str:
    # strftime is most of the cost and lines come in bursts within one second: cache it.
    global _second
    whole = int(created)
    sec, text = _second
    if sec != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, text)
    return f"{text}.{int((created - whole) * 1000):03d}Z"


def make_formatter(fmt: str, stream: Any = None) -> logging.Formatter:
    """The stdout formatter for ``TRADING_OTEL_LOG_FORMAT`` (``auto`` = console on a TTY)."""
    if fmt == "auto":
        isatty = getattr(stream or sys.stdout, "isatty", None)
        fmt = "console" if callable(isatty) and isatty() else "json"
    return ConsoleFormatter() if fmt == "console" else JsonFormatter()


class _NotFromTheSdk(logging.Filter):
    # The exporters log their own failures; shipping those over the same failing
    # pipeline would only loop.
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("opentelemetry")


# HTTP clients that log one INFO line per request ("HTTP Request: POST ... 200 OK").
# Below WARNING they would add a log record (stdout and OTLP) to every order's broker call,
# repeating what the client span already holds.
PER_REQUEST_LOGGERS = ("httpx", "httpcore")


def _quiet_per_request_loggers() -> None:
    """Keep per-request client loggers at WARNING unless the application set their level."""
    for name in PER_REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def setup_logging(settings: Settings, logger_provider: LoggerProvider | None) -> Callable[[], None]:
    """Attach the stdout and OTLP handlers to the root logger.

    Args:
        settings: Parsed settings (format, level, whether to write stdout).
        logger_provider: Where records go over OTLP; None when logs export is off.

    Returns:
        A function that removes exactly the handlers added here.
    """
    root = logging.getLogger()
    added: list[logging.Handler] = []
    if settings.log_to_stdout and not any(getattr(h, _OURS, False) for h in root.handlers):
        stdout = logging.StreamHandler(sys.stdout)
        stdout.setFormatter(make_formatter(settings.log_format))
        added.append(stdout)
    if logger_provider is not None:
        from opentelemetry.instrumentation.logging.handler import LoggingHandler

        otlp = LoggingHandler(logger_provider=logger_provider)
        otlp.addFilter(_NotFromTheSdk())
        added.append(otlp)
    for handler in added:
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    if root.level == logging.WARNING or root.level == logging.NOTSET:
        # Only lift Python's default level; an explicit application choice stays.
        root.setLevel(settings.log_level)
        _quiet_per_request_loggers()

    def undo() -> None:
        for handler in added:
            root.removeHandler(handler)
            handler.close()

    return undo
