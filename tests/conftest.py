"""Shared pytest configuration. Fixture modules live in tests/fixtures/, one per server."""

from __future__ import annotations

import os
from pathlib import Path

# The tooling finds the checkout through one declared place (trading_otel_tools.home):
# tests name it explicitly, so a test that changes directory still finds it.
os.environ.setdefault("TRADING_OTEL_HOME", str(Path(__file__).resolve().parents[1]))

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.pgredis",
    "tests.fixtures.services",
    "tests.fixtures.prometheus",
    "tests.fixtures.alerting",
    "tests.fixtures.lib",
    "tests.fixtures.collector",
]
