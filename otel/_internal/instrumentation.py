"""Client-library instrumentation: asyncpg, redis and httpx.

Each ``instrument_*`` function takes its providers explicitly and returns a function
that undoes exactly what it did.

asyncpg is wrapped here rather than through contrib's instrumentor, because contrib
records raw SQL (literal account ids and prices included, contrib #1755) and the
driver's exception messages; our spans carry sanitised text only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from functools import lru_cache
from time import perf_counter
from typing import Any

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, StatusCode, TracerProvider

from otel._internal.catalogue import DB_DURATION_BUCKETS
from otel._internal.recording import CachedRecorder, is_lean
from otel._internal.sanitize import redact_url, redis_key_shape, sanitize_message, sanitize_sql

_log = logging.getLogger("otel.config")
Undo = Callable[[], None]
_CONNECTION_METHODS = ("execute", "executemany", "fetch", "fetchval", "fetchrow", "fetchmany")
_PREPARED_METHODS = ("fetch", "fetchval", "fetchrow", "fetchmany", "executemany")


def _operation_of(sanitized: str) -> str:
    text = sanitized.lstrip()
    while text.startswith("/*") and "*/" in text:
        text = text.split("*/", 1)[1].lstrip()
    word = text.split(None, 1)[0].split(";", 1)[0] if text.split() else ""
    return word.upper() if word.isalpha() else "QUERY"


#: Statements cached by their text. The same statement comes back on every order, and
#: the sanitising regex costs ~10 µs on a long one; a statement with inline literals is
#: its own entry (same sanitised text), so the bound keeps those from growing the cache.
STATEMENT_CACHE_SIZE = 512
#: Longer statements (bulk inserts with inline values) are sanitised every time, not kept.
STATEMENT_CACHE_MAX_LEN = 4096


@lru_cache(maxsize=STATEMENT_CACHE_SIZE)
def _cached_statement(query: str) -> tuple[str, str]:
    text = sanitize_sql(query)
    return _operation_of(text), text


def statement_parts(query: str) -> tuple[str, str]:
    """``(operation, sanitised text)`` of ``query``, e.g. ``("SELECT", "SELECT ? FROM t")``."""
    if len(query) > STATEMENT_CACHE_MAX_LEN:
        text = sanitize_sql(query)
        return _operation_of(text), text
    return _cached_statement(query)


#: Statements asyncpg runs inside ``Connection.reset``: the pool's reset query on every
#: release (``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;``) is
#: housekeeping, not the application's work, and would add a span to every pool call.
_in_reset: ContextVar[bool] = ContextVar("trading_otel_asyncpg_reset", default=False)
#: Kept traced inside a reset: asyncpg rolls back a transaction left open at release,
#: which is an application bug worth seeing.
_RESET_ROLLBACK = "ROLLBACK"


def _connection_key(conn: Any) -> tuple[Any, Any]:
    return getattr(getattr(conn, "_params", None), "database", None), getattr(conn, "_addr", None)


#: Connection attributes per (database, address): a pool's connections share one entry.
_CONNECTION_CACHE_SIZE = 64
_connections: dict[tuple[Any, Any], tuple[str, dict[str, Any]]] = {}


def _connection_entry(conn: Any) -> tuple[str, dict[str, Any]]:
    """The connection's span-name suffix and attributes (shared: copy before changing)."""
    key = _connection_key(conn)
    try:
        entry = _connections.get(key)
    except TypeError:  # an unhashable address
        attrs = _connection_attributes(conn)
        return attrs.get("db.namespace", ""), attrs
    if entry is None:
        attrs = _connection_attributes(conn)
        entry = (attrs.get("db.namespace", ""), attrs)
        if len(_connections) < _CONNECTION_CACHE_SIZE:
            _connections[key] = entry
    return entry


def _connection_attributes(conn: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {"db.system.name": "postgresql"}
    params = getattr(conn, "_params", None)
    database = getattr(params, "database", None)
    if database:
        attrs["db.namespace"] = database
    addr = getattr(conn, "_addr", None)
    if isinstance(addr, tuple) and len(addr) >= 2:
        attrs["server.address"] = str(addr[0])
        attrs["server.port"] = int(addr[1])
    elif isinstance(addr, str):
        attrs["server.address"] = addr
    return attrs


def record_db_error(span: Span, exc: BaseException) -> str:
    """Mark ``span`` failed with the error's type and a value-free message."""
    error_type = type(exc).__qualname__
    span.set_status(StatusCode.ERROR)
    span.set_attribute("error.type", error_type)
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        span.set_attribute("db.response.status_code", sqlstate)
    span.add_event(
        "exception",
        {"exception.type": error_type, "exception.message": sanitize_message(str(exc))},
    )
    return error_type


def instrument_asyncpg(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Undo:
    """Trace asyncpg queries with sanitised SQL and time them in seconds."""
    import asyncpg.connection
    import asyncpg.prepared_stmt
    import wrapt

    from otel._internal.version import __version__

    tracer = tracer_provider.get_tracer("otel.asyncpg", __version__)
    duration = meter_provider.get_meter("otel.asyncpg", __version__).create_histogram(
        "db.client.operation.duration",
        unit="s",
        description="Duration of database client operations.",
        explicit_bucket_boundaries_advisory=DB_DURATION_BUCKETS,
    )

    record = CachedRecorder(duration, lean=is_lean(meter_provider))

    async def run(conn: Any, query: str, call: Callable[[], Any]) -> Any:
        if _in_reset.get() and query != _RESET_ROLLBACK:
            return await call()
        operation, text = statement_parts(query)
        namespace, attrs = _connection_entry(conn)
        metric_attrs = {**attrs, "db.operation.name": operation}
        span_attrs = {**metric_attrs, "db.query.text": text}
        name = f"{operation} {namespace}" if namespace else operation
        started = perf_counter()
        with tracer.start_as_current_span(
            name,
            kind=SpanKind.CLIENT,
            attributes=span_attrs,
            record_exception=False,  # the raw message may hold values
            set_status_on_exception=False,
        ) as span:
            try:
                return await call()
            except Exception as exc:
                metric_attrs["error.type"] = record_db_error(span, exc)
                raise
            finally:
                record(perf_counter() - started, metric_attrs)

    async def on_connection(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        query = args[0] if args else kwargs.get("query", "")
        return await run(instance, str(query), lambda: wrapped(*args, **kwargs))

    async def on_prepared(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        conn = getattr(instance, "_connection", None)
        query = getattr(instance, "_query", "") or ""
        return await run(conn, query, lambda: wrapped(*args, **kwargs))

    async def on_reset(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        token = _in_reset.set(True)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            _in_reset.reset(token)

    targets = [(asyncpg.connection.Connection, m, on_connection) for m in _CONNECTION_METHODS] + [
        (asyncpg.prepared_stmt.PreparedStatement, m, on_prepared) for m in _PREPARED_METHODS
    ]
    # The public reset(), which the pool calls on release; absent in some version: traced.
    targets.append((asyncpg.connection.Connection, "reset", on_reset))
    originals: list[tuple[type, str, Any]] = []
    for cls, method, wrapper in targets:
        original = cls.__dict__.get(method)
        if original is None:
            continue
        # An existing wrapper (another pipeline's, in tests) is wrapped again and put
        # back by undo; configure() itself instruments once per process.
        setattr(cls, method, wrapt.FunctionWrapper(original, wrapper))
        originals.append((cls, method, original))

    def undo() -> None:
        for cls, method, original in originals:
            setattr(cls, method, original)

    return undo


def _redis_request_hook(span: Span, instance: Any, args: Any, kwargs: Any) -> None:
    # Contrib already replaces arguments with "?"; the key's shape is what tells
    # "position:?:AAPL" from "quote:?" in a trace, without the account id itself.
    if span.is_recording() and args and len(args) > 1:
        span.set_attribute("db.redis.key_shape", redis_key_shape(args[1]))


def instrument_redis(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Undo:
    """Trace redis commands: command name and key shape only, never values."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    instrumentor = RedisInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        request_hook=_redis_request_hook,
    )
    return lambda: instrumentor.uninstrument()


#: Where contrib's httpx instrumentation records the request URL (new and old semconv).
_URL_ATTRIBUTES = ("url.full", "http.url")


def _mask_client_url(span: Span, request: Any) -> None:
    # Contrib masks only semconv's four signed-URL parameters (redact_url); ours is the
    # wider, configurable list. The span already holds the URL: rewrite it in place.
    attributes = getattr(span, "attributes", None)
    if not attributes or not span.is_recording():
        return
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            masked = redact_url(value)
            if masked != value:
                span.set_attribute(key, masked)


async def _mask_client_url_async(span: Span, request: Any) -> None:
    _mask_client_url(span, request)


def instrument_httpx(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Undo:
    """Trace httpx calls and propagate the trace context to the called service.

    Sensitive query values in ``url.full`` are masked (``sanitize.redact_url``).
    """
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        request_hook=_mask_client_url,
        async_request_hook=_mask_client_url_async,
    )
    return lambda: instrumentor.uninstrument()


LIBRARIES: dict[str, Callable[[TracerProvider, MeterProvider], Undo]] = {
    "asyncpg": instrument_asyncpg,
    "redis": instrument_redis,
    "httpx": instrument_httpx,
}


def instrument_libraries(
    tracer_provider: TracerProvider, meter_provider: MeterProvider, disabled: frozenset[str]
) -> Undo:
    """Instrument every library not named in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS.

    A library that is not installed, or whose instrumentation fails, is skipped with a
    log line: telemetry must never stop the service.
    """
    undos: list[Undo] = []
    for name, instrument in LIBRARIES.items():
        if name in disabled or "*" in disabled:
            continue
        try:
            undos.append(instrument(tracer_provider, meter_provider))
        except ImportError:
            _log.debug("%s is not installed; not instrumented", name)
        except Exception:
            _log.exception("instrumenting %s failed; it runs uninstrumented", name)

    def undo() -> None:
        for step in reversed(undos):
            step()

    return undo
