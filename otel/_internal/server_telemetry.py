"""The one HTTP server-span path for FastAPI apps, however they were built.

FastAPI >= 0.142 runs every request through ``NativeTelemetry`` and switches it on as
soon as global providers exist; combined with contrib's ASGI middleware that doubles
the server spans and the ``http.server.request.duration`` series. We keep FastAPI's
hook as the single entry point, because every app has it (built before or after
``configure()``, under ``opentelemetry-instrument`` or not), and replace its body with
a lean one: one server span, one duration record, no per-message spans, no per-request
logger or header objects. Route names still come from FastAPI's router callback.

The span and metric follow the same semantic conventions as FastAPI's native
implementation; ``tests/unit/test_lib_server_telemetry.py`` compares the two attribute by
attribute.

That lean path rests on FastAPI's private ``fastapi.telemetry`` modules, so nothing here
imports them at import time: :func:`install` looks them up and checks their shape
(:func:`_detect`). When they are missing or different, or ``TRADING_OTEL_LEAN_SERVER=false``,
the *middleware path* applies instead (:mod:`otel._internal.server_middleware`): contrib's
public ``OpenTelemetryMiddleware`` as the outermost layer of every app's middleware stack,
which FastAPI itself recognises and then keeps its own telemetry off.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.metrics import Histogram, MeterProvider
from opentelemetry.trace import SpanKind, StatusCode, Tracer, TracerProvider

from otel._internal.catalogue import HTTP_DURATION_BUCKETS as DURATION_BUCKETS
from otel._internal.native_hooks import Native, detect, exception_type
from otel._internal.recording import CachedRecorder, is_lean
from otel._internal.sanitize import sanitize_message
from otel._internal.server_common import (
    SCOPE_NAME,
    ASGIApp,
    Flush,
    Message,
    Receive,
    Scope,
    Send,
    flushing,
    query,
)
from otel._internal.server_common import log as _log

_PROPAGATION_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class ServerTelemetry:
    """Server spans and request durations for every FastAPI request in this process.

    Args:
        tracer_provider: Where server spans go (None: no spans).
        meter_provider: Where ``http.server.request.duration`` goes (None: no metric).
        excluded: Paths matching this pattern get no telemetry at all.
        operation_spans: Let FastAPI add its dependency/endpoint/serialization spans.
        flush: Exports what is buffered when the app's lifespan shuts down.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        *,
        excluded: re.Pattern[str] | None = None,
        operation_spans: bool = False,
        flush: Flush = None,
    ) -> None:
        from otel._internal.version import __version__

        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.flush = flush
        self.tracer: Tracer | None = (
            tracer_provider.get_tracer(SCOPE_NAME, __version__) if tracer_provider else None
        )
        self.duration: CachedRecorder | None = None
        if meter_provider is not None:
            # Route, method and status repeat, so each distinct set is bound once and
            # later records skip the SDK's per-call attribute cleaning and hashing.
            histogram: Histogram = meter_provider.get_meter(
                SCOPE_NAME, __version__
            ).create_histogram(
                "http.server.request.duration",
                unit="s",
                description="Duration of HTTP server requests.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )
            self.duration = CachedRecorder(histogram, lean=is_lean(meter_provider))
        self.excluded = excluded
        self.operation_spans = operation_spans
        self._authorities: dict[bytes, dict[str, Any]] = {}

    def _server_attributes(self, scope: Scope, host: bytes | None) -> dict[str, Any]:
        if host is None:
            address, port = scope.get("server") or (None, None)
            if address is None:
                return {}
            return (
                {"server.address": address, "server.port": port}
                if port
                else {"server.address": address}
            )
        cached = self._authorities.get(host)
        if cached is not None:
            return cached
        attrs: dict[str, Any] = {}
        try:
            url = urlsplit("//" + host.decode("latin-1"))
            address, port = url.hostname, url.port
        except ValueError:
            address = None
        else:
            if url.username is not None or url.path or url.query or url.fragment:
                address = None
        if address is not None:
            attrs["server.address"] = address
            port = port if port is not None else _DEFAULT_PORTS.get(scope.get("scheme", "http"))
            if port is not None:
                attrs["server.port"] = port
        if len(self._authorities) > 256:  # Host is client-controlled: keep the cache small
            self._authorities.clear()
        self._authorities[host] = attrs
        return attrs

    def excluded_scope(self, scope: Scope) -> bool:
        """True when this request gets no telemetry (health, metrics, configured URLs)."""
        return self.excluded is not None and self.excluded.search(scope["path"]) is not None

    async def handle(
        self,
        config: MutableMapping[str, Any],
        app: ASGIApp,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Serve one HTTP request with one server span and one duration record."""
        native = _native
        assert native is not None  # only the lean path calls this
        tracer = self.tracer if config.get("tracing", True) else None
        duration = self.duration if config.get("metrics", True) else None
        method: str = scope.get("method", "")
        known = method in native.http_methods
        attrs: dict[str, Any] = {
            "url.scheme": scope.get("scheme", "http"),
            "http.request.method": method if known else "_OTHER",
        }
        if scope.get("http_version"):
            attrs["network.protocol.version"] = scope["http_version"]
        span_method = method if known else "HTTP"
        span = None
        parent = None
        if tracer is not None:
            host = None
            carrier: dict[str, str] | None = None
            for key, value in scope.get("headers", ()):
                if key == b"host":
                    host = value
                elif key in _PROPAGATION_HEADERS:
                    name = key.decode("latin-1")
                    text = value.decode("latin-1")
                    carrier = carrier or {}
                    carrier[name] = f"{carrier[name]},{text}" if name in carrier else text
            if carrier is not None:
                parent = propagate.extract(carrier)
            span_attrs = {
                **attrs,
                **self._server_attributes(scope, host),
                "url.path": scope["path"],
            }
            if scope.get("query_string"):
                span_attrs["url.query"] = query(scope["query_string"])
            if not known:
                span_attrs["http.request.method_original"] = method
            span = tracer.start_span(
                span_method, context=parent, kind=SpanKind.SERVER, attributes=span_attrs
            )
        rt = native.request_telemetry(
            span=span,
            span_method=span_method,
            tracer=tracer if self.operation_spans else None,
            _mount_prefix=scope.get("app_root_path", scope.get("root_path", "")).rstrip("/"),
        )
        scope["fastapi.telemetry"] = rt
        ctx = parent if parent is not None else otel_context.get_current()
        if span is not None:
            ctx = trace.set_span_in_context(span, ctx)
        token = otel_context.attach(otel_context.set_value(native.context_key, rt, ctx))
        started = perf_counter()
        finished = False

        def finish(error: BaseException | None) -> None:
            nonlocal finished
            if finished:
                return
            finished = True
            start_keys = len(attrs)
            if rt.route is not None:
                attrs["http.route"] = rt.route
            if rt.status_code is not None:
                attrs["http.response.status_code"] = rt.status_code
            if error is not None or rt.status_code is None or rt.status_code >= 500:
                failure = error or (rt._exceptions[-1] if rt._exceptions else None)
                attrs["error.type"] = (
                    exception_type(failure)
                    if failure is not None
                    else str(rt.status_code or "incomplete_response")
                )
                if failure is not None:
                    # uvicorn logs the traceback after our context is gone; this line is
                    # the one that carries trace_id/span_id for log-trace correlation.
                    _log.error(
                        "request failed: %s %s raised %s",
                        span_method,
                        rt.route or "(unmatched)",
                        attrs["error.type"],
                    )
                if span is not None:
                    span.set_status(StatusCode.ERROR)
                    if failure is not None:
                        # The message may carry request values: record its shape only.
                        span.add_event(
                            "exception",
                            {
                                "exception.type": attrs["error.type"],
                                "exception.message": sanitize_message(str(failure)),
                            },
                        )
            # Recorded while the span is still current, so the exemplar links to it.
            if duration is not None:
                duration.record(max(0.0, perf_counter() - started), attrs)
            if span is not None:
                # The span already has the request attributes, and FastAPI's route
                # callback gave it http.route: add only what is new (each attribute
                # write is validated by the SDK, ~1 us apiece).
                new = dict(list(attrs.items())[start_keys:])
                new.pop("http.route", None)
                span.set_attributes(new)
                span.end()

        trailers = False
        disconnected = False

        async def wrapped_send(message: Message) -> None:
            nonlocal trailers
            kind = message["type"]
            if kind == "http.response.start":
                rt.status_code = message["status"]
                trailers = message.get("trailers", False)
            await send(message)
            if (
                (kind == "http.response.body" and not message.get("more_body") and not trailers)
                or (kind == "http.response.trailers" and not message.get("more_trailers"))
                or kind == "http.response.pathsend"
            ):
                finish(None)

        async def wrapped_receive() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
            return message

        try:
            await app(scope, wrapped_receive, wrapped_send)
        except BaseException as exc:
            native.record_exception(scope=scope, exc=exc)
            finish(exc)
            raise
        finally:
            if not finished:
                finish(
                    ConnectionError("Client disconnected")
                    if disconnected
                    else RuntimeError("Incomplete ASGI response")
                )
            rt.data = None
            rt._exceptions.clear()
            otel_context.detach(token)
            scope.pop("fastapi.telemetry", None)


_active: ServerTelemetry | None = None
#: Which path serves ``_active``: "lean" (FastAPI's hook) or "middleware".
_path = "lean"
_native: Native | None = None
_original: tuple[Any, Any] | None = None


async def _skip(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    # Same contract as FastAPI's own exclusion: mounted sub-apps must not trace it either.
    native = _native
    assert native is not None
    scope["fastapi.telemetry"] = None
    token = otel_context.attach(otel_context.set_value(native.context_key, None))
    try:
        await app(scope, receive, send)
    finally:
        otel_context.detach(token)
        scope.pop("fastapi.telemetry", None)


def _lean_active() -> ServerTelemetry | None:
    return _active if _path == "lean" else None


def _enabled(self: Any) -> bool:
    active = _lean_active()
    if active is None:
        # Not ours (or the middleware path, which FastAPI then sees in the stack).
        assert _original is not None
        return bool(_original[0](self))
    if active.tracer is None and active.duration is None:
        return False  # disabled on purpose: FastAPI's own path must stay off too
    return bool(self.config.get("tracing", True) or self.config.get("metrics", True))


async def _call(
    self: Any,
    *,
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    legacy_otel: bool = False,
) -> None:
    active = _lean_active()
    if active is None:
        assert _original is not None
        await _original[1](self, app=app, scope=scope, receive=receive, send=send,
                           legacy_otel=legacy_otel)  # fmt: skip
        return
    config = self.config
    # Contrib's middleware already made the server span: keep it the only one.
    # WebSockets are long-lived connections, not requests: no duration series.
    if legacy_otel or scope["type"] != "http":
        await app(scope, receive, send)
        return
    exclude = config.get("exclude")
    if active.excluded_scope(scope) or (exclude is not None and exclude(scope)):
        await _skip(app, scope, receive, send)
        return
    await active.handle(config, app, scope, receive, send)


_original_lifespan: Any = None


async def _lifespan(
    *, config: Any, app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """FastAPI's lifespan bridge, plus a bounded flush before shutdown completes.

    Apps run under ``opentelemetry-instrument`` have no code of ours in their lifespan,
    and uvicorn exits by re-raising SIGTERM, which skips ``atexit``: without this the
    last metrics (cumulative, exported every minute) would be lost.
    """
    if _active is not None:
        # FASTAPI_OTEL_AUTO_CONFIGURE=true would attach a second set of OTLP exporters
        # to our providers and send everything twice.
        config = {**config, "auto_configure": False}
    await _original_lifespan(config=config, app=app, scope=scope, receive=receive,
                             send=flushing(send, _active.flush if _active else None))  # fmt: skip


def _install_lean(native: Native) -> None:
    global _original, _original_lifespan, _native
    _native = native
    if _original is not None:
        return
    cls = native.native_telemetry
    _original = (cls.enabled, cls.__call__)
    cls.enabled = _enabled
    cls.__call__ = _call
    # FastAPI imports this function at call time, so replacing the module attribute
    # reaches every app, including ones built before configure().
    _original_lifespan = native.runtime.lifespan
    native.runtime.lifespan = _lifespan


_warned = False


def install(telemetry: ServerTelemetry, *, lean: bool = True) -> Callable[[], None]:
    """Make ``telemetry`` the request path of every FastAPI app in this process.

    Args:
        telemetry: The server spans and durations to produce.
        lean: Use the lean path through FastAPI's own hook when this FastAPI has the
            internals it needs (checked now). False, or when they are missing (one
            warning), uses contrib's public ASGI middleware instead: the same span and
            metric, at contrib's speed.

    Returns:
        A function restoring what was active before (FastAPI's own behaviour at first).
    """
    global _active, _path, _warned
    native = detect(_original, _original_lifespan) if lean else None
    if (
        native is None
        and _installed("fastapi")
        and not _installed("opentelemetry.instrumentation.asgi")
    ):
        # The stock path needs contrib's ASGI middleware (the `fastapi` extra brings it).
        native = None if lean else detect(_original, _original_lifespan)
        _log.warning(
            "the stock server path needs opentelemetry-instrumentation-asgi "
            "(pip install 'trading-otel[fastapi]'); %s",
            "using the lean path instead" if native else "HTTP server spans are off",
        )
        if native is None:
            return lambda: None
    if native is not None:
        _install_lean(native)
        path = "lean"
    else:
        from otel._internal import server_middleware

        if not server_middleware.hook():
            return lambda: None  # FastAPI is not installed: no app to serve
        if lean and not _warned:
            _warned = True
            _log.warning(
                "this FastAPI (%s) lacks the internals of the lean server path; "
                "server spans and durations come from contrib's ASGI middleware instead",
                server_middleware.fastapi_version(),
            )
        path = "middleware"
    previous = (_active, _path)
    _active, _path = telemetry, path
    _publish()

    def uninstall() -> None:
        # Restores whatever was active before (a test's install inside a session one).
        global _active, _path
        if _active is telemetry:
            _active, _path = previous
            _publish()

    return uninstall


def _publish() -> None:
    """Tell the middleware path what it serves now; it never reads this module's state."""
    from otel._internal import server_middleware

    server_middleware.serve(
        _active if _path == "middleware" else None,
        flush_lifespan=_original_lifespan is None,
    )


def _installed(module: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def active() -> ServerTelemetry | None:
    """The installed server telemetry, if any."""
    return _active


def active_path() -> str | None:
    """``"lean"`` or ``"middleware"``: the path serving :func:`active`, if any."""
    return _path if _active is not None else None
