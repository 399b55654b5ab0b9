"""A minimal FastAPI service for the exemplar test: telemetry from the environment only.

Run by tests/integration/test_exemplars_service.py as ``uvicorn
tests.integration.exemplars_app:app`` with ``OTEL_METRICS_EXPORTER=prometheus``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry import trace

import otel


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    otel.configure(service_name="exemplar-app")
    yield
    otel.shutdown()


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/orders")
async def place_order() -> dict[str, str]:
    with otel.order_timer("AAPL", "buy", "limit") as order:
        order.filled()
    ctx = trace.get_current_span().get_span_context()
    return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}
