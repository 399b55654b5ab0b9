"""``investigate`` on the real local stack: real services, collector, Prometheus and faults.

One stack runs for the module, and the test drives it through four phases:

1. A quiet baseline.
2. A broker latency spike.
3. A quiet gap, longer than the rate window.
4. Postgres slowness in the risk query.

Then it investigates each part. The expected answers are:

- the quiet part reports no breach;
- the broker spike is blamed on `broker.submit`;
- the Postgres slowness is blamed on the asyncpg span of the risk query.

The whole module takes about two minutes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trading_otel_tools.cli import app as cli_app
from trading_otel_tools.investigate import InvestigateOptions, Report, investigate, render_text
from trading_otel_tools.stack import (
    StackConfig,
    clear_fault,
    down,
    inject_fault,
    run_load,
    up,
    wait_until_filled,
)

pytestmark = pytest.mark.e2e

COMPONENTS = ("postgres", "redis", "collector", "prometheus", "broker-simulator", "market-data",
              "execution-gateway")  # fmt: skip
#: Prometheus scrapes the collector every 2 s and the services export every 1 s: ten
#: samples per window.
RATE_WINDOW = "20s"
RATE, BASELINE_S, FAULT_S, GAP_S = 8.0, 20.0, 12.0, 32.0
#: How long a spike shows in the quantile after it ends: rate window, export, scrape.
AFTERGLOW_S = 30.0


@dataclass
class Phases:
    config: StackConfig
    baseline: tuple[float, float]
    broker: tuple[float, float]
    gap_end: float
    postgres: tuple[float, float]
    end: float

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.config.port('prometheus')}"

    def options(self, start: float, end: float) -> InvestigateOptions:
        return InvestigateOptions(start=start, end=end, slo=0.25, prometheus=self.prometheus,
                                  telemetry_dir=self.config.telemetry_dir,
                                  rate_window=RATE_WINDOW)  # fmt: skip


def _fault(config: StackConfig, name: str, **params: float) -> tuple[float, float]:
    inject_fault(config, name, FAULT_S + 5, **params)
    time.sleep(0.6)  # the services poll their fault flags every 0.2 s
    start = time.time()
    run_load(config, rate=RATE / 2, duration_s=FAULT_S)
    end = time.time()
    clear_fault(config, name)
    return start, end


@pytest.fixture(scope="module")
def phases(server_root: Path, collector_binary: Path) -> Iterator[Phases]:
    # collector_binary builds the collector if needed and FAILS the module if it cannot.
    config = replace(StackConfig(server_root / "investigate-stack", only=COMPONENTS)
                     .with_free_ports(), ready_timeout_s=90)  # fmt: skip
    try:
        up(config, install=False)
        wait_until_filled(config)  # the feed's first ticks give the orders their prices
        b0 = time.time()
        run_load(config, rate=RATE, duration_s=BASELINE_S)
        broker = _fault(config, "broker-spike", delay_ms=800, fraction=1.0)
        run_load(config, rate=RATE, duration_s=GAP_S)
        gap_end = time.time()
        postgres = _fault(config, "pg-slow", delay_ms=600)
        run_load(config, rate=RATE, duration_s=4)
        time.sleep(12)  # one export (5 s), one scrape (5 s) and the file flush (1 s)
        yield Phases(config, (b0, broker[0]), broker, gap_end, postgres, time.time())
    finally:
        down(config)


def _check_slow_traces(report: Report) -> None:
    assert report.breached, render_text(report)
    assert report.top is not None, render_text(report)
    found = [t for t in report.slow if t.analysis]
    assert found, f"no slow trace found in the files:\n{render_text(report)}"
    assert report.top.top_in >= len(found) * 0.8, render_text(report)


def test_broker_spike_is_blamed_on_the_broker_call(phases: Phases) -> None:
    start, end = phases.broker
    report = investigate(phases.options(phases.baseline[0], end + 10))
    _check_slow_traces(report)
    assert report.top is not None and report.top.label == "broker.submit", render_text(report)
    assert report.top.median_slow_s > 0.7
    assert len(report.windows) == 1
    window = report.windows[0]
    assert start - 10 <= window.start <= end + 10
    assert report.top.median_baseline_s is not None and report.top.median_baseline_s < 0.1


def test_broker_spike_json_through_the_cli(phases: Phases) -> None:
    end = phases.broker[1]
    result = CliRunner().invoke(cli_app, [
        "investigate", "--start", str(phases.baseline[0]), "--end", str(end + 10),
        "--prometheus", phases.prometheus, "--telemetry-dir", str(phases.config.telemetry_dir),
        "--rate-window", RATE_WINDOW, "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["breached"] is True
    assert data["top_cause"]["label"] == "broker.submit"
    slow = [t for t in data["traces"] if t["role"] == "slow" and t["found"]]
    assert slow and all(t["top"] == "broker.submit" for t in slow)
    # The broker simulator's own server span is on the path, folded into the call.
    assert any(s["service"] == "broker-simulator" for s in slow[0]["spans"])


def test_postgres_slowness_is_blamed_on_the_risk_query(phases: Phases) -> None:
    start, end = phases.postgres
    report = investigate(phases.options(phases.broker[1] + AFTERGLOW_S, phases.end))
    _check_slow_traces(report)
    assert report.top is not None
    trace = next(t for t in report.slow if t.analysis and t.analysis.top)
    assert trace.analysis is not None and trace.analysis.top is not None
    by_id = {r.span.span_id: r.span for r in trace.analysis.rows}
    spans = [by_id[i] for i in trace.analysis.top.span_ids]
    # The asyncpg span of the risk query, which the fault makes sleep in Postgres.
    systems = {s.attributes.get("db.system") or s.attributes.get("db.system.name") for s in spans}
    assert systems == {"postgresql"}, spans
    statement = str(spans[0].attributes.get("db.statement") or
                    spans[0].attributes.get("db.query.text"))  # fmt: skip
    assert "pg_sleep" in statement, statement
    assert report.top.label == trace.analysis.top.label
    assert report.top.detail == "postgresql call from execution-gateway"
    assert report.top.median_slow_s > 0.5
    assert report.top.median_baseline_s is not None and report.top.median_baseline_s < 0.1
    # Under a loaded machine the broker spike's tail may still show at the range start.
    assert any(start - 10 <= w.start <= end + 10 for w in report.windows), report.windows


def test_quiet_baseline_reports_no_breach(phases: Phases) -> None:
    start, end = phases.baseline
    report = investigate(phases.options(start + 5, end - 1))
    assert not report.breached, render_text(report)
    assert report.peak is not None and report.peak[1] <= 0.25
    assert "No SLO breach" in render_text(report)
