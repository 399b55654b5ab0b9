"""The local stack on free ports: up, status, load, faults, port clash, down; never kills
what it did not start."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from trading_otel_tools.collector.build import BINARY
from trading_otel_tools.stack import (
    StackConfig,
    StackError,
    clear_fault,
    down,
    inject_fault,
    list_faults,
    run_load,
    status,
    up,
    wait_until_filled,
)
from trading_otel_tools.stack.state import Entry, StateFile, start_ticks

pytestmark = pytest.mark.integration

CORE = ("postgres", "redis", "broker-simulator", "market-data", "signal-service",
        "execution-gateway", "orchestrator")  # fmt: skip


@pytest.fixture(scope="module")
def stack(server_root: Path) -> Iterator[StackConfig]:
    # Under server_root: the postgres user must be able to reach its data directory.
    var = server_root / "stack"
    # With our collector when it is built (`make test` builds it first): the services
    # then export over OTLP to it.
    only = CORE + (("collector",) if BINARY.is_file() else ())
    config = replace(StackConfig(var, only=only).with_free_ports(), ready_timeout_s=90)
    try:
        up(config, install=False)
        yield config
    finally:
        down(config)


def test_up_reports_every_component_ready(stack: StackConfig) -> None:
    rows = {r.name: r for r in status(stack) if r.name in CORE}
    assert {n: r.state for n, r in rows.items()} == dict.fromkeys(CORE, "ready")
    for name in CORE[2:]:
        assert (stack.log_dir / f"{name}.log").exists()
    # Running up again starts nothing new and keeps the same processes.
    pids = {n: r.pid for n, r in rows.items()}
    up(stack, install=False)
    assert {r.name: r.pid for r in status(stack) if r.name in CORE} == pids


def test_load_and_faults_through_the_stack(stack: StackConfig) -> None:
    wait_until_filled(stack, pause_s=0.1)  # the feed's first ticks give orders prices
    report = run_load(stack, rate=10, duration_s=1.0)
    assert report.sent == 10
    assert report.errors == 0
    assert report.accepted + report.rejected == 10
    assert report.percentile(50) is not None

    assert "broker-reject active for 5s" in inject_fault(stack, "broker-reject", 5, rate=1.0)
    assert set(list_faults(stack)) == {"broker-reject"}
    time.sleep(0.6)  # the broker polls its fault flags every 0.2 s
    rejected = run_load(stack, rate=10, duration_s=0.5)
    assert rejected.rejections.get("broker_reject") == rejected.sent
    assert clear_fault(stack) == ["broker-reject"]
    assert list_faults(stack) == {}

    with pytest.raises(ValueError, match="unknown fault"):
        inject_fault(stack, "meteor-strike", 5)
    with pytest.raises(ValueError, match="out of range"):
        inject_fault(stack, "broker-reject", 5, rate=2.0)


@pytest.mark.skipif(
    not BINARY.is_file(), reason="collector not built (trading-otel collector build)"
)
def test_services_export_to_the_stack_collector(stack: StackConfig) -> None:
    report = run_load(stack, rate=10, duration_s=0.5)
    assert report.accepted + report.rejected == report.sent
    traces = stack.telemetry_dir / "traces.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = traces.read_text() if traces.exists() else ""
        if "order.place" in text and "broker.submit" in text:
            break
        time.sleep(0.25)
    else:
        raise AssertionError(f"no order spans reached {traces} through the collector")
    assert "execution-gateway" in text and "broker-simulator" in text


def test_port_taken_is_a_clear_error(stack: StackConfig, tmp_path: Path) -> None:
    other = replace(stack, var_dir=tmp_path / "other", only=("redis",))
    with pytest.raises(StackError, match=rf"{stack.port('redis')} \(redis\)"):
        up(other, install=False)


def test_down_never_kills_a_process_it_did_not_start(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        config = StackConfig(tmp_path)
        ticks = start_ticks(stranger.pid)
        assert ticks is not None
        # Same pid, different start time: a recycled pid must be left alone.
        StateFile(config.state_path).put(Entry("redis", stranger.pid, ticks + 1, (1,), "x.log", 15))
        assert down(config) == []
        assert stranger.poll() is None
        assert StateFile(config.state_path).load() == {}
    finally:
        stranger.kill()
        stranger.wait()


def test_free_ports_config_never_uses_default_ports(tmp_path: Path) -> None:
    config = StackConfig(tmp_path).with_free_ports()
    for port in config.ports.values():
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free right now
    assert config.port("redis") != 6379
