"""The local stack's ports: declared once, distinct, and the docs' table agrees."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from services.common.config import ServiceSettings
from services.common.ports import SERVICE_PORTS
from trading_otel_tools import procs
from trading_otel_tools.ports import TOOL_PORTS, default_ports
from trading_otel_tools.servers.collector import CollectorPorts

DOC = Path(__file__).resolve().parents[2] / "docs" / "local-stack.md"


def test_every_component_has_its_own_port() -> None:
    ports = default_ports()
    assert len(set(ports.values())) == len(ports), ports
    assert set(SERVICE_PORTS) | set(TOOL_PORTS) <= set(ports)


def test_local_stack_doc_lists_the_declared_ports() -> None:
    table = [line for line in DOC.read_text().splitlines() if re.match(r"^\| [a-z]", line)]
    documented = {int(p) for line in table for p in re.findall(r"\b\d{4,5}\b", line.split("|")[2])}
    declared = {p for k, p in default_ports().items() if not k.endswith("-metrics")}
    assert documented == declared


def test_services_find_each_other_on_the_declared_ports() -> None:
    s = ServiceSettings()
    assert s.broker_url.endswith(f":{SERVICE_PORTS['broker-simulator']}")
    assert s.gateway_url.endswith(f":{SERVICE_PORTS['execution-gateway']}")
    assert s.signal_url.endswith(f":{SERVICE_PORTS['signal-service']}")
    assert CollectorPorts.defaults().otlp_http == TOOL_PORTS["otlp-http"]


def _ephemeral() -> tuple[int, int]:
    lo, hi = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    return lo, hi


def test_free_ports_stay_out_of_the_range_outgoing_connections_use() -> None:
    # A port from bind(0) lies where the kernel also takes outgoing connections' local
    # ports; one of those took a service's port before it bound, and CI lost a module.
    lo, hi = _ephemeral()
    drawn = [procs.free_port() for _ in range(200)]
    assert len(set(drawn)) == len(drawn), "a port was handed out twice"
    assert all(1024 <= p < lo or p > hi for p in drawn), sorted(drawn)[-5:]


def test_free_port_skips_a_port_someone_listens_on(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", procs.free_port()))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr(procs, "_issued", set())  # skipped for being bound, not issued
        picks = iter([busy, busy, busy + 1 if busy + 1 < _ephemeral()[0] else busy - 1])
        monkeypatch.setattr(procs._random, "randrange", lambda a, b: next(picks))
        port = procs.free_port()
    assert port != busy
    assert abs(port - busy) == 1


def test_free_port_lets_the_kernel_pick_when_no_room_is_left(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    whole = tmp_path / "ip_local_port_range"
    whole.write_text("1024\t65535\n")
    monkeypatch.setattr(procs, "_PORT_RANGE_FILE", str(whole))
    port = procs.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free, as promised
