"""The middleware server path: contrib's ASGI middleware on every FastAPI app.

Used when ``TRADING_OTEL_LEAN_SERVER=false``, or when the installed FastAPI lacks the
private internals of the lean path (:mod:`otel._internal.native_hooks`). It uses public
APIs only:

- contrib's ``opentelemetry.instrumentation.asgi.OpenTelemetryMiddleware``, without its
  per-message ``receive``/``send`` spans, gives one server span and one
  ``http.server.request.duration`` record per request;
- it becomes the outermost layer of each app's ``middleware_stack`` (Starlette's public
  attribute, built lazily) the first time the app serves a request after install. That
  reaches apps built before ``configure()`` and apps whose stack was already built for
  their lifespan, which ``app.add_middleware`` (refused once an app has started) cannot;
- FastAPI recognises contrib's middleware in the stack and then keeps its own telemetry
  off for that app, so spans are never doubled.

The span name and ``http.route`` come from matching the request against the app's
routes (``route.matches``), as FastAPI's router would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace

from otel._internal.native_hooks import exception_type
from otel._internal.server_common import ASGIApp, Receive, Scope, Send, flushing, log, query

if TYPE_CHECKING:
    from otel._internal.server_telemetry import ServerTelemetry

#: Scope key marking a request already served by this path (mounted apps skip it).
_SERVED = "trading_otel.server"
#: Known HTTP methods (semantic conventions); others are named ``HTTP`` / ``_OTHER``.
_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)
_original_call: Any = None
#: What this path serves (set by ``server_telemetry.install``); None: FastAPI's own path.
_serving: ServerTelemetry | None = None
#: Flush at lifespan shutdown here (the lean path's lifespan bridge is not installed).
_flush_lifespan = True


def serve(telemetry: ServerTelemetry | None, *, flush_lifespan: bool) -> None:
    """Serve every FastAPI app's requests with ``telemetry`` on this path, or stop (None)."""
    global _serving, _flush_lifespan
    _serving, _flush_lifespan = telemetry, flush_lifespan


def fastapi_version() -> str:
    """The installed FastAPI version, for messages."""
    try:
        from importlib.metadata import version

        return version("fastapi")
    except Exception:
        return "unknown"


def hook() -> bool:
    """Route every FastAPI app's requests through :func:`_app_call`; False without FastAPI."""
    global _original_call
    try:
        from fastapi import FastAPI
    except ImportError:
        return False
    if _original_call is None:
        _original_call = FastAPI.__call__
        FastAPI.__call__ = _app_call  # type: ignore[method-assign]
    return True


def app_config(app: Any) -> dict[str, Any]:
    """Per-app switches (``tracing``, ``metrics``, ``exclude``) shared with the lean path.

    FastAPI keeps them in the dict given as ``FastAPI(telemetry=...)``; an app without it
    (another FastAPI) gets one of ours.
    """
    config = getattr(app, "_telemetry", None)
    if isinstance(config, dict):
        return config
    config = app.__dict__.setdefault("_trading_otel_telemetry", {})
    assert isinstance(config, dict)
    return config


async def _app_call(self: Any, scope: Scope, receive: Receive, send: Send) -> None:
    active = _serving
    ours = active is not None
    stack = self.middleware_stack
    if ours and scope["type"] in ("http", "websocket"):
        assert active is not None
        if not isinstance(stack, ServerMiddleware) or stack.telemetry is not active:
            inner = stack.inner if isinstance(stack, ServerMiddleware) else stack
            self.middleware_stack = ServerMiddleware(
                self, inner if inner is not None else self.build_middleware_stack(), active
            )
    elif isinstance(stack, ServerMiddleware) and not ours:
        self.middleware_stack = stack.inner  # our path is off: FastAPI's own behaviour
    if active is not None and scope["type"] == "lifespan" and _flush_lifespan:
        # The lean path flushes in FastAPI's lifespan bridge; without it, here.
        send = flushing(send, active.flush)
    await _original_call(self, scope, receive, send)


class ServerMiddleware:
    """The outermost layer of one app's stack: contrib's middleware, or straight through.

    ``app`` is the contrib middleware (FastAPI walks ``.app`` to find it); ``inner`` is
    the stack FastAPI built.
    """

    def __init__(self, fastapi_app: Any, inner: ASGIApp, telemetry: ServerTelemetry) -> None:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        self.fastapi_app = fastapi_app
        self.inner = inner
        self.telemetry = telemetry
        off = telemetry.tracer is None and telemetry.duration is None
        self.off = off
        self.app = OpenTelemetryMiddleware(
            _LogError(inner),
            excluded_urls=None,
            default_span_details=_span_details(fastapi_app),
            server_request_hook=_request_hook(telemetry),
            tracer_provider=telemetry.tracer_provider or trace.NoOpTracerProvider(),
            meter_provider=telemetry.meter_provider or metrics.NoOpMeterProvider(),
            exclude_spans=["receive", "send"],
        )
        if self.app.duration_histogram_new is None:
            _warn_old_conventions()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # WebSockets are long-lived connections, not requests: no span, as on the lean path.
        if scope["type"] != "http" or _SERVED in scope:
            await self.inner(scope, receive, send)
            return
        config = app_config(self.fastapi_app)
        exclude = config.get("exclude")
        skip = (
            self.off
            or not (config.get("tracing", True) or config.get("metrics", True))
            or self.telemetry.excluded_scope(scope)
            or (exclude is not None and exclude(scope))
        )
        scope[_SERVED] = True
        try:
            await (self.inner if skip else self.app)(scope, receive, send)
        finally:
            scope.pop(_SERVED, None)


_warned_conventions = False


def _warn_old_conventions() -> None:
    global _warned_conventions
    if not _warned_conventions:
        _warned_conventions = True
        log.warning(
            "contrib's ASGI middleware reports the old HTTP conventions (http.server.duration "
            "in ms): OTEL_SEMCONV_STABILITY_OPT_IN must include 'http' before any "
            "instrumentation is imported"
        )


class _LogError:
    """The lean path's one log line for an unhandled exception, inside the server span.

    FastAPI's error middleware has sent the 500 by then, which ended the span: it keeps
    ``error.type="500"`` and status ERROR, and no exception event.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            route = scope.get("route")
            log.error(
                "request failed: %s %s raised %s",
                scope.get("method", "HTTP"),
                getattr(route, "path", None) or "(unmatched)",
                exception_type(exc),
            )
            raise


def _request_hook(telemetry: ServerTelemetry) -> Callable[[trace.Span, Scope], None]:
    def hook(span: trace.Span, scope: Scope) -> None:
        if not span.is_recording():
            return
        host = next((v for k, v in scope.get("headers", ()) if k == b"host"), None)
        # The lean path's server.address/port (contrib writes "host:None" for a bare
        # host) and our list of sensitive query names, wider than contrib's.
        span.set_attributes(telemetry._server_attributes(scope, host))
        raw = scope.get("query_string")
        if raw:
            span.set_attribute("url.query", query(raw))

    return hook


def _route(routes: Any, scope: Scope) -> str | None:
    from starlette.routing import Match, Mount

    partial = None
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.PARTIAL and partial is None:
            partial = route  # e.g. the path matches but not the method: a 405
        if match != Match.FULL:
            continue
        partial = None
        path: str | None = getattr(route, "path", None)
        if path is None:
            return None
        if isinstance(route, Mount):
            inner = _route(route.routes, {**scope, **child})
            return path + (inner if inner is not None else "/{path}")
        return path
    return getattr(partial, "path", None)


def _span_details(app: Any) -> Callable[[Scope], tuple[str, dict[str, Any]]]:
    def details(scope: Scope) -> tuple[str, dict[str, Any]]:
        method = scope.get("method", "")
        name = method if method in _METHODS else "HTTP"
        route = _route(app.routes, scope)
        if route is None:
            return name, {}
        prefix = str(scope.get("app_root_path", scope.get("root_path", ""))).rstrip("/")
        return f"{name} {prefix}{route}", {"http.route": prefix + route}

    return details
