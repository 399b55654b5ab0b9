"""Every alert has a runbook with the four sections, and its queries use real metric names."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.fixtures.alerting import DEPLOY, REPO, unknown_metrics

RUNBOOKS = REPO / "docs/runbooks"
ALERTS = [
    rule["alert"]
    for group in yaml.safe_load((DEPLOY / "prometheus/rules/alerts.yml").read_text())["groups"]
    for rule in group["rules"]
    if "alert" in rule
]
SECTIONS = ("## What it means", "## Confirm", "## Mitigate", "## Prevent")


@pytest.mark.parametrize("alert", ALERTS)
def test_runbook_exists_with_sections(alert: str) -> None:
    path = RUNBOOKS / f"{alert}.md"
    assert path.is_file(), f"missing {path}"
    text = path.read_text()
    assert text.startswith(f"# {alert}\n")
    positions = [text.find(s) for s in SECTIONS]
    assert all(p >= 0 for p in positions), f"{alert}: missing one of {SECTIONS}"
    assert positions == sorted(positions)
    assert "trading-otel" in text, "runbooks point at the CLI (investigate, alerts tail/status)"


@pytest.mark.parametrize("alert", ALERTS)
def test_runbook_queries_use_known_metrics(alert: str) -> None:
    text = (RUNBOOKS / f"{alert}.md").read_text()
    blocks = re.findall(r"```promql\n(.*?)```", text, re.S)
    queries = [q for block in blocks for q in block.splitlines() if q.strip()]
    assert queries, f"{alert}: no PromQL to confirm with"
    assert unknown_metrics(queries) == {}


def test_no_orphan_runbooks() -> None:
    assert {p.stem for p in RUNBOOKS.glob("*.md")} == set(ALERTS)
