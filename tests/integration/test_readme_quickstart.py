"""The README's "Configuration quick-start", run as written, against a real collector.

The Python block and the env block are taken from README.md by their place under that
heading (the test fails loudly when the section changes shape). The code is written to an
``app.py`` and served by ``uvicorn app:app`` (and by ``opentelemetry-instrument uvicorn
app:app``) with exactly the README's environment; only the collector endpoint's port and
the pull endpoint's port are rewritten, to a recording collector and a free port. Then:
the order route's server span, the trading metrics and a log record must reach the
collector, and the pull endpoint must serve the metrics. The literal endpoint of the
README is checked too: its port must be the one of the protocol it implies.

docs/configuration.md "Using it in a service" is run the same way.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from otel._internal.settings import Settings
from tests.fixtures import collector_payloads as payloads
from tests.fixtures.collector import wait_until
from tests.fixtures.lib import REPO
from trading_otel_tools.procs import free_port, port_in_use, tail
from trading_otel_tools.servers.collector import CollectorServer

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent
#: The OTLP ports of the specification, by protocol.
OTLP_PORTS = {"grpc": 4317, "http/protobuf": 4318}
#: The variables the test may rewrite (to ports of its own); every other value is the README's.
REWRITTEN = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_PROMETHEUS_PORT")
ORDERS = 40  # the README samples 25 % of traces: 40 orders leave ~1e-5 odds of none sampled
BIG = 5_000  # over the quick-start's MAX_ORDER_QTY: rejected


# --- reading the docs -------------------------------------------------------------------


def section(path: Path, heading: str) -> str:
    """The text under ``heading`` (a whole line) up to the next heading of the same level."""
    text = path.read_text(encoding="utf-8")
    level = heading.split(" ", 1)[0]
    match = re.search(rf"^{re.escape(heading)}\n(.*?)(?=^{level} |\Z)", text, re.M | re.S)
    if match is None:
        pytest.fail(f"{path.name}: no {heading!r} section; update this test with the docs")
    return match.group(1)


def code_blocks(text: str) -> list[tuple[str, str]]:
    """The fenced blocks of ``text``, as (info string, body)."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)


def parse_env_block(body: str) -> dict[str, str]:
    """``VAR=value  # comment`` lines; anything else fails the test."""
    env: dict[str, str] = {}
    for line in body.splitlines():
        m = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(\S*)(?:\s+#.*)?", line.strip())
        if m is None:
            pytest.fail(f"README env block: cannot read the line {line!r}")
        env[m.group(1)] = m.group(2)
    return env


@dataclass(frozen=True)
class QuickStart:
    code: str
    env: dict[str, str]
    #: how the README runs the app -> the variables it puts in front of that command
    commands: dict[str, dict[str, str]]


def readme_quickstart() -> QuickStart:
    text = section(REPO / "README.md", "## Configuration quick-start")
    blocks = code_blocks(text)
    shape = [info for info, _ in blocks]
    if shape != ["python", ""]:
        pytest.fail(
            "README 'Configuration quick-start' changed shape: expected a ```python block "
            f"then a plain env block, found {shape}; update this test with the README"
        )
    # `uvicorn app:app`, `VAR=x opentelemetry-instrument uvicorn app:app`: command -> its vars
    found = re.findall(
        r"`((?:[A-Z_]+=\S+ )*)((?:opentelemetry-instrument )?uvicorn app:app)`", text
    )
    commands = {cmd: dict(v.split("=", 1) for v in prefix.split()) for prefix, cmd in found}
    if set(commands) != {"uvicorn app:app", "opentelemetry-instrument uvicorn app:app"}:
        pytest.fail(f"README quick-start no longer names both ways to run app:app: {commands}")
    env = parse_env_block(blocks[1][1])
    suspicious = [
        k for k, v in env.items() if k not in REWRITTEN and ("://" in v or k.endswith("_PORT"))
    ]
    if suspicious:
        pytest.fail(f"README env sets addresses this test does not rewrite: {suspicious}")
    return QuickStart(blocks[0][1], env, commands)


# --- running it -------------------------------------------------------------------------


def rewritten_env(env: dict[str, str], recorder: CollectorServer, pull_port: int) -> dict[str, str]:
    """The README's env, pointed at the recorder (same protocol) and a free pull port."""
    out = dict(env)
    protocol = Settings.from_env(env).otlp["traces"].protocol
    port = recorder.ports.otlp_grpc if protocol == "grpc" else recorder.ports.otlp_http
    url = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    out["OTEL_EXPORTER_OTLP_ENDPOINT"] = url._replace(netloc=f"{url.hostname}:{port}").geturl()
    out["OTEL_EXPORTER_PROMETHEUS_PORT"] = str(pull_port)
    return out


@dataclass
class Served:
    url: str
    pull_url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, as a deployment stops it; the lifespan then flushes (bounded)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"did not stop within {timeout}s of SIGTERM:\n{tail(self.log)}")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[Served] = []

    def start(code: str, command: list[str], env: dict[str, str], pull_port: int) -> Served:
        app_dir = tmp_path / f"run{len(started)}"
        app_dir.mkdir()
        (app_dir / "app.py").write_text(code, encoding="utf-8")
        port = free_port()
        log = app_dir / "server.log"
        # The README's env and nothing else but where programs and our checkout are.
        full_env = {
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PYTHONPATH": str(REPO),
            **env,
        }
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(port)],
                cwd=app_dir,
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        served = Served(
            f"http://127.0.0.1:{port}", f"http://127.0.0.1:{pull_port}/metrics", proc, log
        )
        started.append(served)
        deadline = time.monotonic() + 30
        while not port_in_use(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{' '.join(command)} did not start serving:\n{tail(log)}")
            time.sleep(0.05)
        return served

    yield start
    for served in started:
        served.stop()


def send_orders(url: str) -> list[str]:
    statuses = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(ORDERS):
            qty = BIG if i % 10 == 0 else 1 + i % 3
            body = {"symbol": "AAPL" if i % 2 else "NVDA", "side": "buy", "quantity": qty}
            resp = client.post("/api/v1/orders", json=body)
            resp.raise_for_status()
            statuses.append(resp.json()["status"])
        assert client.post("/api/v1/orders", json={"symbol": "aapl"}).status_code == 422
    return statuses


def metric_names(path: Path) -> set[str]:
    return {
        m["name"]
        for doc in payloads.read_lines(path)
        for rm in doc.get("resourceMetrics", [])
        for sm in rm.get("scopeMetrics", [])
        for m in sm.get("metrics", [])
    }


def pull(url: str) -> str:
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"}
    return httpx.get(url, headers=headers, timeout=5).text


def assert_arrived(recorder: CollectorServer, service: str, run: str) -> None:
    """The order route's server span, the trading metrics and a log record of ``run``."""
    files = recorder.telemetry_dir

    def spans() -> list[dict[str, Any]]:
        return [
            s
            for res, s in payloads.spans_in(files / "traces.jsonl")
            if payloads.attrs(res).get("service.instance.id") == run
            and s["name"] == "POST /api/v1/orders"
            and s.get("kind") == 2
        ]

    found = wait_until(spans, 20, f"the order route's server span of {run}")
    assert all(payloads.attrs(s).get("http.route") == "/api/v1/orders" for s in found)
    logs = wait_until(
        lambda: [
            (res, r)
            for res, r in payloads.logs_in(files / "logs.jsonl")
            if payloads.attrs(res).get("service.instance.id") == run
            and str(r.get("body", {}).get("stringValue", "")).startswith("filled buy")
        ],
        20,
        f"a 'filled' log record of {run}",
    )
    res, record = logs[0]
    assert payloads.attrs(res)["service.name"] == service
    assert payloads.attrs(res)["deployment.environment.name"] == "prod"
    assert record.get("traceId")  # logged inside the order's span
    wanted = {"trading.orders", "trading.order.latency", "trading.order.rejections"}
    wait_until(
        lambda: wanted <= metric_names(files / "metrics.jsonl"),
        20,
        f"the trading metrics {sorted(wanted)}",
    )


def assert_pull_endpoint(url: str) -> None:
    text = pull(url)
    filled = re.findall(r'^trading_orders_total\{[^}]*status="filled"[^}]*\} (\S+)', text, re.M)
    assert sum(map(float, filled)) == ORDERS - ORDERS // 10, text[:2000]
    assert re.search(r'^trading_order_rejections_total\{[^}]*reason="position_limit"', text, re.M)
    assert "trading_order_latency_seconds_bucket{" in text
    # NVDA is on the README's allow-list; only sampled spans (25 %) leave exemplars.
    assert 'symbol="NVDA"' in text
    assert re.search(
        r'^trading_order_latency_seconds_bucket\{.*\} \S+ # \{trace_id="[0-9a-f]{32}"', text, re.M
    ), "no exemplar"


# --- the tests --------------------------------------------------------------------------


def test_the_readme_endpoint_matches_the_protocol_it_implies() -> None:
    env = readme_quickstart().env
    protocol = Settings.from_env(env).otlp["traces"].protocol
    port = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"]).port
    assert port == OTLP_PORTS[protocol], (
        f"README: OTEL_EXPORTER_OTLP_ENDPOINT uses port {port}, but the protocol is "
        f"{protocol}, whose collector port is {OTLP_PORTS[protocol]}: spans would be lost"
    )


@pytest.mark.parametrize("command", ["uvicorn app:app", "opentelemetry-instrument uvicorn app:app"])
def test_the_readme_quickstart_runs_as_written(
    recorder: CollectorServer, serve: Any, command: str
) -> None:
    qs = readme_quickstart()
    pull_port = free_port()
    run = f"readme-{'instrument' if command.startswith('opentelemetry') else 'plain'}-{pull_port}"
    env = rewritten_env(qs.env, recorder, pull_port) | qs.commands[command]
    # The run's own id, so this test finds its own telemetry among what the recorder kept.
    env["OTEL_RESOURCE_ATTRIBUTES"] += f",service.instance.id={run}"
    served = serve(qs.code, command.split(), env, pull_port)
    statuses = send_orders(served.url)
    assert statuses.count("rejected") == ORDERS // 10
    assert statuses.count("filled") == ORDERS - ORDERS // 10
    assert_pull_endpoint(served.pull_url)
    started = time.monotonic()
    code = served.stop()
    # README: TRADING_OTEL_SHUTDOWN_TIMEOUT=3 bounds the flush; uvicorn re-raises SIGTERM.
    assert code in (0, -signal.SIGTERM), tail(served.log)
    assert time.monotonic() - started < float(qs.env["TRADING_OTEL_SHUTDOWN_TIMEOUT"]) + 5
    # Pushed metrics leave every 60 s by default, and at the latest on shutdown: now.
    assert_arrived(recorder, qs.env["OTEL_SERVICE_NAME"], run)
    assert "Traceback" not in served.log.read_text(), tail(served.log)


def test_the_configuration_doc_example_runs(recorder: CollectorServer, serve: Any) -> None:
    text = section(REPO / "docs" / "configuration.md", "## Using it in a service")
    blocks = code_blocks(text)
    if not blocks or blocks[0][0] != "python":
        pytest.fail("docs/configuration.md 'Using it in a service' no longer opens with code")
    pull_port = free_port()
    run = f"config-doc-{pull_port}"
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": recorder.otlp_http_url,
        "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={run}",
        "TRADING_OTEL_SHUTDOWN_TIMEOUT": "3",
    }
    served = serve(blocks[0][1], ["uvicorn", "app:app"], env, pull_port)
    assert httpx.get(served.url + "/openapi.json", timeout=5).status_code == 200
    assert served.stop() in (0, -signal.SIGTERM), tail(served.log)

    def spans() -> list[dict[str, Any]]:
        return [
            (res, s)
            for res, s in payloads.spans_in(recorder.telemetry_dir / "traces.jsonl")
            if payloads.attrs(res).get("service.instance.id") == run
        ]

    res, span = wait_until(spans, 20, "the server span of the configuration doc's app")[0]
    assert payloads.attrs(res)["service.name"] == "execution-gateway"
    assert span["name"] == "GET /openapi.json"
