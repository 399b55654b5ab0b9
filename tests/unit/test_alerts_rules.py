"""Reading pending and firing alerts from Prometheus's rules API (shape as 2.42 answers)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from trading_otel_tools.alerts.rules import RulesError, parse_rules


def _rule(name: str, duration: int, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "alerting", "name": name, "duration": duration, "alerts": alerts,
            "state": alerts[0]["state"] if alerts else "inactive"}  # fmt: skip


def _alert(state: str, active_at: str, severity: str = "critical") -> dict[str, Any]:
    labels = {"alertname": "x", "service": "execution-gateway", "severity": severity}
    return {"labels": labels, "state": state, "activeAt": active_at,
            "annotations": {"summary": "Order latency SLO burning fast"}}  # fmt: skip


PAYLOAD: dict[str, Any] = {
    "status": "success",
    "data": {
        "groups": [
            {
                "name": "trading-slo",
                "rules": [
                    {"type": "recording", "name": "service:x:ratio_rate5m"},
                    _rule("OrderLatencyHigh", 300,
                          [_alert("pending", "2026-11-23T11:13:41.046050835Z", "high")]),
                    _rule("OrderLatencySLOFastBurn", 120,
                          [_alert("firing", "2026-11-23T11:13:51.046050835Z")]),
                    _rule("CircuitBreakerTripped", 0, []),
                ],
            }
        ]
    },
}  # fmt: skip


def test_firing_first_then_pending_with_firing_time() -> None:
    alerts = parse_rules(PAYLOAD)
    assert [(a.name, a.state) for a in alerts] == [
        ("OrderLatencySLOFastBurn", "firing"),
        ("OrderLatencyHigh", "pending"),
    ]
    pending = alerts[1]
    assert pending.active_at == datetime(2026, 11, 23, 11, 13, 41, 46050, tzinfo=UTC)
    assert pending.fires_at == datetime(2026, 11, 23, 11, 18, 41, 46050, tzinfo=UTC)
    assert pending.describe() == (
        "OrderLatencyHigh  high  execution-gateway  "
        "pending since 11:13:41Z, fires at 11:18:41Z if it holds"
    )
    assert alerts[0].describe() == (
        "OrderLatencySLOFastBurn  critical  execution-gateway  "
        "firing since 11:15:51Z (condition true since 11:13:51Z)"
    )


def test_timestamp_without_fraction() -> None:
    payload = {"status": "success", "data": {"groups": [{"rules": [
        _rule("A", 0, [_alert("firing", "2026-11-23T11:13:41Z")])]}]}}  # fmt: skip
    assert parse_rules(payload)[0].active_at == datetime(2026, 11, 23, 11, 13, 41, tzinfo=UTC)


def test_no_alerts_is_empty() -> None:
    assert parse_rules({"status": "success", "data": {"groups": []}}) == []


def test_error_answer_is_reported() -> None:
    with pytest.raises(RulesError, match="'error': bad type"):
        parse_rules({"status": "error", "error": "bad type"})
