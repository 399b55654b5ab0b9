"""The k8s agent-to-gateway TLS, run for real: agent (common + agent + agent-k8s) ->
gateway (common + gateway + gateway-k8s, 100 % sampling) -> recorder.

The gateway's certificate names one host, as in the cluster (the Service name), and no
IP. The agent's load_balancing exporter dials the IP its DNS resolver returns (here the
resolver is given 127.0.0.1, as the headless Service gives pod IPs): it reaches the
gateway only because agent-k8s.yaml checks the certificate against
TRADING_OTEL_GATEWAY_TLS_SERVER_NAME. Logs take the OTLP/HTTP exporter, whose https
endpoint names the certificate's host and which trusts the overlay's CA.

The overlays are used as shipped, with only the Secret's mount path and the fixed ports
moved into the test's directory and free ports.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures import collector_payloads as p
from tests.fixtures.alerting import DEPLOY, REPO
from tests.fixtures.collector import (
    RECORDER_CONFIG,
    TOKEN,
    CollectorFactory,
    recorder_env,
    wait_until,
)
from trading_otel_tools.servers.collector import CollectorPorts, CollectorServer

pytestmark = pytest.mark.integration

CONFIG = REPO / "collector/config"
OVERLAYS = DEPLOY / "k8s/config"
MOUNT = "/etc/otelcol-tls/"
# The one name on the certificate; it resolves here (for the OTLP/HTTP exporter) as the
# Service name does in the cluster.
HOST = "localhost"


def _certificates(tls: Path) -> None:
    """A CA, and a gateway certificate for DNS:HOST only (no IP address)."""
    tls.mkdir()

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tls, check=True, capture_output=True, timeout=60)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={HOST}",
        "-keyout", "tls.key", "-out", "tls.csr")  # fmt: skip
    (tls / "san.ext").write_text(f"subjectAltName=DNS:{HOST}\n")
    ssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "tls.crt")  # fmt: skip


def _moved(overlay: str, out: Path, tls: Path, replace: dict[str, str]) -> Path:
    text = (OVERLAYS / overlay).read_text()
    assert MOUNT in text
    text = text.replace(MOUNT, f"{tls}/")
    for old, new in replace.items():
        assert old in text, (overlay, old)
        text = text.replace(old, new)
    path = out / overlay
    path.write_text(text)
    return path


Chain = tuple[CollectorServer, CollectorServer, CollectorFactory, Path]


@pytest.fixture(scope="module")
def chain(collector_factory: CollectorFactory, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    out = tmp_path_factory.mktemp("k8s-tls")
    tls = out / "tls"
    _certificates(tls)
    recorder = collector_factory("recorder", [RECORDER_CONFIG])
    ports = CollectorPorts.free()
    gateway_overlay = _moved(
        "gateway-k8s.yaml",
        out,
        tls,
        {
            "0.0.0.0:4317": f"127.0.0.1:{ports.otlp_grpc}",
            "0.0.0.0:4318": f"127.0.0.1:{ports.otlp_http}",
        },
    )
    gateway = collector_factory(
        "gateway",
        [CONFIG / "common.yaml", CONFIG / "gateway.yaml", gateway_overlay],
        env=recorder_env(recorder) | {"TRADING_OTEL_BASELINE_SAMPLE_PERCENT": "100"},
        ports=ports,
    )
    agent_overlay = _moved(
        "agent-k8s.yaml", out, tls, {'port: "4317"': f'port: "{ports.otlp_grpc}"'}
    )
    return recorder, gateway, collector_factory, agent_overlay


def _agent(chain: Chain, name: str, server_name: str) -> CollectorServer:
    _, gateway, factory, overlay = chain
    return factory(
        name,
        [CONFIG / "common.yaml", CONFIG / "agent.yaml", overlay],
        env={
            "TRADING_OTEL_GATEWAY_ENDPOINT": f"https://{HOST}:{gateway.ports.otlp_http}",
            "TRADING_OTEL_GATEWAY_HEADLESS": "127.0.0.1",
            "TRADING_OTEL_GATEWAY_TLS_SERVER_NAME": server_name,
            "TRADING_OTEL_GATEWAY_TOKEN": TOKEN,
            "TRADING_OTEL_GATEWAY_RETRY_MAX_INTERVAL": "1s",
            "TRADING_OTEL_COLLECTOR_BATCH_TIMEOUT": "200ms",
            "TRADING_OTEL_HOSTFS": "/",
        },
    )


def _send(agent: CollectorServer, label: str) -> None:
    url = f"http://127.0.0.1:{agent.ports.otlp_http}"
    p.post(url, p.traces_request(p.order_spans(label, "fast")))
    p.post(url, p.logs_request([p.log_record(label)]))


def _arrived(recorder: CollectorServer) -> tuple[set[str], set[str]]:
    traces = {s["traceId"] for _, s in p.spans_in(recorder.telemetry_dir / "traces.jsonl")}
    logs = {
        p.attrs(rec)["log.label"] for _, rec in p.logs_in(recorder.telemetry_dir / "logs.jsonl")
    }
    return traces, logs


def test_traces_and_logs_cross_tls_to_a_gateway_dialled_by_ip(chain: Chain) -> None:
    recorder = chain[0]
    agent = _agent(chain, "agent", HOST)
    _send(agent, "k8s-tls-ok")
    want = p.trace_id("k8s-tls-ok").hex()

    def both() -> bool:
        traces, logs = _arrived(recorder)
        return want in traces and "k8s-tls-ok" in logs

    wait_until(both, 30, "the span (load_balancing, gRPC) and the log (OTLP/HTTP) at Tempo/Loki")
    agent.stop()


def test_without_the_server_name_the_ip_fails_the_hostname_check(chain: Chain) -> None:
    # The finding itself: with an empty override the exporter checks the certificate
    # against the dialled IP, which it does not name.
    recorder = chain[0]
    agent = _agent(chain, "agent-no-name", "")
    _send(agent, "k8s-tls-no-name")

    def refused() -> bool:
        log = agent.log_path.read_text(errors="replace")
        return "127.0.0.1" in log and "x509" in log

    wait_until(refused, 30, "the agent's x509 error for 127.0.0.1")
    assert p.trace_id("k8s-tls-no-name").hex() not in _arrived(recorder)[0]
    # The log still crossed: the OTLP/HTTP exporter dials the certificate's host.
    wait_until(lambda: "k8s-tls-no-name" in _arrived(recorder)[1], 30, "the log at Loki")
    agent.stop()
