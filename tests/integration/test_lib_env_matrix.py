"""Every bad value of every variable: the service starts, telemetry flows, one warning.

The table is :mod:`tests.fixtures.env_matrix`. Each case runs a fresh interpreter that
imports ``otel``, configures it and emits a span, a metric point and a log record to a
real OTLP/HTTP sink in this process, which decodes them with ``opentelemetry.proto``.
A case passes when the child exits 0, all three signals carrying the case's marker
arrive, and exactly the expected number of output lines (stderr and stdout) name the
variable: one for a bad value, none for an empty or whitespace-only one.

Two modes: ``configure`` (``python child.py`` calling ``otel.configure()``) and
``instrument`` (``opentelemetry-instrument python child.py``, configured by our
distro). ``MATRIX_OTEL_ROOT=/path/to/checkout`` runs the child against another
checkout of ``otel`` (how the failures of the code before the guard were recorded).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.fixtures import env_matrix
from tests.fixtures.lib import BIN, REPO, OtlpHttpListener

pytestmark = pytest.mark.integration

OTEL_ROOT = Path(os.environ.get("MATRIX_OTEL_ROOT", str(REPO)))
WORKERS = 3
CASE_TIMEOUT_S = 60

CHILD = r"""
import logging, os, sys
marker = os.environ["MATRIX_MARKER"]
import otel
from otel._internal import bootstrap
preconfigured = bootstrap.current() is not None
otel.configure(service_name="matrix")
from opentelemetry import metrics, trace
with trace.get_tracer("matrix").start_as_current_span("span-" + marker):
    pass
metrics.get_meter("matrix").create_counter("matrix.cases").add(1, {"marker": marker})
logging.getLogger("matrix").warning("log-" + marker)
otel.shutdown()
print("MATRIX-DONE preconfigured=%s" % preconfigured)
"""


class Sink:
    """A real OTLP/HTTP receiver: which markers arrived, per signal."""

    def __init__(self) -> None:
        self.seen: dict[str, set[str]] = defaultdict(set)
        self.lock = threading.Lock()

        def accept(path: str, body: bytes) -> bool:
            found = self.decode(path, body)
            if found is None:
                return False
            with self.lock:
                for signal, marker in found:
                    self.seen[signal].add(marker)
            return True

        self.listener = OtlpHttpListener(accept)
        self.port = self.listener.port

    @property
    def url(self) -> str:
        return self.listener.url

    @staticmethod
    def decode(path: str, body: bytes) -> list[tuple[str, str]] | None:
        found: list[tuple[str, str]] = []
        if path == "/v1/traces":
            traces = ExportTraceServiceRequest.FromString(body)
            for rs in traces.resource_spans:
                for ss in rs.scope_spans:
                    found += [("traces", s.name[5:]) for s in ss.spans if s.name[:5] == "span-"]
        elif path == "/v1/metrics":
            metrics = ExportMetricsServiceRequest.FromString(body)
            for rm in metrics.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name != "matrix.cases":
                            continue
                        for point in m.sum.data_points:
                            found += [
                                ("metrics", a.value.string_value)
                                for a in point.attributes
                                if a.key == "marker"
                            ]
        elif path == "/v1/logs":
            logs = ExportLogsServiceRequest.FromString(body)
            for rl in logs.resource_logs:
                for sl in rl.scope_logs:
                    for record in sl.log_records:
                        text = record.body.string_value
                        if text.startswith("log-"):
                            found.append(("logs", text[4:]))
        else:
            return None
        return found

    def stop(self) -> None:
        self.listener.stop()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    s = Sink()
    try:
        yield s
    finally:
        s.stop()


def base_env(sink: Sink, case: env_matrix.Case, marker: str, mode: str) -> dict[str, str]:
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "PYTHONPATH": str(OTEL_ROOT),
        "MATRIX_MARKER": marker,
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
        "OTEL_SERVICE_NAME": "matrix",
        "TRADING_OTEL_SHUTDOWN_TIMEOUT": "10",
        "TRADING_OTEL_LOG_FORMAT": "json",
    }
    if mode == "instrument":
        env["OTEL_PYTHON_DISTRO"] = "trading_otel"
        env["OTEL_PYTHON_CONFIGURATOR"] = "trading_otel"
    if case.variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        # The generic variable is the bad one: route each signal by its own variable.
        for signal in env_matrix.SIGNALS:
            env[f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"] = f"{sink.url}/v1/{signal.lower()}"
    env.update(env_matrix.NEEDS.get(case.variable, {}))
    env[case.variable] = case.value
    return env


#: Informational lines that name a variable without being a warning about its value.
_BENIGN = re.compile(r"Configuration of \w+ not loaded because \w+ is set by")


def mentions(output: str, variable: str) -> list[str]:
    """Output lines naming ``variable`` (as a whole name) that are not informational."""
    pattern = re.compile(rf"(?<![A-Z0-9_]){re.escape(variable)}(?![A-Z0-9_])")
    return [
        line
        for line in output.splitlines()
        if pattern.search(line) and not _BENIGN.search(line) and "MATRIX-DONE" not in line
    ]


def run_case(sink: Sink, case: env_matrix.Case, mode: str, child: Path) -> str | None:
    """None when the case passes, else what went wrong."""
    marker = f"{mode[0]}{abs(hash(case.id)) % 10**10}"
    argv = [str(BIN / "python"), str(child)]
    if mode == "instrument":
        argv = [str(BIN / "opentelemetry-instrument"), "python", str(child)]
    try:
        proc = subprocess.run(
            argv,
            env=base_env(sink, case, marker, mode),
            capture_output=True,
            text=True,
            timeout=CASE_TIMEOUT_S,
            cwd="/tmp",
        )
    except subprocess.TimeoutExpired:
        return "timed out"
    output = proc.stderr + proc.stdout
    if proc.returncode != 0 or "MATRIX-DONE" not in proc.stdout:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        return f"crash: exit {proc.returncode}: {tail[0][:160]}"
    problems = []
    with sink.lock:
        missing = [s for s in ("traces", "metrics", "logs") if marker not in sink.seen[s]]
    if missing:
        problems.append(f"telemetry off: no {'/'.join(missing)}")
    lines = mentions(output, case.variable)
    if len(lines) != case.expected_warnings:
        kind = "missing" if len(lines) < case.expected_warnings else "duplicate"
        shown = " | ".join(line.strip()[:140] for line in lines[:3])
        problems.append(
            f"{kind} warning: {len(lines)} lines name it, expected {case.expected_warnings}"
            + (f" ({shown})" if shown else "")
        )
    return "; ".join(problems) or None


def test_table_covers_every_variable() -> None:
    """A variable added to the SDK, the instrumentation or Settings fails here first."""
    need = env_matrix.installed_variables() | env_matrix.settings_variables()
    missing = sorted(need - set(env_matrix.VARIABLES))
    assert not missing, f"variables with no row in tests/fixtures/env_matrix.py: {missing}"
    assert not env_matrix.check_table()
    assert set(env_matrix.VARIABLES.values()) <= set(env_matrix.KINDS)


# About 4 minutes per mode on 2 idle cores; the suite's 600 s per-test limit is too tight
# when the machine is shared.
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("mode", ["configure", "instrument"])
def test_bad_values_never_break_telemetry(sink: Sink, mode: str, tmp_path: Path) -> None:
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    cases = env_matrix.cases()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(lambda c: run_case(sink, c, mode, child), cases))
    failures = [f"{c.id}={c.value!r}: {r}" for c, r in zip(cases, results, strict=True) if r]
    elapsed = time.monotonic() - started
    summary = f"{mode}: {len(cases)} cases, {len(failures)} failed, {elapsed:.0f}s"
    print(summary, *failures, sep="\n", file=sys.stderr)
    assert not failures, summary + "\n" + "\n".join(failures)
