"""The agent's persistent queue: a gateway outage, and an agent restart, lose nothing.

Chain: test load -> agent (common+agent) -> gateway (common+gateway, 100 % sampling)
-> recorder (Tempo/Loki stand-in). Spans and logs are counted by id at the recorder.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.fixtures import collector_payloads as p
from tests.fixtures.collector import (
    RECORDER_CONFIG,
    TOKEN,
    CollectorFactory,
    recorder_env,
    wait_until,
)
from trading_otel_tools.servers.collector import CollectorServer

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0
Chain = tuple[CollectorServer, CollectorServer, CollectorServer]


@pytest.fixture(scope="module")
def chain(collector_factory: CollectorFactory) -> Chain:
    recorder = collector_factory("recorder", [RECORDER_CONFIG])
    gateway = collector_factory(
        "gateway",
        "gateway",
        env=recorder_env(recorder) | {"TRADING_OTEL_BASELINE_SAMPLE_PERCENT": "100"},
    )
    agent = collector_factory(
        "agent",
        "agent",
        env={
            "TRADING_OTEL_GATEWAY_ENDPOINT": gateway.otlp_http_url,
            "TRADING_OTEL_GATEWAY_TOKEN": TOKEN,
            "TRADING_OTEL_GATEWAY_RETRY_MAX_INTERVAL": "1s",
            "TRADING_OTEL_COLLECTOR_BATCH_TIMEOUT": "200ms",
        },
    )
    return recorder, gateway, agent


class Load:
    """Sends ``per_round`` order traces and logs every ``interval`` seconds, noting when."""

    def __init__(self, url: str, prefix: str, per_round: int = 5, interval: float = 0.05) -> None:
        self.url, self.prefix, self.per_round, self.interval = url, prefix, per_round, interval
        self.sent: list[tuple[float, str]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                labels = [f"{self.prefix}-{n + i}" for i in range(self.per_round)]
                n += self.per_round
                spans = [s for lb in labels for s in p.order_spans(lb, "fast", secret=True)]
                try:
                    p.post(self.url, p.traces_request(spans), client=client)
                    logs = p.logs_request(p.log_record(lb, secret=True) for lb in labels)
                    p.post(self.url, logs, client=client)
                except Exception as exc:  # kept and asserted on: the agent must never refuse
                    self.errors.append(exc)
                now = time.monotonic()
                self.sent.extend((now, lb) for lb in labels)
                self._stop.wait(self.interval)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def between(self, start: float, end: float) -> set[str]:
        return {label for t, label in self.sent if start <= t <= end}


def arrived(recorder: CollectorServer) -> tuple[set[str], set[str]]:
    """Trace ids (hex) and log labels the recorder has written so far."""
    traces = {s["traceId"] for _, s in p.spans_in(recorder.telemetry_dir / "traces.jsonl")}
    logs = {
        p.attrs(rec)["log.label"] for _, rec in p.logs_in(recorder.telemetry_dir / "logs.jsonl")
    }
    return traces, logs


def report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n[collector persistence] {text}")


def test_gateway_outage_loses_nothing(chain: Chain, capsys: pytest.CaptureFixture[str]) -> None:
    recorder, gateway, agent = chain
    with Load(agent.otlp_http_url, "outage") as load:
        time.sleep(2)
        gateway.stop()
        down = time.monotonic()
        time.sleep(OUTAGE_S)
        gateway.start()
        up = time.monotonic()
        time.sleep(2)
    assert load.errors == []
    during = load.between(down, up)
    everything = {label for _, label in load.sent}
    assert len(during) > 500

    def all_during_arrived() -> tuple[set[str], set[str]] | None:
        traces, logs = arrived(recorder)
        want = {p.trace_id(label).hex() for label in during}
        return (traces, logs) if want <= traces and during <= logs else None

    start = time.monotonic()
    traces, logs = wait_until(all_during_arrived, 60, "every span and log sent during the outage")
    drained = time.monotonic() - start
    total_traces = len({p.trace_id(label).hex() for label in everything} & traces)
    report(
        capsys,
        f"outage {OUTAGE_S:.0f}s: {len(during)} traces+logs sent during it, all arrived "
        f"{drained:.1f}s after the gateway returned; overall {total_traces}/{len(everything)} "
        f"traces and {len(everything & logs)}/{len(everything)} logs",
    )
    for secret in p.SECRETS:
        assert secret not in (recorder.telemetry_dir / "traces.jsonl").read_text()


def test_agent_restart_keeps_its_queue(chain: Chain, capsys: pytest.CaptureFixture[str]) -> None:
    recorder, gateway, agent = chain
    gateway.stop()
    labels = [f"restart-{i}" for i in range(100)]
    for chunk in range(0, len(labels), 10):
        batch = labels[chunk : chunk + 10]
        spans = [s for label in batch for s in p.order_spans(label, "fast")]
        p.post(agent.otlp_http_url, p.traces_request(spans))
        p.post(agent.otlp_http_url, p.logs_request(p.log_record(label) for label in batch))
    time.sleep(2)  # past the batch timeout: everything is in the persistent queue
    queued = sum(f.stat().st_size for f in agent.queue_dir.rglob("*") if f.is_file())
    assert queued > 0
    agent.stop()
    agent.start()
    gateway.start()
    want = {p.trace_id(label).hex() for label in labels}

    def settled() -> tuple[set[str], set[str]] | None:
        traces, logs = arrived(recorder)
        return (traces, logs) if want <= traces and set(labels) <= logs else None

    try:
        traces, logs = wait_until(settled, 30, "the queued data after the agent restart")
    finally:
        traces, logs = arrived(recorder)
        report(
            capsys,
            f"agent restarted with {queued} bytes queued on disk: {len(want & traces)}/100 "
            f"traces and {len(set(labels) & logs)}/100 logs survived",
        )
