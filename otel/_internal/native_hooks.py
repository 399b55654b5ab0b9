"""FastAPI's private telemetry internals that the lean server path needs, found at install.

FastAPI (>= 0.142) keeps its native OpenTelemetry support in private modules
(``fastapi.telemetry._api``, ``_asgi``, ``_runtime``). The lean path in
:mod:`otel._internal.server_telemetry` replaces the body of that hook, so it depends on their
names and shapes. :func:`detect` imports them only when asked (never when ``otel`` is
imported) and checks every name, dataclass field and keyword the lean path uses. Any
difference gives None, and the caller falls back to the public middleware path.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

#: ``_RequestTelemetry`` fields the lean path sets or reads.
_FIELDS = frozenset(
    {
        "span",
        "span_method",
        "tracer",
        "route",
        "status_code",
        "data",
        "_mount_prefix",
        "_exceptions",
    }
)


@dataclass(frozen=True)
class Native:
    """The pieces of FastAPI's native telemetry the lean path uses."""

    native_telemetry: Any
    """``NativeTelemetry``: its ``enabled`` and ``__call__`` are replaced."""
    runtime: Any
    """The module whose ``lifespan`` FastAPI looks up at call time."""
    request_telemetry: Callable[..., Any]
    """``_RequestTelemetry``: FastAPI's router callback writes the route into it."""
    context_key: str
    """Context key under which FastAPI's operation spans find the request telemetry."""
    http_methods: Collection[str]
    record_exception: Callable[..., None]
    """``_exception(scope=, exc=)``: the exception FastAPI's handlers saw."""


def _keywords(fn: Any) -> set[str]:
    return set(inspect.signature(fn).parameters)


def detect(original: tuple[Any, Any] | None = None, original_lifespan: Any = None) -> Native | None:
    """FastAPI's internals for the lean path, or None when absent or shaped differently.

    Args:
        original: ``NativeTelemetry``'s own ``enabled`` and ``__call__`` when the lean path
            already replaced them (a second install sees the replacements on the class).
        original_lifespan: FastAPI's own lifespan bridge, likewise.
    """
    try:
        from fastapi.telemetry import _api, _asgi, _runtime

        cls = _asgi.NativeTelemetry
        request_telemetry = _api._RequestTelemetry
        if not {f.name for f in dataclasses.fields(request_telemetry)} >= _FIELDS:
            return None
        enabled, call = original if original is not None else (cls.enabled, cls.__call__)
        if not {"app", "scope", "receive", "send", "legacy_otel"} <= _keywords(call):
            return None
        if not callable(enabled) or not {"config", "app", "scope", "receive", "send"} <= (
            _keywords(original_lifespan or _runtime.lifespan)
        ):
            return None
        if not {"scope", "exc"} <= _keywords(_asgi._exception):
            return None
        key = _api._REQUEST_TELEMETRY_KEY
        methods = _api._HTTP_METHODS
        if not isinstance(key, str) or "GET" not in methods:
            return None
        return Native(cls, _runtime, request_telemetry, key, methods, _asgi._exception)
    except (ImportError, AttributeError, TypeError, ValueError):
        return None


def exception_type(exc: BaseException) -> str:
    """``error.type`` for an exception: its qualified name, module-qualified unless builtin."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
