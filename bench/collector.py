"""Collector throughput under an outside load generator (telemetrygen), side by side.

``python -m bench.collector [--full] [--rates R,R] [--roles gateway,agent] [--seconds S]
[--env K=V ...] [--config OVERLAY ...]``

For each role and each rate of a ladder, a fresh collector of that role (the shipped
configs) exports to a fresh recording collector (``collector/fixtures/recorder.yaml``,
which writes what it receives to a file). telemetrygen sends 5-span traces at the rate;
beside that load, three small telemetrygen runs send an exact number of traces that the
gateway's tail sampler must keep: ``errors`` (ERROR status), ``rejected``
(``trading.order.outcome=rejected``) and ``slow`` (spans of 300 ms, over the 250 ms
default). Per rate it prints: spans/s accepted and exported (from the collector's own
metrics on its telemetry port), CPU % of one core and max RSS of the collector process
(from /proc), traces the tail sampler dropped too early, and kept/sent for each kind of
must-keep trace, counted by trace id in the recorder's file.

Figures only, never pass/fail. On a shared machine they move with its load: compare
rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import cpu_seconds
from trading_otel_tools.collector import build as building
from trading_otel_tools.collector import telemetrygen
from trading_otel_tools.servers.collector import CollectorServer, role_files

ROOT = Path(__file__).resolve().parents[1]
RECORDER_CONFIG = ROOT / "collector" / "fixtures" / "recorder.yaml"
TOKEN = "bench-token"
SPANS_PER_TRACE = 5
QUICK_LADDER = (2_000, 10_000)
FULL_LADDER = (2_000, 5_000, 10_000, 15_000, 20_000, 30_000)
#: One telemetrygen worker falls short above a few thousand spans/s.
SPANS_PER_WORKER = 1_000
#: Must-keep traces sent beside the load: name -> extra telemetrygen arguments.
MUST_KEEP: dict[str, dict[str, object]] = {
    "errors": {"status_code": "Error"},
    "rejected": {"attributes": {"trading.order.outcome": "rejected"}},
    "slow": {"span_duration": "300ms"},
}
#: Per must-keep kind, traces per second (a small share beside the load).
MUST_KEEP_TRACES_PER_S = 10


@dataclass
class Step:
    role: str
    rate: int
    seconds: float
    accepted: float = 0.0
    refused: float = 0.0
    exported: float = 0.0
    cpu_pct: float = 0.0
    rss_mib: float = 0.0
    dropped_too_early: float = 0.0
    kept: dict[str, tuple[int, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _max_rss_mib(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def scrape(url: str) -> list[tuple[str, str, float]]:
    """(name, labels, value) of every sample at a Prometheus text endpoint."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    out = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            out.append((match.group(1), match.group(2) or "", float(match.group(3))))
    return out


def total(samples: list[tuple[str, str, float]], name: str, label: str = "") -> float:
    """Sum of the samples named ``name`` (or ``name_total``) whose labels contain ``label``."""
    return sum(v for n, lab, v in samples if n in (name, name + "_total") and label in lab)


def traces_by_service(path: Path) -> dict[str, set[str]]:
    """Trace ids per service.name in an OTLP JSON lines file."""
    out: dict[str, set[str]] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        for rs in json.loads(line).get("resourceSpans", []):
            attrs = rs.get("resource", {}).get("attributes", [])
            svc = next((a["value"].get("stringValue", "") for a in attrs
                        if a["key"] == "service.name"), "")  # fmt: skip
            ids = out.setdefault(svc, set())
            for ss in rs.get("scopeSpans", []):
                ids.update(s["traceId"] for s in ss.get("spans", []))
    return out


def _collector(root: Path, name: str, configs: list[Path], env: dict[str, str]) -> CollectorServer:
    return CollectorServer(root=root / name, configs=configs, env=env, name=name,
                           binary=building.binary_path())  # fmt: skip


@contextmanager
def _pair(
    root: Path, role: str, extra_env: dict[str, str], extra_configs: list[Path]
) -> Iterator[CollectorServer]:
    """A recorder, and a collector of ``role`` exporting to it; yields the collector."""
    recorder = _collector(root, "recorder", [RECORDER_CONFIG], {})
    recorder.start()
    env = {
        "TRADING_OTEL_GATEWAY_TOKEN": TOKEN,
        "TRADING_OTEL_TEMPO_ENDPOINT": recorder.otlp_grpc_endpoint,
        "TRADING_OTEL_LOKI_ENDPOINT": recorder.otlp_http_url + "/otlp",
        "TRADING_OTEL_GATEWAY_ENDPOINT": recorder.otlp_http_url,
        "TRADING_OTEL_COLLECTOR_LOG_LEVEL": "warn",
    } | extra_env
    subject = _collector(root, role, [*role_files(role), *extra_configs], env)
    try:
        subject.start()
        subject.recorder = recorder  # type: ignore[attr-defined]
        yield subject
    finally:
        subject.stop()
        recorder.stop()


def run_step(
    root: Path, role: str, rate: int, seconds: float, env: dict[str, str], configs: list[Path]
) -> Step:
    step = Step(role, rate, seconds)
    wait = _duration_s(env.get("TRADING_OTEL_TAIL_DECISION_WAIT", "10s")) if role.startswith(
        "gateway") else 0.0  # fmt: skip
    with _pair(root / f"{role}-{rate}", role, env, configs) as subject:
        recorder: CollectorServer = subject.recorder  # type: ignore[attr-defined]
        pid = subject.process.pid if subject.process else None
        assert pid is not None
        token = TOKEN if role.startswith("gateway") else None
        workers = max(1, math.ceil(rate / SPANS_PER_WORKER))
        argvs = [telemetrygen.traces_argv(
            subject.otlp_grpc_endpoint, rate=rate / workers, workers=workers, seconds=seconds,
            service="load", token=token)]  # fmt: skip
        n = int(MUST_KEEP_TRACES_PER_S * seconds)
        for kind, extra in MUST_KEEP.items():
            argvs.append(telemetrygen.traces_argv(
                subject.otlp_grpc_endpoint, rate=MUST_KEEP_TRACES_PER_S * SPANS_PER_TRACE,
                workers=1, traces=n, service=kind, token=token, **extra))  # type: ignore[arg-type]  # fmt: skip
        before = scrape(subject.telemetry_url)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        logs = [(root / f"{role}-{rate}" / f"telemetrygen-{i}.log").open("wb")
                for i in range(len(argvs))]  # fmt: skip
        procs = [subprocess.Popen(a, stdout=fh, stderr=subprocess.STDOUT)
                 for a, fh in zip(argvs, logs, strict=True)]  # fmt: skip
        try:
            for p in procs:
                p.wait(timeout=seconds * 4 + 60)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            for fh in logs:
                fh.close()
        elapsed = time.monotonic() - t0
        step.cpu_pct = (cpu_seconds(pid) - cpu0) / elapsed * 100
        # Let the sampler decide on the last traces and the exporters flush.
        time.sleep(wait + 4)
        step.rss_mib = _max_rss_mib(pid)
        after = scrape(subject.telemetry_url)

        def delta(name: str, label: str = "") -> float:
            return total(after, name, label) - total(before, name, label)

        step.accepted = delta("otelcol_receiver_accepted_spans") / elapsed
        step.refused = delta("otelcol_receiver_refused_spans") / elapsed
        step.exported = delta("otelcol_exporter_sent_spans", 'exporter="otlp') / elapsed
        step.dropped_too_early = delta(
            "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early"
        )
        bad = [p.returncode for p in procs if p.returncode]
        if bad:
            step.notes.append(f"telemetrygen exited {bad}; logs in {root}")
        kept = traces_by_service(recorder.telemetry_dir / "traces.jsonl")
        step.kept = {kind: (len(kept.get(kind, ())), n) for kind in MUST_KEEP}
    return step


def _duration_s(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(ms|s|m)", text.strip())
    if match is None:
        raise ValueError(f"cannot read duration {text!r}")
    return float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[match.group(2)]


def render(steps: list[Step]) -> str:
    head = (f"{'role':8} {'offered':>8} {'accepted':>9} {'refused':>8} {'exported':>9}"
            f" {'CPU %':>6} {'max RSS':>8} {'dropped':>8}  "
            + "  ".join(f"{k + ' kept':>13}" for k in MUST_KEEP))  # fmt: skip
    lines = [
        "Collector under telemetrygen: spans/s per row (5-span traces), CPU % of one core,",
        "max RSS in MiB, traces dropped too early by the tail sampler, must-keep traces",
        "kept/sent (by trace id at the recorder). Exported is after sampling for the gateway.",
        "",
        head,
    ]
    for s in steps:
        kept = "  ".join(f"{f'{k}/{n}':>13}" for k, n in s.kept.values())
        lines.append(
            f"{s.role:8} {s.rate:8d} {s.accepted:9.0f} {s.refused:8.0f} {s.exported:9.0f}"
            f" {s.cpu_pct:6.0f} {s.rss_mib:8.0f} {s.dropped_too_early:8.0f}  {kept}"
        )
        lines += [f"{'':8} ! {note}" for note in s.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.collector", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--full", action="store_true", help=f"the full ladder {FULL_LADDER}")
    parser.add_argument("--rates", help="comma-separated spans/s (overrides the ladder)")
    parser.add_argument("--roles", default="gateway", help="comma-separated: gateway, agent")
    parser.add_argument("--seconds", type=float, help="load per rate (default 10, full 30)")
    parser.add_argument("--env", action="append", default=[], metavar="K=V",
                        help="extra TRADING_OTEL_* setting for the measured collector")  # fmt: skip
    parser.add_argument("--config", action="append", default=[], type=Path, metavar="FILE",
                        help="overlay after the role files (to measure a change)")  # fmt: skip
    args = parser.parse_args(argv)
    rates = ([int(r) for r in args.rates.split(",")] if args.rates
             else FULL_LADDER if args.full else QUICK_LADDER)  # fmt: skip
    seconds = args.seconds or (30.0 if args.full else 10.0)
    env = dict(item.split("=", 1) for item in args.env)
    building.build()
    telemetrygen.ensure()
    root = Path(tempfile.mkdtemp(prefix="trading-otel-bench-collector-"))
    steps = []
    for role in args.roles.split(","):
        for rate in rates:
            print(f"{role:8} {rate:6d} spans/s for {seconds:g}s ...", flush=True)
            steps.append(run_step(root, role, rate, seconds, env, args.config))
    print()
    print(render(steps))
    print(f"\nlogs: {root}")


if __name__ == "__main__":
    main()
