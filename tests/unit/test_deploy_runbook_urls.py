"""Runbook links are absolute, built from the one ``runbook_base_url`` each Prometheus sets.

Every alert's ``runbook_url`` is ``{{ $externalLabels.runbook_base_url }}/<alert>.md``. The
real Prometheus rendering of all 25 and the receiver serving them are in
``tests/integration/test_deploy_runbook_urls.py``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.fixtures.alerting import DEPLOY, REPO
from trading_otel_tools.stack.alerting import (
    RECEIVER_PORT,
    local_runbook_base,
    render_prometheus_config,
)

RUNBOOKS = REPO / "docs" / "runbooks"
PROM = DEPLOY / "prometheus"
TEMPLATE = "{{ $externalLabels.runbook_base_url }}/%s.md"


def _alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROM / "rules" / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def _prometheus_configs() -> list[Path]:
    """Every Prometheus server config under deploy/ (compose, local, and any k8s one)."""
    found = []
    for path in sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")]):
        docs = list(yaml.safe_load_all(path.read_text()))
        if any(isinstance(d, dict) and "scrape_configs" in d and "rule_files" in d for d in docs):
            assert len(docs) == 1, f"{path}: a Prometheus config is one YAML document"
            found.append(path)
    return found


def _base(path: Path) -> str:
    base: str = yaml.safe_load(path.read_text())["global"]["external_labels"]["runbook_base_url"]
    return base


def test_all_25_alerts_have_a_runbook_link() -> None:
    assert len(_alerts()) == 25


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_runbook_url_renders_to_base_slash_alert(alert: dict[str, Any]) -> None:
    name = alert["alert"]
    template = alert["annotations"]["runbook_url"]
    assert template == TEMPLATE % name
    for config in _prometheus_configs():
        base = _base(config)
        assert template.replace("{{ $externalLabels.runbook_base_url }}", base) == (
            f"{base}/{name}.md"
        )
    assert (RUNBOOKS / f"{name}.md").is_file(), f"missing docs/runbooks/{name}.md"


def test_every_prometheus_config_sets_an_absolute_base() -> None:
    configs = _prometheus_configs()
    assert {p.name for p in configs} >= {"prometheus.local.yml", "prometheus.compose.yml"}
    for path in configs:
        base = _base(path)
        url = urlsplit(base)
        assert url.scheme in ("http", "https") and url.netloc, (path.name, base)
        assert not base.endswith("/"), f"{path.name}: the alerts add the slash"


def test_local_base_is_the_receiver() -> None:
    assert _base(PROM / "prometheus.local.yml") == local_runbook_base(RECEIVER_PORT)
    assert local_runbook_base(4242) == "http://127.0.0.1:4242/runbooks"


def test_rendered_config_points_the_base_at_the_stacks_receiver(
    promtool: str, tmp_path: Path
) -> None:
    doc = render_prometheus_config({}, alertmanager=None, runbook_base=local_runbook_base(4242))
    labels = doc["global"]["external_labels"]
    assert labels["runbook_base_url"] == "http://127.0.0.1:4242/runbooks"
    assert labels["environment"] == "local"
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(doc))
    res = subprocess.run(
        [promtool, "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    # Without a base, the file's own value stays.
    kept = render_prometheus_config({}, alertmanager=None)
    assert kept["global"]["external_labels"]["runbook_base_url"] == local_runbook_base()
