"""``otel.configure()`` in a fresh interpreter: global providers are set once per process."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.fixtures.lib import OFFLINE, REPO

pytestmark = pytest.mark.integration

SCRIPT = r"""
import asyncio, json, threading
import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

def build(**telemetry):
    app = FastAPI(telemetry=telemetry or None)
    @app.get("/orders/{oid}")
    async def get(oid: int):
        return {}
    return app

early = build()                                # built before configure()
opted_out = build(tracing=False, metrics=False)
threads_before = threading.active_count()

import otel
first = otel.configure(service_name="cfg")
second = otel.configure(service_name="ignored")
exporter = InMemorySpanExporter()
if first is not None:
    first.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))

async def hit(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        await c.get("/orders/1")
    names = [s.name for s in exporter.get_finished_spans()]
    exporter.clear()
    return names

out = {
    "configured": first is not None,
    "same": first is second,
    "provider": type(trace.get_tracer_provider()).__name__,
    "new_threads": threading.active_count() - threads_before,
    "early": asyncio.run(hit(early)),
    "late": asyncio.run(hit(build())),
    "opted_out": asyncio.run(hit(opted_out)),
}
otel.instrument_app(opted_out)
out["instrumented"] = asyncio.run(hit(opted_out))
out["service"] = first.resource.attributes["service.name"] if first else None
otel.shutdown()
print(json.dumps(out))
"""


def run(env: dict[str, str], stderr: list[str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **OFFLINE, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    if stderr is not None:
        stderr.append(proc.stderr)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_configure_is_idempotent_and_covers_every_app() -> None:
    out = run({})
    assert out["configured"] and out["same"]
    assert out["provider"] == "LeanTracerProvider"  # TRADING_OTEL_LEAN_SPANS, on by default
    assert out["service"] == "cfg"
    one = ["GET /orders/{oid}"]
    assert out["early"] == one  # app built before configure()
    assert out["late"] == one
    assert out["opted_out"] == []  # FastAPI(telemetry={"tracing": False}) is respected
    assert out["instrumented"] == one  # ...until instrument_app() turns it on


def test_sdk_disabled_sets_up_nothing() -> None:
    out = run({"OTEL_SDK_DISABLED": "true"})
    assert not out["configured"]
    assert out["provider"] == "ProxyTracerProvider"
    assert out["new_threads"] == 0
    assert out["early"] == out["late"] == []


def test_disabled_fastapi_instrumentation_leaves_no_server_span() -> None:
    out = run({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "fastapi"})
    assert out["configured"]
    # Neither our path nor FastAPI's own (which global providers would switch on).
    assert out["early"] == out["late"] == []


def test_bad_values_never_stop_the_service() -> None:
    bad = {
        "OTEL_TRACES_SAMPLER": "traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "abc",
        "OTEL_METRICS_EXPORTER": "bogus,none",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "collector",
        "OTEL_BSP_SCHEDULE_DELAY": "-1",
        "TRADING_OTEL_SHUTDOWN_TIMEOUT": "soon",
    }
    stderr: list[str] = []
    out = run(bad, stderr)
    assert out["configured"]
    assert out["early"] == ["GET /orders/{oid}"]  # sampler fell back to sampling everything
    for var, value in bad.items():
        if var != "OTEL_TRACES_SAMPLER":
            assert stderr[0].count(f"{var}={value!r}") == 1, (var, stderr[0])
