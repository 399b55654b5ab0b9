"""Latency alerts arrive with their diagnosis, on the real local stack.

For each fault (a broker latency spike, then Postgres slowness in the risk query) a fresh
stack runs the shipped rules with ``for:`` cut to 5 s (the fault matrix's profile): the
SLO fast-burn alert fires through the real Prometheus and Alertmanager, the receiver
archives it, investigates it in the background and appends the diagnosis. A fresh stack
per fault because a fired burn alert stays firing for the rest of its 1 h window: a
second fault on the same stack would never page again.

The time from the alert firing (its ``startsAt``) to the diagnosis in the archive is
printed per alert, with p50 and max over the module (run with -s).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from services.gateway.store import _RISK_SLOW
from trading_otel_tools.alerts import ArchivedAlert, read_archive
from trading_otel_tools.alerts.diagnosis import LATENCY_ALERTS
from trading_otel_tools.alerts.profile import write_profile
from trading_otel_tools.investigate.analysis import span_label
from trading_otel_tools.investigate.model import Span
from trading_otel_tools.investigate.sources import FileTraceSource
from trading_otel_tools.stack import (
    StackConfig,
    clear_fault,
    down,
    inject_fault,
    run_load,
    up,
    wait_until_filled,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

COMPONENTS = ("postgres", "redis", "collector", "alert-receiver", "alertmanager", "prometheus",
              "broker-simulator", "market-data", "execution-gateway")  # fmt: skip
ALERT = "OrderLatencySLOFastBurn"
RATE, BASELINE_S = 8.0, 20.0
#: Limits that fail a broken chain instead of hanging it; never timing assertions.
FIRE_DEADLINE_S, DIAGNOSIS_DEADLINE_S = 120.0, 120.0
FAULTS = {
    "broker-spike": {"delay_ms": 800.0, "fraction": 1.0},
    "pg-slow": {"delay_ms": 600.0},
}
#: The investigation's label of the risk query's span (asyncpg names it by operation and
#: database; the label adds the statement, cut to 80 characters).
RISK_SPAN = span_label(
    Span("0" * 32, "0" * 16, "", "SELECT trading", "CLIENT", 0, 1, "execution-gateway",
         {"db.statement": " ".join(_RISK_SLOW.split())})
)  # fmt: skip
#: Seconds from firing to diagnosis, over the whole module.
DELAYS: list[tuple[str, float]] = []


@dataclass
class Run:
    fault: str
    config: StackConfig
    alerts: list[ArchivedAlert]
    """Every firing latency alert archived, with the diagnosis joined."""

    def diagnosed(self, name: str = ALERT) -> ArchivedAlert:
        found = [a for a in self.alerts if a.name == name and a.diagnosis is not None]
        assert found, f"no diagnosed {name}: {[(a.name, a.diagnosis) for a in self.alerts]}"
        return found[-1]


def _latency_alerts(config: StackConfig) -> list[ArchivedAlert]:
    alerts = read_archive(config.var_dir / "alerts").alerts
    return [a for a in alerts if a.name in LATENCY_ALERTS and a.status == "firing"]


def _wait(config: StackConfig, done: object, deadline_s: float, load: bool) -> float:
    """Keep the load going (in 4 s slices) until ``done()``; the time it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        if done():  # type: ignore[operator]
            break
        if load:
            run_load(config, rate=RATE, duration_s=4)
        else:
            time.sleep(2)
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def delays() -> Iterator[list[tuple[str, float]]]:
    yield DELAYS
    if DELAYS:
        values = [d for _, d in DELAYS]
        print(f"\nalert fired -> diagnosis archived, {len(values)} alert(s): "
              f"p50 {statistics.median(values):.1f} s, max {max(values):.1f} s "
              f"({', '.join(f'{n} {d:.1f}' for n, d in DELAYS)})", flush=True)  # fmt: skip


@pytest.fixture(scope="module", params=list(FAULTS))
def run(
    request: pytest.FixtureRequest,
    server_root: Path,
    collector_binary: Path,
    delays: list[tuple[str, float]],
) -> Iterator[Run]:
    fault: str = request.param
    root = server_root / f"diagnosis-{fault}"
    config = replace(StackConfig(root / "stack", only=COMPONENTS).with_free_ports(),
                     ready_timeout_s=90, rules_dir=write_profile(root / "rules"))  # fmt: skip
    try:
        rows = {r.name: r.state for r in up(config, install=False) if r.name in COMPONENTS}
        assert set(rows.values()) == {"ready"}, rows
        wait_until_filled(config)  # the feed's first ticks give the orders their prices
        run_load(config, rate=RATE, duration_s=BASELINE_S)  # baseline exemplars
        inject_fault(config, fault, FIRE_DEADLINE_S + 10, **FAULTS[fault])
        time.sleep(0.6)  # the services poll their fault flags every 0.2 s
        fired_after = _wait(
            config, lambda: any(a.name == ALERT for a in _latency_alerts(config)),
            FIRE_DEADLINE_S, load=True,
        )  # fmt: skip
        run_load(config, rate=RATE, duration_s=4)  # a few more slow orders after the firing
        clear_fault(config, fault)
        print(f"\n{fault}: {ALERT} archived {fired_after:.0f} s into the fault", flush=True)

        def all_diagnosed() -> bool:
            alerts = _latency_alerts(config)
            return bool(alerts) and all(a.diagnosis is not None for a in alerts)

        _wait(config, all_diagnosed, DIAGNOSIS_DEADLINE_S, load=False)
        alerts = _latency_alerts(config)
        seen: set[str] = set()
        for a in alerts:
            if a.diagnosis is not None and a.key not in seen:
                seen.add(a.key)
                delays.append((f"{fault}/{a.name}", float(a.diagnosis["fired_to_diagnosis_s"])))
                print(f"{fault}: {a.name}: {a.diagnosis['status']} "
                      f"{a.diagnosis['fired_to_diagnosis_s']} s after firing "
                      f"({a.diagnosis['elapsed_s']} s after receipt)\n"
                      f"{a.diagnosis['message']}", flush=True)  # fmt: skip
        yield Run(fault, config, alerts)
    finally:
        down(config)


def test_the_alert_names_the_slow_span_and_stored_traces(run: Run) -> None:
    alert = run.diagnosed()
    d = alert.diagnosis
    assert d is not None and d["status"] == "diagnosed", d
    top = d["top_cause"]
    if run.fault == "broker-spike":
        assert top["span"] == "broker.submit", top
    else:
        # The asyncpg span of the risk query, which the fault makes sleep in Postgres: its
        # SELECT span by name and statement, not BEGIN/COMMIT nor any other Postgres span.
        assert top["detail"] == "postgresql call from execution-gateway", top
        assert top["span"] == RISK_SPAN, top
    assert top["slow_median_ms"] > 500, top
    assert top["baseline_median_ms"] is not None and top["baseline_median_ms"] < 100, top
    ids = d["trace_ids"]
    assert 1 <= len(ids) <= 5
    stored = FileTraceSource(run.config.telemetry_dir).fetch(ids)
    assert sorted(t for t, trace in stored.items() if trace.spans) == sorted(ids)
    # The local stack has no Grafana: no Explore links; the message lists the trace ids.
    assert "trace_links" not in d
    assert f"Traces in {d['trace_source']}: {', '.join(ids)}" in d["message"]
    assert all(i in d["log_query"] for i in ids)
    assert Path(d["report"]["path"]).is_file()
    assert top["span"] in d["message"] and ids[0] in d["message"]


def test_every_fired_latency_alert_gets_a_diagnosis(run: Run) -> None:
    # Diagnosed or not, each one carries its outcome; none is left pending.
    assert run.alerts
    pending = {a.name for a in run.alerts if a.diagnosis is None}
    assert pending == set(), pending
