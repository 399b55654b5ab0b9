"""Shared pytest configuration. Fixture modules live in tests/fixtures/, one per server."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.pgredis",
    "tests.fixtures.services",
    "tests.fixtures.prometheus",
    "tests.fixtures.alerting",
    "tests.fixtures.lib",
    "tests.fixtures.collector",
]
