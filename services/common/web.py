"""HTTP plumbing shared by the services: body-size limit, health routes, dependency checks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.utils import suppress_instrumentation
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common import telemetry
from services.common.tasks import cancel_and_wait
from services.common.telemetry import meters

_log = logging.getLogger("services.web")

Check = Callable[[], Awaitable[object]]
Setup = Callable[[FastAPI, AsyncExitStack], Awaitable[None]]
"""A service's own startup: builds its clients and tasks on ``app.state`` and registers
each one's cleanup on the stack right after creating it."""


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Answer 413 for request bodies over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send, int(declared))
            return
        seen = 0
        started = rejected = False

        async def counting_receive() -> Message:
            nonlocal seen, rejected
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit and not rejected:
                # Answer now: the framework may turn any error while reading into a 400.
                if not started:
                    rejected = True
                    await self._reject(send, seen)
                raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if rejected:  # we already answered 413; drop whatever the app says after
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, counting_receive, tracking_send)

    async def _reject(self, send: Send, size: int) -> None:
        body = json.dumps(
            {"detail": f"request body too large: {size} bytes (limit {self.limit})"}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def redis_client(url: str) -> aioredis.Redis:
    """A Redis client that fails fast (1 s) instead of hanging when Redis is unavailable."""
    return aioredis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0,
                             decode_responses=True)  # fmt: skip


class Dependencies:
    """Named readiness checks; each result is exported as ``trading_dependency_up``."""

    def __init__(self) -> None:
        self.checks: dict[str, Check] = {}
        self.status: dict[str, bool] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def mark(self, name: str, up: bool) -> None:
        """Record a dependency's state observed by real traffic (e.g. a broker call)."""
        self.status[name] = up
        meters().dependency_up.set(1 if up else 0, dependency=name)

    async def check_all(self, timeout_s: float = 2.0) -> dict[str, bool]:
        async def one(name: str, check: Check) -> None:
            try:
                with suppress_instrumentation():
                    await asyncio.wait_for(check(), timeout_s)
                self.mark(name, True)
            except Exception as exc:  # any failure means "down"; the reason goes to the log
                if self.status.get(name, True):
                    _log.warning("dependency %s is down: %r", name, exc)
                self.mark(name, False)

        await asyncio.gather(*(one(n, c) for n, c in self.checks.items()))
        return dict(self.status)

    async def _loop(self, interval_s: float) -> None:
        while True:
            await self.check_all()
            await asyncio.sleep(interval_s)

    def start(self, interval_s: float = 1.0) -> None:
        self._task = asyncio.create_task(self._loop(interval_s), name="dependency-checks")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)


def add_probes(app: FastAPI, deps: Dependencies, service: str) -> None:
    """``GET /health`` (the process is alive) and ``GET /ready`` (dependencies answer)."""
    started = time.time()

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, Any]:
        return {"status": "ok", "service": service, "uptime_s": round(time.time() - started, 1)}

    @app.get("/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        status = await deps.check_all()
        ok = all(status.values())
        return JSONResponse(
            {"ready": ok, "service": service, "dependencies": status},
            status_code=200 if ok else 503,
        )


def service_app(
    service: str,
    setup: Setup,
    deps: Dependencies,
    *,
    max_body_bytes: int,
    telemetry_on: bool = True,
    check_interval_s: float = 1.0,
) -> FastAPI:
    """The FastAPI app every service shares, around the service's own ``setup``.

    The lifespan configures telemetry (unless ``telemetry_on`` is False: tests own the
    SDK), runs ``setup``, then starts the dependency checks. Cleanups run in reverse on
    shutdown, and also when startup fails half way, so a failed start leaks no pool or
    client. The app limits request bodies and serves ``/health`` and ``/ready``.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if telemetry_on:
                telemetry.configure()
                stack.callback(telemetry.shutdown)
            await setup(app, stack)
            deps.start(interval_s=check_interval_s)
            stack.push_async_callback(deps.stop)
            yield

    app = FastAPI(title=service, lifespan=lifespan)
    app.add_middleware(BodyLimitMiddleware, limit=max_body_bytes)
    add_probes(app, deps, service)
    return app
