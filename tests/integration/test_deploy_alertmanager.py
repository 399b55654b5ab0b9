"""A real Alertmanager with the shipped local routes, sending to the archive receiver."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from trading_otel_tools.alerts import ArchivedAlert, read_archive
from trading_otel_tools.servers.alertmanager import AlertmanagerServer

pytestmark = pytest.mark.integration


def _alert(name: str, severity: str, service: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, "severity": severity, "service": service},
        "annotations": {"summary": f"{name} on {service}"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
        "generatorURL": "http://prometheus.test/graph",
    }


def _wait_archived(alert_dir: Path, names: set[str], timeout: float = 30) -> list[ArchivedAlert]:
    deadline = time.monotonic() + timeout
    while True:
        alerts = read_archive(alert_dir).alerts
        if names <= {a.name for a in alerts}:
            return alerts
        if time.monotonic() > deadline:
            got = sorted({a.name for a in alerts})
            raise AssertionError(f"archive has {got}, expected {sorted(names)} within {timeout}s")
        time.sleep(0.25)


def test_routes_by_severity_and_inhibits(alertmanager: AlertmanagerServer, alert_dir: Path) -> None:
    alertmanager.post_alerts(
        [
            _alert("CircuitBreakerTripped", "critical", "execution-gateway"),
            _alert("HighOrderRejectionRate", "high", "execution-gateway"),
            _alert("ServiceDown", "critical", "signal-service"),
            _alert("HighAPIErrorRate", "high", "signal-service"),
            _alert("ModelStale", "warning", "orchestrator"),
            _alert("FailedAuthAttempts", "high", "market-data"),
        ]
    )
    archived = _wait_archived(
        alert_dir, {"CircuitBreakerTripped", "ServiceDown", "ModelStale", "FailedAuthAttempts"}
    )
    channels = {a.name: a.channel for a in archived}
    assert channels["CircuitBreakerTripped"] == "paging"
    assert channels["ServiceDown"] == "paging"
    assert channels["FailedAuthAttempts"] == "chat"
    assert channels["ModelStale"] == "ticket"

    # Inhibited alerts are held by Alertmanager itself, never notified.
    state = {a["labels"]["alertname"]: a["status"] for a in alertmanager.alerts()}
    assert state["HighOrderRejectionRate"]["state"] == "suppressed"
    assert state["HighOrderRejectionRate"]["inhibitedBy"]
    assert state["HighAPIErrorRate"]["state"] == "suppressed"
    assert state["FailedAuthAttempts"]["state"] == "active"
    # Both chat alerts share a group_wait; the uninhibited one was sent, so the other would
    # have been too if it were not inhibited.
    names = {a.name for a in read_archive(alert_dir).alerts}
    assert "HighOrderRejectionRate" not in names
    assert "HighAPIErrorRate" not in names


def test_archived_record_keeps_labels_and_annotations(
    alertmanager: AlertmanagerServer, alert_dir: Path
) -> None:
    alertmanager.post_alerts([_alert("DatabaseDown", "critical", "execution-gateway")])
    (alert,) = _wait_archived(alert_dir, {"DatabaseDown"})
    assert alert.status == "firing"
    assert alert.labels["service"] == "execution-gateway"
    assert alert.annotations["summary"] == "DatabaseDown on execution-gateway"
    assert alert.fingerprint
