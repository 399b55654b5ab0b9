"""The stack and traffic commands' own behaviour, without a running stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis.exceptions
from typer.testing import CliRunner

from trading_otel_tools.cli import app
from trading_otel_tools.procs import free_port
from trading_otel_tools.stack import StackConfig, inject_fault

runner = CliRunner()


def test_status_of_an_empty_stack_is_all_stopped(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--var-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["name"] for r in rows} >= {"postgres", "redis", "execution-gateway"}
    assert all(r["state"] == "stopped" and r["pid"] is None for r in rows)


def test_down_with_nothing_started(tmp_path: Path) -> None:
    result = runner.invoke(app, ["down", "--var-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert "stopped 0 component(s)" in result.output


def test_up_rejects_unknown_components(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["up", "--var-dir", str(tmp_path), "--only", "redis,kafka", "--no-install"]
    )
    assert result.exit_code == 1
    assert "unknown component" in result.output and "kafka" in result.output


def test_fault_with_a_bad_value_is_refused_before_touching_redis(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["fault", "broker-reject", "--rate", "2", "--var-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "out of range" in result.output


def test_fault_without_a_stack_says_so(tmp_path: Path) -> None:
    # The stack's Redis is on a port where nothing listens.
    config = StackConfig(tmp_path, ports={"redis": free_port()})
    with pytest.raises((redis.exceptions.ConnectionError, OSError)):
        inject_fault(config, "feed-stall", 5)


def test_load_refuses_bad_rates(tmp_path: Path) -> None:
    result = runner.invoke(app, ["load", "--rate", "0", "--var-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "must be > 0" in result.output
