"""Alertmanager configs: amtool validates them, routes go by severity, no secrets inline."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.fixtures.alerting import DEPLOY
from trading_otel_tools.stack.alerting import render_alertmanager_config

AM = DEPLOY / "alertmanager"
CONFIGS = [AM / "alertmanager.yml", AM / "alertmanager.local.yml"]


def _amtool(amtool: str, *args: str) -> str:
    res = subprocess.run([amtool, *args], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_amtool_check_config(amtool: str, path: Path) -> None:
    out = _amtool(amtool, "check-config", str(path))
    assert "SUCCESS" in out


def test_rendered_local_config_passes_amtool(amtool: str, tmp_path: Path) -> None:
    path = tmp_path / "am.yml"
    path.write_text(yaml.safe_dump(render_alertmanager_config("http://127.0.0.1:4242")))
    _amtool(amtool, "check-config", str(path))
    doc = yaml.safe_load(path.read_text())
    urls = [h["url"] for r in doc["receivers"] for h in r["webhook_configs"]]
    assert sorted(urls) == [
        f"http://127.0.0.1:4242/alerts/{c}" for c in ("chat", "paging", "ticket")
    ]


@pytest.mark.parametrize(
    ("severity", "production", "local"),
    [
        ("critical", "archive,paging", "paging"),
        ("high", "archive,chat", "chat"),
        ("warning", "archive,ticket", "ticket"),
    ],
)
def test_routing_by_severity(amtool: str, severity: str, production: str, local: str) -> None:
    labels = [f"severity={severity}", "alertname=X", "service=execution-gateway"]
    for path, expected in ((CONFIGS[0], production), (CONFIGS[1], local)):
        out = _amtool(amtool, "config", "routes", "test", f"--config.file={path}", *labels)
        assert out.strip() == expected


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_grouping_and_inhibitions(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert doc["route"]["group_by"] == ["alertname", "service"]
    rules = doc["inhibit_rules"]
    assert {
        "source_matchers": ['alertname="ServiceDown"'],
        "target_matchers": [
            'alertname!="ServiceDown"',
            'category!="risk"',
            'severity!="critical"',
        ],
        "equal": ["service"],
    } in rules
    assert {
        "source_matchers": ['alertname="CircuitBreakerTripped"'],
        "target_matchers": ['alertname="HighOrderRejectionRate"', 'category!="risk"'],
        "equal": ["service"],
    } in rules


def test_production_secrets_come_from_files() -> None:
    doc = yaml.safe_load(CONFIGS[0].read_text())
    secret_keys = {"routing_key", "service_key", "api_url", "auth_password", "smtp_auth_password"}

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                assert key not in secret_keys, f"inline secret {where}.{key}: use {key}_file"
                if key.endswith("_file"):
                    assert str(value).startswith("/etc/alertmanager/secrets/"), (where, key)
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")

    walk(doc, "alertmanager.yml")
    paging = next(r for r in doc["receivers"] if r["name"] == "paging")
    assert "routing_key_file" in paging["pagerduty_configs"][0]
