"""The local stack's ports: declared once, distinct, and the docs' table agrees."""

from __future__ import annotations

import re
from pathlib import Path

from services.common.config import ServiceSettings
from services.common.ports import SERVICE_PORTS
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
