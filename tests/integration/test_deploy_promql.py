"""Every PromQL expression we ship evaluates without error on a real Prometheus 2.42.

That covers dashboards (with Grafana's interval macros filled in), alert and recording
rules, runbook queries and the Tempo datasource's trace-to-metrics queries. The same
Prometheus loads the rule files, and every rule must report healthy.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import yaml

from tests.fixtures.alerting import DEPLOY, REPO
from tests.fixtures.prometheus import PrometheusFactory
from tests.unit.test_deploy_grafana import dashboard_exprs, datasources
from trading_otel_tools.procs import ServerError
from trading_otel_tools.servers.prometheus import PrometheusServer

pytestmark = pytest.mark.integration

RULES = DEPLOY / "prometheus/rules"


def _rule_exprs() -> list[tuple[str, str]]:
    out = []
    for name in ("recording.yml", "alerts.yml"):
        for group in yaml.safe_load((RULES / name).read_text())["groups"]:
            for rule in group["rules"]:
                out.append((rule.get("alert") or rule["record"], rule["expr"]))
    return out


def _runbook_exprs() -> list[tuple[str, str]]:
    out = []
    for path in sorted((REPO / "docs/runbooks").glob("*.md")):
        for block in re.findall(r"```promql\n(.*?)```", path.read_text(), re.S):
            out += [(path.stem, q.replace("<service>", "x")) for q in block.splitlines() if q]
    return out


def _tempo_exprs() -> list[tuple[str, str]]:
    queries = datasources()["tempo"]["jsonData"]["tracesToMetrics"]["queries"]
    # Grafana replaces $__tags with the span's mapped tags; `$$` is the provisioning escape.
    return [(q["name"], q["query"].replace("$$__tags", 'job="x"')) for q in queries]


ALL = (
    [(f"dashboard {uid}: {title}", expr) for uid, title, expr in dashboard_exprs()]
    + [(f"rule {name}", expr) for name, expr in _rule_exprs()]
    + [(f"runbook {name}", expr) for name, expr in _runbook_exprs()]
    + [(f"tempo {name}", expr) for name, expr in _tempo_exprs()]
)


@pytest.fixture(scope="module")
def rules_prometheus(prometheus_factory: PrometheusFactory) -> PrometheusServer:
    config: dict[str, Any] = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES / "recording.yml"), str(RULES / "alerts.yml")],
        "scrape_configs": [],
    }
    return prometheus_factory(config=config)


def test_every_shipped_expression_evaluates(rules_prometheus: PrometheusServer) -> None:
    failures = []
    for where, expr in ALL:
        try:
            rules_prometheus.query(expr)
        except ServerError as exc:  # collect them all: one run shows every broken query
            failures.append(f"{where}: {expr!r}: {exc}")
    assert len(ALL) > 100
    assert failures == []


def test_rules_load_and_evaluate_healthy(rules_prometheus: PrometheusServer) -> None:
    deadline = time.monotonic() + 20
    while True:
        groups = rules_prometheus.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        evaluated = [r for r in rules if not r.get("lastEvaluation", "0001").startswith("0001")]
        if rules and len(evaluated) == len(rules):
            break
        assert time.monotonic() < deadline, "rules were not evaluated"
        time.sleep(0.5)
    assert len(rules) == len(_rule_exprs())
    unhealthy = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert unhealthy == {}
