"""Entry points for ``opentelemetry-instrument``: the same telemetry as ``configure()``.

``opentelemetry-instrument`` loads a distro, then a configurator, then every installed
instrumentor. Ours makes the configurator call :func:`otel.configure` and skips the
instrumentors that ``configure()`` already replaced, so a service gets identical
telemetry (one server span per request, sanitised SQL) whichever way it starts.
"""

from __future__ import annotations

import os
from importlib.metadata import EntryPoint
from typing import Any

# Importing otel runs the environment guard before the SDK import below.
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _BaseConfigurator

from otel._internal import envguard

#: Instrumentors whose job ``configure()`` does itself, differently on purpose:
#: FastAPI/ASGI (one server-span path), asyncpg (sanitised SQL), redis and httpx
#: (instrumented with our hooks), logging (our handler, not a log-format rewrite).
REPLACED = frozenset({"fastapi", "asgi", "starlette", "asyncpg", "redis", "httpx", "logging"})


class TradingDistro(BaseDistro):  # type: ignore[misc]
    """Selects our configurator and keeps contrib from double-instrumenting."""

    def _configure(self, **kwargs: Any) -> None:
        envguard.guard()
        # Another installed distro (opentelemetry-distro) would otherwise race ours for
        # the configurator slot; choosing explicitly makes the order irrelevant.
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", "trading_otel")

    def load_instrumentor(self, entry_point: EntryPoint, **kwargs: Any) -> None:
        if entry_point.name in REPLACED:
            return
        super().load_instrumentor(entry_point, **kwargs)


class TradingConfigurator(_BaseConfigurator):  # type: ignore[misc]
    """Runs :func:`otel.configure` from the environment."""

    def _configure(self, **kwargs: Any) -> None:
        from otel._internal.bootstrap import configure

        envguard.guard()
        configure()
