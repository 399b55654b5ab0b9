"""What Prometheus's alerting rules say right now: pending and firing alerts with their timing.

The archive only sees an alert once its ``for:`` has elapsed and Alertmanager has sent it.
A run that just ended (the demo) wants to show the alerts on their way too, with the time
each one fires if the condition holds. That comes from ``/api/v1/rules?type=alert``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx


class RulesError(RuntimeError):
    """Prometheus could not be asked, or answered something that is not a rules list."""


@dataclass(frozen=True)
class ActiveAlert:
    """One pending or firing alert instance."""

    name: str
    state: str  # "pending" or "firing"
    severity: str
    service: str
    active_at: datetime
    for_s: float
    summary: str

    @property
    def fires_at(self) -> datetime:
        """When a pending alert fires if its condition still holds (``activeAt + for``)."""
        return self.active_at + timedelta(seconds=self.for_s)

    def describe(self) -> str:
        """One line: name, severity, service, state and when."""
        since = self.active_at.strftime("%H:%M:%SZ")
        if self.state == "firing":
            when = f"firing since {self.fires_at:%H:%M:%SZ} (condition true since {since})"
        else:
            when = f"pending since {since}, fires at {self.fires_at:%H:%M:%SZ} if it holds"
        return f"{self.name}  {self.severity}  {self.service or '-'}  {when}"


def _parse_time(text: str) -> datetime:
    # Prometheus writes nanoseconds; datetime takes at most microseconds.
    head, _, frac = text.rstrip("Z").partition(".")
    micros = (frac + "000000")[:6]
    return datetime.fromisoformat(f"{head}.{micros}+00:00")


def parse_rules(payload: Mapping[str, Any]) -> list[ActiveAlert]:
    """Active alerts from a ``/api/v1/rules`` answer, firing first, then by start time."""
    if payload.get("status") != "success":
        raise RulesError(f"Prometheus answered {payload.get('status')!r}: {payload.get('error')}")
    out: list[ActiveAlert] = []
    for group in payload.get("data", {}).get("groups", []):
        for rule in group.get("rules", []):
            if rule.get("type") != "alerting":
                continue
            for alert in rule.get("alerts", []):
                labels = alert.get("labels", {})
                out.append(
                    ActiveAlert(
                        name=rule["name"],
                        state=alert["state"],
                        severity=labels.get("severity", ""),
                        service=labels.get("service", ""),
                        active_at=_parse_time(alert["activeAt"]),
                        for_s=float(rule.get("duration", 0)),
                        summary=alert.get("annotations", {}).get("summary", ""),
                    )
                )
    return sorted(out, key=lambda a: (a.state != "firing", a.active_at, a.name))


def active_alerts(prometheus: str, timeout_s: float = 5.0) -> list[ActiveAlert]:
    """Ask Prometheus for its pending and firing alerts."""
    try:
        resp = httpx.get(f"{prometheus}/api/v1/rules", params={"type": "alert"}, timeout=timeout_s)
        payload = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise RulesError(f"cannot read alert rules from {prometheus}: {exc}") from exc
    try:
        return parse_rules(payload)
    except (KeyError, TypeError, ValueError) as exc:
        raise RulesError(f"unexpected rules answer from {prometheus}: {exc}") from exc
