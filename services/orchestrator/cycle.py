"""One trading cycle: ask the signal service, then place the orders it suggests."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import httpx

from services.common.auth import bearer
from services.common.config import ServiceSettings
from services.common.telemetry import meters, tracer

_log = logging.getLogger("services.orchestrator.cycle")


class Cycle:
    """Runs cycles against the signal service and the gateway over HTTP."""

    def __init__(self, settings: ServiceSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http
        self.runs = 0
        self.last: dict[str, Any] = {}

    async def run(self) -> dict[str, Any]:
        """Run one cycle; never raises (the outcome says how it went)."""
        start = time.perf_counter()
        placed: list[dict[str, Any]] = []
        errors: list[str] = []
        with tracer().start_as_current_span("orchestration.run") as span:
            try:
                resp = await self.http.post(
                    f"{self.settings.signal_url}/api/v1/signals",
                    json={"symbols": list(self.settings.symbols)},
                )
                resp.raise_for_status()
                signals = resp.json()["signals"]
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                signals = []
                errors.append(f"signals: {exc}")
            for sig in signals:
                if sig["side"] == "hold":
                    continue
                order = {
                    "symbol": sig["symbol"], "side": sig["side"], "type": "market",
                    "quantity": self.settings.orchestrator_order_qty,
                    "client_order_id": f"orch-{uuid.uuid4().hex[:20]}",
                }  # fmt: skip
                try:
                    r = await self.http.post(
                        f"{self.settings.gateway_url}/api/v1/orders",
                        json=order,
                        headers=bearer(self.settings.api_key),
                    )
                    if r.status_code >= 400:  # refused (401, 422) or failed: not placed
                        errors.append(f"order {sig['symbol']}: HTTP {r.status_code}")
                    else:
                        placed.append({"symbol": sig["symbol"], "status": r.json().get("status")})
                except (httpx.HTTPError, ValueError) as exc:
                    errors.append(f"order {sig['symbol']}: {exc}")
            if errors and not placed:
                outcome = "failure"
            elif errors:
                outcome = "partial"
            else:
                outcome = "success"
            span.set_attribute("trading.orchestration.outcome", outcome)
            span.set_attribute("trading.orchestration.orders", len(placed))
            elapsed = time.perf_counter() - start
            m = meters()
            m.orchestration_run_duration.record(elapsed)
            m.orchestration_runs.add(1, outcome=outcome)
            m.heartbeat_timestamp.set(time.time())
        self.runs += 1
        self.last = {"outcome": outcome, "orders": placed, "errors": errors,
                     "duration_s": round(elapsed, 4), "finished_at": time.time()}  # fmt: skip
        log = _log.warning if errors else _log.info
        log("cycle %d: %s, %d orders, errors=%s", self.runs, outcome, len(placed), errors)
        return self.last
