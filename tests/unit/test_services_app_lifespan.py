"""The lifespan every service shares: cleanups run in reverse, also when startup fails."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
from fastapi import FastAPI

from services.common.web import Dependencies, service_app


async def test_cleanups_run_in_reverse_after_the_dependency_checks_stop() -> None:
    events: list[str] = []
    deps = Dependencies()

    async def setup(app: FastAPI, stack: AsyncExitStack) -> None:
        stack.callback(events.append, "close pool")
        stack.callback(events.append, "close client")
        app.state.ready = True

    app = service_app("svc", setup, deps, max_body_bytes=1024, telemetry_on=False)
    async with app.router.lifespan_context(app):
        assert app.state.ready
        assert deps._task is not None and not deps._task.done()
        events.append("serving")
    assert deps._task.done()
    assert events == ["serving", "close client", "close pool"]


async def test_a_failed_startup_closes_what_it_opened() -> None:
    events: list[str] = []
    deps = Dependencies()

    async def setup(app: FastAPI, stack: AsyncExitStack) -> None:
        stack.callback(events.append, "close pool")
        raise ConnectionError("redis down")

    app = service_app("svc", setup, deps, max_body_bytes=1024, telemetry_on=False)
    with pytest.raises(ConnectionError, match="redis down"):
        async with app.router.lifespan_context(app):
            pytest.fail("served after a failed startup")
    assert events == ["close pool"]
    assert deps._task is None  # checks never started


def test_probes_and_title() -> None:
    async def setup(app: FastAPI, stack: AsyncExitStack) -> None:
        return None

    app = service_app("svc", setup, Dependencies(), max_body_bytes=1024, telemetry_on=False)
    assert app.title == "svc"
    assert {"/health", "/ready"} <= {getattr(r, "path", "") for r in app.routes}
