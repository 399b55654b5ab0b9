"""Risk and limit settings fail closed: the real service process refuses a bad value at
startup (one message naming the variable and the value, a non-zero exit, the port never
served), and starts with good ones, which it then applies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.common.config import EX_CONFIG
from tests.fixtures.lib import OFFLINE, REPO
from tests.fixtures.services import RunningBroker
from trading_otel_tools.procs import ManagedProcess, free_port, http_probe
from trading_otel_tools.servers.postgres import PostgresServer
from trading_otel_tools.servers.redis import RedisServer

pytestmark = pytest.mark.integration

#: (service, variable, value): every fail-closed setting with a value a person might type.
BAD = [
    ("execution-gateway", "TRADING_OTEL_MAX_POSITION", "500 shares"),
    ("execution-gateway", "TRADING_OTEL_DAILY_LOSS_LIMIT_USD", "$25,000"),
    ("execution-gateway", "TRADING_OTEL_MAX_EXPOSURE_USD", "nan"),
    ("execution-gateway", "TRADING_OTEL_BREAKER_ERRORS", "-3"),
    ("execution-gateway", "TRADING_OTEL_BROKER_TIMEOUT", "0"),
    ("execution-gateway", "TRADING_OTEL_STALE_AFTER", "inf"),
    ("execution-gateway", "TRADING_OTEL_MAX_BODY_BYTES", "16 KiB"),
    ("execution-gateway", "TRADING_OTEL_MAX_POSITION", "\uff11\uff10\uff10\uff10"),
    ("execution-gateway", "TRADING_OTEL_API_KEYS", "short"),
    ("orchestrator", "TRADING_OTEL_ORCHESTRATOR_INTERVAL", "off"),
    ("orchestrator", "TRADING_OTEL_ORCHESTRATOR_ORDER_QTY", "10 lots"),
    ("broker-simulator", "TRADING_OTEL_MAX_BODY_BYTES", "0"),
]
EXIT_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def base_env(
    postgres_server: PostgresServer, redis_server: RedisServer, broker: RunningBroker
) -> dict[str, str]:
    """Real dependencies: without the refusal, a bad limit would have started and served."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        **OFFLINE,
        "TRADING_OTEL_PG_DSN": postgres_server.dsn,
        "TRADING_OTEL_REDIS_URL": redis_server.url,
        "TRADING_OTEL_BROKER_URL": broker.url,
        "TRADING_OTEL_ORCHESTRATOR_INTERVAL": "0",
    }


def _served(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.05)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(("service", "var", "raw"), BAD)
def test_a_bad_risk_value_refuses_to_start(
    base_env: dict[str, str], service: str, var: str, raw: str
) -> None:
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services", service, "--port", str(port)],
        env=base_env | {var: raw},
        cwd=REPO,
        text=True,
        encoding="utf-8",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    served = False
    try:
        while proc.poll() is None and time.monotonic() - started < EXIT_WITHIN_S:
            served = served or _served(port)
            time.sleep(0.02)
        assert proc.poll() is not None, f"{service} still running {EXIT_WITHIN_S}s after {var}"
        stdout, stderr = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert not served and not _served(port)
    assert proc.returncode == EX_CONFIG, stderr
    # One message, no traceback: the refusal, the variable and (except a key) the value.
    assert stderr.startswith(f"{service}: refusing to start: invalid risk or limit setting")
    assert "Traceback" not in stderr and len(stderr.splitlines()) <= 2, stderr
    if var == "TRADING_OTEL_API_KEYS":
        assert f"{var}: key #1 is shorter than 16 characters" in stderr
    else:
        assert f"{var}={raw!r}: expected " in stderr
    assert stdout == ""


@pytest.fixture
def gateway_with_limits(base_env: dict[str, str], server_root: Path) -> Iterator[int]:
    """The gateway with good (non-default) limits and a pull endpoint; yields that port."""
    port, metrics_port = free_port(), free_port()
    env = base_env | {
        "TRADING_OTEL_MAX_POSITION": " 500 ",
        "TRADING_OTEL_DAILY_LOSS_LIMIT_USD": "25000.5",
        "TRADING_OTEL_MAX_EXPOSURE_USD": "1e6",
        "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
    }
    gateway = ManagedProcess(
        name="gateway-good-limits",
        argv=[sys.executable, "-m", "services", "execution-gateway", "--port", str(port)],
        log_path=server_root / "gateway-good-limits.log",
        ready=http_probe(f"http://127.0.0.1:{port}/ready"),
        env=env,
        ports=(port,),
    )
    gateway.start(30)
    try:
        yield metrics_port
    finally:
        gateway.stop(timeout=10, sig=signal.SIGTERM)


def test_good_limits_start_and_are_the_ones_applied(gateway_with_limits: int) -> None:
    text = httpx.get(f"http://127.0.0.1:{gateway_with_limits}/metrics", timeout=5).text
    limits = {
        line.split('limit="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("trading_risk_limit{")
    }
    assert limits == {
        "position_quantity": 500.0,
        "daily_loss_usd": 25000.5,
        "exposure_usd": 1e6,
    }
