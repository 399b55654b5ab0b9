"""No shipped inhibit rule can silence a trading-risk alert (static, on the shipped files).

Each inhibit rule's ``target_matchers`` are evaluated against every risk alert's labels as
the rules in ``alerts.yml`` set them. Only labels the rule fixes are trusted: a templated
value (``service``) or a label that comes from the series could be anything, so a matcher
on it is assumed to match. A rule is safe for an alert only if some matcher on a fixed
label is certain to fail. The real Alertmanager check is
``tests/integration/test_deploy_inhibition.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.alerting import DEPLOY

AM_CONFIGS = [
    DEPLOY / "alertmanager" / "alertmanager.yml",
    DEPLOY / "alertmanager" / "alertmanager.local.yml",
]
RULES = DEPLOY / "prometheus" / "rules" / "alerts.yml"
RISK_GROUP = "trading-risk"
#: Named by the trading desk: these must always reach a person.
ALWAYS_NOTIFY = {"CircuitBreakerTripped", "DailyLossLimitExceeded", "PositionLimitBreached"}

_MATCHER = re.compile(
    r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^"\s]*))\s*'
)


@dataclass(frozen=True)
class Matcher:
    """One Alertmanager label matcher (``name op "value"``); regexes are anchored."""

    name: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        m = _MATCHER.fullmatch(text)
        assert m is not None, f"cannot parse matcher {text!r}"
        quoted, bare = m.group(3), m.group(4)
        value = bare if quoted is None else re.sub(r"\\(.)", r"\1", quoted)
        return cls(m.group(1), m.group(2), value)

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = re.fullmatch(f"(?:{self.value})", value) is not None
        return hit if self.op == "=~" else not hit


def target_matchers(rule: Mapping[str, Any]) -> list[Matcher]:
    """The target side of an inhibit rule, in any of the three spellings Alertmanager takes."""
    out = [Matcher.parse(t) for t in rule.get("target_matchers", [])]
    out += [Matcher(k, "=", str(v)) for k, v in rule.get("target_match", {}).items()]
    out += [Matcher(k, "=~", str(v)) for k, v in rule.get("target_match_re", {}).items()]
    assert out, f"inhibit rule without targets mutes everything: {rule}"
    return out


@dataclass(frozen=True)
class Alert:
    name: str
    group: str
    labels: Mapping[str, str]  # the rule's own labels, templated or not

    @property
    def fixed(self) -> dict[str, str]:
        """Labels whose value is known before evaluation (rule labels override the series)."""
        fixed = {k: v for k, v in self.labels.items() if "{{" not in v}
        fixed["alertname"] = self.name
        return fixed


def shipped_alerts() -> list[Alert]:
    doc = yaml.safe_load(RULES.read_text())
    return [
        Alert(rule["alert"], group["name"], rule.get("labels", {}))
        for group in doc["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def is_risk(alert: Alert) -> bool:
    return (
        alert.labels.get("category") == "risk"
        or alert.name in ALWAYS_NOTIFY
        or (alert.group == RISK_GROUP and alert.labels.get("severity") == "critical")
    )


def can_inhibit(matchers: list[Matcher], alert: Alert) -> bool:
    """Whether these target matchers might match the alert (all must match)."""
    fixed = alert.fixed
    return all(m.name not in fixed or m.matches(fixed[m.name]) for m in matchers)


def inhibit_rules(path: Path) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = yaml.safe_load(path.read_text())["inhibit_rules"]
    return rules


RISK_ALERTS = [a for a in shipped_alerts() if is_risk(a)]
CASES = [
    pytest.param(path, i, alert, id=f"{path.name}-rule{i}-{alert.name}")
    for path in AM_CONFIGS
    for i in range(len(inhibit_rules(path)))
    for alert in RISK_ALERTS
]


def test_risk_alerts_are_labelled_as_such() -> None:
    alerts = {a.name: a for a in shipped_alerts()}
    assert set(alerts) >= ALWAYS_NOTIFY, "an always-notify alert was renamed or removed"
    for alert in alerts.values():
        if alert.group == RISK_GROUP or alert.name in ALWAYS_NOTIFY:
            assert alert.labels.get("category") == "risk", alert.name
    # The check below is not vacuous.
    assert {a.name for a in RISK_ALERTS} >= ALWAYS_NOTIFY


@pytest.mark.parametrize(("path", "index", "alert"), CASES)
def test_no_inhibit_rule_can_target_a_risk_alert(path: Path, index: int, alert: Alert) -> None:
    rule = inhibit_rules(path)[index]
    assert not can_inhibit(target_matchers(rule), alert), (
        f"{path.name} inhibit rule {index} {rule} could silence {alert.name} {alert.fixed}"
    )


@pytest.mark.parametrize("path", AM_CONFIGS, ids=lambda p: p.name)
def test_every_inhibit_rule_excludes_the_risk_category(path: Path) -> None:
    # The convention that keeps a future risk alert safe without editing Alertmanager.
    for rule in inhibit_rules(path):
        assert Matcher("category", "!=", "risk") in target_matchers(rule), rule


CRITICAL_CASES = [
    pytest.param(path, i, alert, id=f"{path.name}-rule{i}-{alert.name}")
    for path in AM_CONFIGS
    for i in range(len(inhibit_rules(path)))
    for alert in shipped_alerts()
    if alert.labels.get("severity") == "critical" and not alert.name.startswith("ServiceDown")
]


@pytest.mark.parametrize(("path", "index", "alert"), CRITICAL_CASES)
def test_no_inhibit_rule_can_target_a_critical_alert(path: Path, index: int, alert: Alert) -> None:
    # A page must go out even while the service's scrape fails: the broker, the database
    # and the orchestrator's heartbeat report through the collector, not that scrape.
    rule = inhibit_rules(path)[index]
    assert not can_inhibit(target_matchers(rule), alert), (
        f"{path.name} inhibit rule {index} {rule} could silence {alert.name} {alert.fixed}"
    )


def test_both_configs_inhibit_alike() -> None:
    production, local = (inhibit_rules(p) for p in AM_CONFIGS)
    assert production == local


def test_service_down_still_inhibits_the_non_risk_alerts_of_its_service() -> None:
    (rule,) = [
        r
        for r in inhibit_rules(AM_CONFIGS[0])
        if Matcher("alertname", "=", "ServiceDown") in map(Matcher.parse, r["source_matchers"])
    ]
    assert rule["equal"] == ["service"]
    alerts = {a.name: a for a in shipped_alerts()}
    matchers = target_matchers(rule)
    for name in ("OrderLatencyHigh", "HighOrderRejectionRate", "HighAPIErrorRate"):
        assert can_inhibit(matchers, alerts[name]), name
    assert not can_inhibit(matchers, alerts["ServiceDown"])


def test_checker_catches_the_old_blanket_rule() -> None:
    # The rule this change replaced muted every alert of a service whose scrape failed.
    old = target_matchers({"target_matchers": ['alertname!="ServiceDown"']})
    caught = {a.name for a in RISK_ALERTS if can_inhibit(old, a)}
    assert caught >= ALWAYS_NOTIFY
    assert can_inhibit([Matcher.parse('severity=~"crit.*"')], RISK_ALERTS[0])
    assert not can_inhibit([Matcher.parse('severity!~"crit.*|high|warning"')], RISK_ALERTS[0])
    # A matcher on a templated or series label is never trusted to fail.
    assert can_inhibit([Matcher.parse('service="nope"')], RISK_ALERTS[0])
    assert can_inhibit([Matcher.parse('breaker="nope"')], RISK_ALERTS[0])
