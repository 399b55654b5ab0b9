"""The fault matrix on the real local stack: every alert is silent while healthy, fires
under its fault, the critical ones reach the alert archive through the real Alertmanager,
every dashboard panel shows data, and the committed signal inventory still holds.

One run of tools/trading_otel_tools/inventory/run.py serves every test here (run with -s to see
its progress and the per-alert times).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from trading_otel_tools.inventory import matrix, promql, queries
from trading_otel_tools.inventory.__main__ import summary
from trading_otel_tools.inventory.model import SCRAPE_LABELS, Inventory, diff
from trading_otel_tools.inventory.run import MatrixEnv, MatrixResult, matrix_environment, run_matrix

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

ALERTS = [t.alert for t in matrix.TRIGGERS]
PANELS = [q for q in queries.shipped_queries() if q.kind in ("panel", "variable", "datasource")]


@pytest.fixture(scope="module")
def run(server_root: Path, collector_binary: Path) -> Iterator[tuple[MatrixEnv, MatrixResult]]:
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    with matrix_environment(server_root / "fault-matrix", say) as env:
        result = run_matrix(env, say)
        print("\n" + summary(result), flush=True)
        yield env, result


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_is_silent_while_healthy(run: tuple[MatrixEnv, MatrixResult], alert: str) -> None:
    outcome = run[1].outcomes[alert]
    assert outcome.baseline_series == 0, f"{alert} has series in a healthy stack"


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_fires_under_its_fault(run: tuple[MatrixEnv, MatrixResult], alert: str) -> None:
    outcome = run[1].outcomes[alert]
    assert outcome.fired_after_s is not None, f"{alert} ({outcome.step}): {outcome.error}"


def test_critical_alerts_reach_the_archive(run: tuple[MatrixEnv, MatrixResult]) -> None:
    critical = {a: o for a, o in run[1].outcomes.items() if o.severity == "critical"}
    assert critical
    undelivered = {a: o.error for a, o in critical.items() if not o.delivery}
    assert undelivered == {}
    # Inhibition may only explain an alert by a shipped rule; most must really arrive.
    assert sum(o.delivery.startswith("archive") for o in critical.values()) >= len(critical) - 1


def test_every_name_our_queries_need_was_recorded_again(
    run: tuple[MatrixEnv, MatrixResult],
) -> None:
    """What the unit test trusts the committed inventory for still exists in this run.

    Names no shipped query uses may come and go with timing (a batch that fills up, a
    queue that overflows first on one signal); they are printed, not asserted.
    """
    committed, recorded = Inventory.load(), run[1].inventory
    for change in diff(committed, recorded):
        print(f"inventory: {change}")
    seen = recorded.names("prometheus")
    missing: list[str] = []
    for q in queries.shipped_queries() + queries.promtool_input_series():
        for name, regex, keys in promql.parse(q.expr).selectors:
            if name is not None and name in committed.names("prometheus"):
                if name not in seen:
                    missing.append(f"{q.origin}: {name}")
                elif keys - seen[name].labels - SCRAPE_LABELS:
                    missing.append(f"{q.origin}: {name} {sorted(keys - seen[name].labels)}")
            elif regex is not None and not any(re.fullmatch(regex, n) for n in seen):
                missing.append(f"{q.origin}: {regex}")
    assert missing == [], "re-record with `make inventory` if a component version changed"


@pytest.mark.parametrize("q", PANELS, ids=[q.origin for q in PANELS])
def test_dashboard_query_shows_data(run: tuple[MatrixEnv, MatrixResult], q: queries.Query) -> None:
    # The matrix runs every fault, a gateway-role collector with queues and span metrics,
    # and a websocket quote subscriber: every panel, conditional ones included, must fill.
    env, result = run
    faults_run = {s.removeprefix("fault:") for s in result.steps_run}
    if q.conditional and not q.conditional.startswith("action:"):
        assert q.conditional in faults_run, f"{q.origin}: the matrix never runs {q.conditional}"
    body = httpx.get(
        f"{env.prom}/api/v1/query_range",
        params={"query": q.expr, "start": result.start, "end": result.end, "step": "15s"},
        timeout=30,
    ).json()
    assert body["status"] == "success", body
    assert body["data"]["result"], f"empty panel: {q.expr}"
