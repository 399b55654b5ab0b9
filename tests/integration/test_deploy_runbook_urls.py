"""Runbook links, end to end: real Prometheus renders them, the alert receiver serves them.

Prometheus 2.42's promtool cannot give external labels to rule tests, so the rendering of
``{{ $externalLabels.runbook_base_url }}`` is checked here, by a real Prometheus running
the local config with every shipped alert's ``runbook_url`` template.
"""

from __future__ import annotations

import http.client
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.alerting import DEPLOY, REPO
from tests.fixtures.prometheus import PrometheusFactory
from trading_otel_tools.alerts import ArchiveReceiver
from trading_otel_tools.servers.prometheus import wait_for
from trading_otel_tools.stack.alerting import (
    PROMETHEUS_LOCAL,
    AlertingStack,
    local_runbook_base,
    render_prometheus_config,
)

pytestmark = pytest.mark.integration

RUNBOOKS = REPO / "docs" / "runbooks"


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.headers["Content-Type"], resp.read()


def _raw_get(port: int, path: str) -> tuple[int, bytes]:
    """GET a path byte for byte: no client-side normalising of ``..`` or escapes."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _every_alert_firing(rules_dir: Path) -> int:
    """Shipped alerts as always-firing rules that keep their ``runbook_url`` template."""
    shipped = yaml.safe_load((DEPLOY / "prometheus/rules/alerts.yml").read_text())
    rules = [
        {
            "alert": rule["alert"],
            "expr": "vector(1)",
            "annotations": {"runbook_url": rule["annotations"]["runbook_url"]},
        }
        for group in shipped["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    rules_dir.mkdir()
    (rules_dir / "alerts.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "runbook-links", "rules": rules}]})
    )
    (rules_dir / "recording.yml").write_text(yaml.safe_dump({"groups": []}))
    return len(rules)


def test_prometheus_renders_every_link_and_each_opens(
    tmp_path: Path, prometheus_factory: PrometheusFactory, archive_receiver: ArchiveReceiver
) -> None:
    count = _every_alert_firing(tmp_path / "rules")
    assert count == 25
    base = local_runbook_base(archive_receiver.port)
    jobs = [j["job_name"] for j in yaml.safe_load(PROMETHEUS_LOCAL.read_text())["scrape_configs"]]
    config = render_prometheus_config(
        dict.fromkeys(jobs), alertmanager=None, rules_dir=tmp_path / "rules", runbook_base=base
    )
    prom = prometheus_factory(config=config)

    def firing() -> list[dict[str, Any]] | None:
        alerts: list[dict[str, Any]] = prom.api("alerts")["alerts"]
        return alerts if len(alerts) == count else None

    alerts = wait_for(firing, timeout=30, what=f"{count} firing alerts")
    for alert in alerts:
        name = alert["labels"]["alertname"]
        url = alert["annotations"]["runbook_url"]
        assert url == f"{base}/{name}.md"
        status, content_type, body = _get(url)
        assert status == 200
        assert content_type == "text/markdown; charset=utf-8"
        assert body == (RUNBOOKS / f"{name}.md").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/runbooks/../alerting.md",
        "/runbooks/..%2Falerting.md",
        "/runbooks/%2e%2e/alerting.md",
        "/runbooks/..\\alerting.md",
        "/runbooks//etc/passwd",
        "/runbooks/NoSuchAlert.md",
        "/runbooks/ServiceDown",
        "/runbooks/ServiceDown.md/",
        "/runbooks/",
        "/runbooks/.md",
    ],
)
def test_receiver_refuses_anything_but_a_runbook(
    archive_receiver: ArchiveReceiver, path: str
) -> None:
    status, body = _raw_get(archive_receiver.port, path)
    assert status == 404, (path, body[:200])
    assert b"# Alerting" not in body and b"root:" not in body


def test_receiver_does_not_follow_links_out_of_the_directory(
    tmp_path: Path, alert_dir: Path
) -> None:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "Real.md").write_text("# Real\n")
    (tmp_path / "secret.md").write_text("secret\n")
    (runbooks / "Escape.md").symlink_to(tmp_path / "secret.md")
    receiver = ArchiveReceiver(alert_dir, runbooks_dir=runbooks).start()
    off = ArchiveReceiver(alert_dir, runbooks_dir=None).start()
    try:
        assert _raw_get(receiver.port, "/runbooks/Real.md") == (200, b"# Real\n")
        assert _raw_get(receiver.port, "/runbooks/Escape.md")[0] == 404
        assert _raw_get(off.port, "/runbooks/Real.md")[0] == 404
    finally:
        receiver.stop()
        off.stop()


def test_stack_points_prometheus_at_its_own_receiver(alerting_stack: AlertingStack) -> None:
    # The stack as `trading-otel up` runs it: the receiver is a process on its own port.
    prom = alerting_stack.prometheus
    assert prom is not None
    loaded = yaml.safe_load(prom.api("status/config")["yaml"])
    base = loaded["global"]["external_labels"]["runbook_base_url"]
    assert base == f"http://127.0.0.1:{alerting_stack.receiver_port}/runbooks"
    status, content_type, body = _get(f"{base}/CircuitBreakerTripped.md")
    assert status == 200 and content_type.startswith("text/markdown")
    assert body.startswith(b"# CircuitBreakerTripped\n")
