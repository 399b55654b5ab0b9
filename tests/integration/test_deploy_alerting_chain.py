"""Prometheus (shipped rules) -> Alertmanager (local routes) -> archive receiver process.

The collector's exporter is replaced by a static scrape target, so the test controls the
values; everything downstream of the scrape is the real local-stack configuration.
"""

from __future__ import annotations

import time

import pytest

from tests.fixtures.alerting import StaticMetrics
from trading_otel_tools.alerts import read_archive
from trading_otel_tools.stack.alerting import AlertingStack

pytestmark = pytest.mark.integration

BREAKER = (
    "trading_circuit_breaker_state"
    '{{job="trading/execution-gateway",service_name="execution-gateway",instance="i-1",'
    'breaker="daily_loss"}} {}\n'
)


def test_breaker_trip_reaches_the_archive(
    alerting_stack: AlertingStack, static_metrics: StaticMetrics
) -> None:
    static_metrics.body = "# TYPE trading_circuit_breaker_state gauge\n" + BREAKER.format(0)
    prom = alerting_stack.prometheus
    assert prom is not None
    deadline = time.monotonic() + 30
    while not prom.query('trading_circuit_breaker_state{service_name="execution-gateway"}'):
        assert time.monotonic() < deadline, "the static target was never scraped"
        time.sleep(0.5)

    static_metrics.body = "# TYPE trading_circuit_breaker_state gauge\n" + BREAKER.format(1)
    tripped = time.monotonic()
    deadline = tripped + 60
    while True:
        alerts = [
            a
            for a in read_archive(alerting_stack.archive_dir).alerts
            if a.name == "CircuitBreakerTripped"
        ]
        if alerts:
            break
        assert time.monotonic() < deadline, "CircuitBreakerTripped never reached the archive"
        time.sleep(0.25)
    latency = time.monotonic() - tripped
    # Reported, not asserted: timing belongs in bench/, not in pass/fail tests.
    print(f"\nbreaker trip -> archive line: {latency:.1f}s")
    (alert,) = alerts
    assert alert.channel == "paging"
    assert alert.labels["severity"] == "critical"
    assert alert.labels["service"] == "execution-gateway"
    assert alert.labels["breaker"] == "daily_loss"
    assert alert.annotations["runbook_url"] == (
        f"http://127.0.0.1:{alerting_stack.receiver_port}/runbooks/CircuitBreakerTripped.md"
    )
