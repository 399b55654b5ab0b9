"""A real Alertmanager (shipped local config) never holds back a risk alert.

Alerts are posted through Alertmanager's v2 API with the labels the shipped rules give
them, with and without an active ``ServiceDown`` for the same service. The archive
receiver shows what was notified: risk alerts always arrive; a non-risk alert of the down
service is inhibited, while the same alert for another service arrives in the same
``group_wait``, so its absence is the inhibition and not a slow flush.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.alerting import DEPLOY
from trading_otel_tools.alerts import read_archive
from trading_otel_tools.servers.alertmanager import AlertmanagerServer

pytestmark = pytest.mark.integration

SERVICE = "execution-gateway"
OTHER = "signal-service"
#: Series labels the risk rules carry through (breaker, symbol), so the alerts look real.
SERIES = {"service_name": SERVICE, "instance": "i-1", "breaker": "daily_loss", "symbol": "AAPL"}


def _rules() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "prometheus/rules/alerts.yml").read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


RULES = _rules()
RISK = sorted(name for name, r in RULES.items() if r["labels"].get("category") == "risk")


def _alert(name: str, service: str) -> dict[str, Any]:
    """The alert as Prometheus would send it: the rule's labels, the service filled in."""
    if name == "ServiceDown":  # from `up` of the service's scrape job
        series = {"job": service, "instance": "127.0.0.1:9402"}
    else:
        series = {**SERIES, "service_name": service}
    labels = {**series, **RULES[name]["labels"], "alertname": name, "service": service}
    now = datetime.now(UTC)
    return {
        "labels": labels,
        "annotations": {"summary": f"{name} on {service}"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
        "generatorURL": "http://prometheus.test/graph",
    }


def _notified(alert_dir: Path) -> set[tuple[str, str]]:
    return {(a.name, a.labels.get("service", "")) for a in read_archive(alert_dir).alerts}


def _wait_notified(
    alert_dir: Path, expected: set[tuple[str, str]], timeout: float = 30
) -> set[tuple[str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        got = _notified(alert_dir)
        if expected <= got:
            return got
        if time.monotonic() > deadline:
            missing = sorted(expected - got)
            raise AssertionError(f"within {timeout}s the archive got {sorted(got)}, not {missing}")
        time.sleep(0.25)


def _states(alertmanager: AlertmanagerServer) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (a["labels"]["alertname"], a["labels"].get("service", "")): a["status"]
        for a in alertmanager.alerts()
    }


def _wait_held(alertmanager: AlertmanagerServer, key: tuple[str, str], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while _states(alertmanager).get(key, {}).get("state") != "active":
        assert time.monotonic() < deadline, f"Alertmanager never held {key} as active"
        time.sleep(0.1)


def test_risk_alerts_are_shipped() -> None:
    assert set(RISK) >= {"CircuitBreakerTripped", "DailyLossLimitExceeded", "PositionLimitBreached"}


def test_service_down_never_hides_a_risk_alert(
    alertmanager: AlertmanagerServer, alert_dir: Path
) -> None:
    # The outage is known to Alertmanager first, as when a scrape fails mid-session.
    alertmanager.post_alerts([_alert("ServiceDown", SERVICE)])
    _wait_held(alertmanager, ("ServiceDown", SERVICE))

    alertmanager.post_alerts(
        [_alert(name, SERVICE) for name in RISK]
        + [_alert("OrderLatencyHigh", SERVICE), _alert("OrderLatencyHigh", OTHER)]
    )
    risk = {(name, SERVICE) for name in RISK}
    got = _wait_notified(alert_dir, risk | {("ServiceDown", SERVICE), ("OrderLatencyHigh", OTHER)})

    # Same route and group_wait as the control above, so it would have been sent by now.
    assert ("OrderLatencyHigh", SERVICE) not in got
    states = _states(alertmanager)
    held = states[("OrderLatencyHigh", SERVICE)]
    assert held["state"] == "suppressed" and held["inhibitedBy"], held
    for key in risk:
        assert states[key]["state"] == "active" and not states[key]["inhibitedBy"], key
    channels = {(a.name, a.labels["service"]): a.channel for a in read_archive(alert_dir).alerts}
    assert channels[("DailyLossLimitExceeded", SERVICE)] == "paging"
    assert channels[("PositionLimitBreached", SERVICE)] == "paging"
    assert channels[("CircuitBreakerTripped", SERVICE)] == "paging"


def test_without_service_down_everything_is_notified(
    alertmanager: AlertmanagerServer, alert_dir: Path
) -> None:
    # The control for the test above: the same alerts, no outage, nothing held back.
    alertmanager.post_alerts(
        [_alert(name, SERVICE) for name in RISK] + [_alert("OrderLatencyHigh", SERVICE)]
    )
    _wait_notified(alert_dir, {(name, SERVICE) for name in RISK} | {("OrderLatencyHigh", SERVICE)})
    assert all(s["state"] == "active" for s in _states(alertmanager).values())
