"""Shared pytest configuration. Fixture modules live in tests/fixtures/, one per server."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.prometheus",
]
