"""The signal service's FastAPI app (port 8003)."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from services.common.auth import ApiKeyAuth
from services.common.config import ServiceSettings
from services.common.tasks import cancel_and_wait
from services.common.telemetry import meters, tracer
from services.common.web import Dependencies, redis_client, service_app
from services.signals.model import SignalModel

_log = logging.getLogger("services.signal")
SERVICE = "signal-service"


class SignalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbols: list[str] = Field(min_length=1, max_length=100)


def _publish_model_state(model: SignalModel) -> None:
    m = meters()
    m.model_loaded.set(1 if model.loaded else 0)
    m.model_age.set(model.age_s())


async def _model_gauges(model: SignalModel) -> None:
    while True:
        _publish_model_state(model)
        await asyncio.sleep(5)


def create_app(settings: ServiceSettings | None = None, *, telemetry_on: bool = True) -> FastAPI:
    """Build the signal service; ``telemetry_on=False`` leaves the SDK to the caller."""
    cfg = settings or ServiceSettings.from_env()
    deps = Dependencies()
    # Changing which model serves needs a key when keys are configured; reading does not.
    admin = ApiKeyAuth(cfg.api_keys, SERVICE).dependencies()

    async def setup(app: FastAPI, stack: AsyncExitStack) -> None:
        client = redis_client(cfg.redis_url)
        stack.push_async_callback(client.aclose)
        model = SignalModel(client)
        app.state.model = model
        deps.add("redis", client.ping)
        try:
            await model.load()
        except Exception as exc:  # serve anyway: /ready says why, reload can fix it
            _log.error("could not load the signal model: %s", exc)
        gauges = asyncio.create_task(_model_gauges(model))
        stack.push_async_callback(cancel_and_wait, gauges)

    app = service_app(SERVICE, setup, deps, max_body_bytes=cfg.max_body_bytes,
                      telemetry_on=telemetry_on, check_interval_s=2.0)  # fmt: skip

    @app.post("/api/v1/signals")
    async def signals(req: SignalRequest) -> dict[str, Any]:
        model: SignalModel = app.state.model
        params = model.params  # one read: an unload during the request must not change it
        if params is None:
            raise HTTPException(503, "signal model not loaded; POST /api/v1/model/reload")
        symbols = [s.strip().upper() for s in req.symbols]
        start = time.perf_counter()
        with tracer().start_as_current_span("signal.generate") as span:
            span.set_attribute("trading.model.version", params.version)
            span.set_attribute("trading.signal.symbols", len(symbols))
            out = await model.predict(symbols, params)
        meters().signal_generation_duration.record(time.perf_counter() - start)
        meters().signal_predictions.add(len(out))
        return {"model_version": params.version, "signals": out}

    @app.get("/api/v1/model")
    async def model_info() -> dict[str, Any]:
        model: SignalModel = app.state.model
        return {
            "loaded": model.loaded,
            "version": model.params.version if model.params else None,
            "age_s": round(model.age_s(), 1),
            "reloads": model.reloads,
        }

    @app.post("/api/v1/model/reload", dependencies=admin)
    async def reload() -> dict[str, Any]:
        model: SignalModel = app.state.model
        with tracer().start_as_current_span("model.reload"):
            params = await model.load()
        meters().model_reloads.add(1)
        _publish_model_state(model)
        _log.info("signal model reloaded: %s", params.version)
        return await model_info()

    @app.post("/api/v1/model/unload", dependencies=admin)
    async def unload() -> dict[str, Any]:
        """Take the model out of service (a kill switch); reload brings it back."""
        model: SignalModel = app.state.model
        with tracer().start_as_current_span("model.unload"):
            params = model.unload()
        _publish_model_state(model)
        _log.warning("signal model unloaded by API call (was %s); signals answer 503 until "
                     "POST /api/v1/model/reload", params.version if params else "none")  # fmt: skip
        return await model_info()

    return app
