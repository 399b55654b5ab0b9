"""The gateway keeps every must-keep trace while its tail sampler is overloaded.

A real gateway (the shipped common.yaml + gateway.yaml) exports to the recorder; an
outside client, telemetrygen, sends a background load of 5-span traces and, beside it, an
exact number of error, rejected and slow traces. The sampler is made small through the
environment (``TRADING_OTEL_TAIL_NUM_TRACES=100``, decision_wait 1 s) so that the load,
about 800 new traces/s, is 8 times what it can hold undecided: the same overflow as
production traffic above the old 50 000 traces / 10 s (5 000 new traces/s), in seconds.

What this proves: with the shipped tail_sampling settings (``block_on_overflow`` and the
decision caches) an overflowing sampler keeps every error, rejected and slow trace whole,
and drops nothing too early. The control run, the same gateway with only
``block_on_overflow: false``, shows that this load really overflows it (it drops traces too
early), and a real Prometheus scraping both shows the TailSamplingDroppedTraces rule's own
expression turn true for the control only. It does not prove a capacity figure: that is
measured by ``bench/collector.py``.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.fixtures.collector import RECORDER_CONFIG, TOKEN, CollectorFactory, recorder_env
from tests.fixtures.prometheus import PrometheusFactory
from trading_otel_tools import home
from trading_otel_tools.collector import telemetrygen
from trading_otel_tools.servers.collector import CollectorServer, role_files
from trading_otel_tools.servers.prometheus import PrometheusServer, wait_for

pytestmark = pytest.mark.integration

SPANS_PER_TRACE = 5
LOAD_WORKERS, LOAD_RATE_PER_WORKER, LOAD_SECONDS = 4, 1000.0, 6.0
MUST_KEEP_TRACES = 40
#: Must-keep kinds (their telemetrygen service name) and what makes the sampler keep them.
MUST_KEEP: dict[str, dict[str, object]] = {
    "errors": {"status_code": "Error"},
    "rejected": {"attributes": {"trading.order.outcome": "rejected"}},
    "slow": {"span_duration": "300ms"},
}
DROPPED = "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early"
ALERT = "TailSamplingDroppedTraces"
ALERTS = home.path("deploy", "prometheus", "rules", "alerts.yml")


@pytest.fixture(scope="module")
def tg_binary() -> Path:
    try:
        return telemetrygen.ensure()
    except telemetrygen.TelemetrygenError as exc:
        pytest.fail(f"cannot install telemetrygen, the outside load generator:\n{exc}", False)


def spans_by_trace(path: Path) -> dict[str, dict[str, int]]:
    """service.name -> trace id -> spans, from the recorder's OTLP JSON lines."""
    out: dict[str, dict[str, int]] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        for rs in json.loads(line).get("resourceSpans", []):
            attrs = rs.get("resource", {}).get("attributes", [])
            service = next(a["value"]["stringValue"] for a in attrs if a["key"] == "service.name")
            traces = out.setdefault(service, {})
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    traces[span["traceId"]] = traces.get(span["traceId"], 0) + 1
    return out


def counter(url: str, name: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    assert values, f"{name} is not on {url}"
    return sum(values)


def overload(gateway: CollectorServer, binary: Path, root: Path) -> None:
    """Background load and the must-keep traces, all at once; waits for telemetrygen."""
    argvs = [
        telemetrygen.traces_argv(
            gateway.otlp_grpc_endpoint, rate=LOAD_RATE_PER_WORKER, workers=LOAD_WORKERS,
            seconds=LOAD_SECONDS, service="load", token=TOKEN, binary=binary,
        )
    ]  # fmt: skip
    for kind, extra in MUST_KEEP.items():
        argvs.append(
            telemetrygen.traces_argv(
                gateway.otlp_grpc_endpoint, rate=MUST_KEEP_TRACES * SPANS_PER_TRACE / 4,
                workers=1, traces=MUST_KEEP_TRACES, service=kind, token=TOKEN, binary=binary,
                **extra,  # type: ignore[arg-type]
            )
        )  # fmt: skip
    logs = [root / f"telemetrygen-{i}.log" for i in range(len(argvs))]
    handles = [log.open("wb") for log in logs]
    procs = [
        subprocess.Popen(a, stdout=fh, stderr=subprocess.STDOUT)
        for a, fh in zip(argvs, handles, strict=True)
    ]
    try:
        for proc in procs:
            proc.wait(timeout=120)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for fh in handles:
            fh.close()
    for proc, log in zip(procs, logs, strict=True):
        assert proc.returncode == 0, f"telemetrygen failed:\n{log.read_text()[-2000:]}"


Pair = tuple[CollectorServer, CollectorServer]
Run = tuple[dict[str, dict[str, int]], float]


def start_pair(factory: CollectorFactory, name: str, extra: list[Path]) -> Pair:
    """A recorder, and a gateway of the shipped configs (plus ``extra``) exporting to it."""
    recorder = factory(f"recorder-{name}", [RECORDER_CONFIG])
    env = recorder_env(recorder) | {"TRADING_OTEL_TAIL_NUM_TRACES": "100"}
    return factory(name, [*role_files("gateway"), *extra], env=env), recorder


def run_overloaded(pair: Pair, binary: Path, root: Path) -> Run:
    """(spans by trace at the recorder, traces dropped too early) for one overloaded run."""
    gateway, recorder = pair
    root.mkdir()
    overload(gateway, binary, root)
    # Decisions come decision_wait (1 s) after a trace's first span, in 1 s ticks; the
    # recorder flushes every 100 ms. Poll until the must-keep counts stop moving.
    path = recorder.telemetry_dir / "traces.jsonl"
    deadline, last = time.monotonic() + 30, -1
    while time.monotonic() < deadline:
        time.sleep(2)
        now = sum(len(spans_by_trace(path).get(kind, {})) for kind in MUST_KEEP)
        if now == last:
            break
        last = now
    kept, dropped = spans_by_trace(path), counter(gateway.telemetry_url, DROPPED)
    print(f"\n{gateway.name}: dropped too early {dropped:.0f}; traces kept: "
          + ", ".join(f"{k} {len(v)}" for k, v in sorted(kept.items())))  # fmt: skip
    return kept, dropped


@dataclass
class Runs:
    shipped: Run
    control: Run
    prometheus: PrometheusServer
    control_instance: str


@pytest.fixture(scope="module")
def runs(
    collector_factory: CollectorFactory,
    prometheus_factory: PrometheusFactory,
    tg_binary: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Runs:
    root = tmp_path_factory.mktemp("tail-load")
    evicting = root / "evicting.yaml"
    evicting.write_text("processors:\n  tail_sampling:\n    block_on_overflow: false\n")
    shipped = start_pair(collector_factory, "gateway", [])
    control = start_pair(collector_factory, "control", [evicting])
    # A real Prometheus scrapes both gateways' own telemetry as the stack does (job
    # otel-collector) from before the load, so increase() sees the counters move.
    instances = [f"127.0.0.1:{pair[0].ports.telemetry}" for pair in (shipped, control)]
    prometheus = prometheus_factory({"otel-collector": instances})
    wait_for(
        lambda: len(prometheus.query(f"{DROPPED} == 0")) == 2, 30, what="both gateways scraped"
    )
    return Runs(
        shipped=run_overloaded(shipped, tg_binary, root / "shipped"),
        control=run_overloaded(control, tg_binary, root / "control"),
        prometheus=prometheus,
        control_instance=instances[1],
    )


def test_the_load_overflows_an_evicting_sampler(runs: Runs) -> None:
    kept, dropped = runs.control
    load = len(kept.get("load", {}))
    assert dropped > 0, f"the load did not overflow 100 traces (load traces kept: {load})"


@pytest.mark.parametrize("kind", list(MUST_KEEP))
def test_every_must_keep_trace_arrives_whole(runs: Runs, kind: str) -> None:
    kept, dropped = runs.shipped
    traces = kept.get(kind, {})
    assert len(traces) == MUST_KEEP_TRACES, f"{kind}: {len(traces)}/{MUST_KEEP_TRACES} traces"
    assert set(traces.values()) == {SPANS_PER_TRACE}, f"{kind}: partial traces {traces}"
    assert dropped == 0


def test_the_baseline_still_samples_the_load(runs: Runs) -> None:
    # Blocking slows intake, it does not turn the sampler into keep-everything.
    kept = runs.shipped[0].get("load", {})
    sent = LOAD_WORKERS * LOAD_RATE_PER_WORKER * LOAD_SECONDS / SPANS_PER_TRACE
    assert 0 < len(kept) < 0.5 * sent


def test_the_alert_expression_turns_true_for_the_evicting_gateway_only(runs: Runs) -> None:
    # The shipped rule's own expression, in a real Prometheus, on the real series.
    rules = yaml.safe_load(ALERTS.read_text())["groups"]
    expr = next(r["expr"] for g in rules for r in g["rules"] if r.get("alert") == ALERT)
    result = wait_for(lambda: runs.prometheus.query(expr), 30, what=f"{ALERT} expression")
    assert {r["metric"]["instance"] for r in result} == {runs.control_instance}
    assert {r["metric"]["job"] for r in result} == {"otel-collector"}
