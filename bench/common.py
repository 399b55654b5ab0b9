"""What the benchmarks share: the OTLP sink process, process CPU, percentiles, a clean env."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from trading_otel_tools.procs import ManagedProcess, free_port, tcp_ok

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


class Sink:
    """The OTLP sink process (``bench.sink``) and its counters; not started yet.

    It runs at the lowest priority: on a 2-core machine its decoding must not take the
    CPU the measured process needs (it still drains every export promptly).
    """

    def __init__(self, root: Path, *, nice: bool = True) -> None:
        self.grpc_port, self.http_port = free_port(), free_port()
        self.counts_path = root / "sink-counts.json"
        argv = [PY, "-m", "bench.sink", "--grpc-port", str(self.grpc_port),
                "--http-port", str(self.http_port), "--counts", str(self.counts_path)]  # fmt: skip
        self.proc = ManagedProcess(
            "otlp-sink", (["nice", "-n", "19"] if nice else []) + argv, root / "sink.log",
            ready=tcp_ok(self.http_port), cwd=ROOT, ports=(self.grpc_port, self.http_port),
        )  # fmt: skip

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def counts(self) -> dict[str, int]:
        """What the sink has received so far: ``spans``, ``logs``, ``metric_points``."""
        data: dict[str, int] = json.loads(self.counts_path.read_text())
        return data


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(data: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of ``data`` (not empty)."""
    s = sorted(data)
    return s[max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))]


def clean_env() -> dict[str, str]:
    """This process's environment without OTEL_* and TRADING_OTEL_* settings.

    Inherited settings would make the measured setups differ from what a table says.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRADING_OTEL_"))}
