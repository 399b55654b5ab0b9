"""``instrument_app``: per-app control over the single server-span path."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the `fastapi` extra; `import otel` works without it
    from fastapi import FastAPI


class AppInstrumentation:
    """Handle returned by :func:`instrument_app`; ``uninstrument()`` or use it as a context."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def uninstrument(self) -> None:
        """Stop server telemetry for this app (other apps are unaffected)."""
        config: dict[str, Any] = self.app._telemetry  # type: ignore[assignment]
        config["tracing"] = config["metrics"] = config["logs"] = False

    def __enter__(self) -> AppInstrumentation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstrument()


def instrument_app(
    app: FastAPI,
    *,
    exclude: Callable[[MutableMapping[str, Any]], bool] | None = None,
) -> AppInstrumentation:
    """Give ``app`` exactly one server span and one duration series per request.

    Apps get this path automatically once :func:`otel.configure` has run; call this for
    an app built earlier with ``FastAPI(telemetry={"tracing": False, ...})``, or to add
    an app-specific exclusion. It calls ``configure()`` if that has not happened yet.

    Args:
        app: The FastAPI application.
        exclude: Extra predicate on the ASGI scope; True skips telemetry for a request.

    Returns:
        A handle whose ``uninstrument()`` (or context exit) switches it off again.

    Raises:
        TypeError: ``app`` is not a FastAPI application.
    """
    from fastapi import FastAPI

    if not isinstance(app, FastAPI):
        raise TypeError(
            f"instrument_app() needs a fastapi.FastAPI app, got {type(app).__name__}; "
            "for other ASGI apps use opentelemetry-instrumentation-asgi"
        )
    from otel._internal.bootstrap import configure

    configure()
    config: dict[str, Any] = app._telemetry  # type: ignore[assignment]
    config["tracing"] = config["metrics"] = True
    if exclude is not None:
        config["exclude"] = exclude
    return AppInstrumentation(app)
