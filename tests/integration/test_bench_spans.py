"""The per-span bench's case runner: every case makes its spans and the sink receives them.

Correctness only (counts, figures present); the timings themselves are never asserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import spans
from trading_otel_tools.procs import ManagedProcess, free_port, tcp_ok

pytestmark = pytest.mark.integration
N, WARMUP = 300, 50


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("bench-spans")
    grpc_port, http_port = free_port(), free_port()
    counts = root / "counts.json"
    proc = ManagedProcess(
        "otlp-sink",
        [spans.PY, "-m", "bench.sink", "--grpc-port", str(grpc_port),
         "--http-port", str(http_port), "--counts", str(counts)],
        root / "sink.log", ready=tcp_ok(http_port), cwd=spans.ROOT, ports=(grpc_port, http_port),
    ).start(30)  # fmt: skip
    try:
        yield f"http://127.0.0.1:{http_port}", counts
    finally:
        proc.stop()


@pytest.mark.parametrize("case", ["ours", "ours-sdk", "stock", "fastotel", "ours-fastotel"])
def test_case_exports_every_span(case: str, sink: tuple[str, Path], tmp_path: Path) -> None:
    endpoint, counts = sink
    figures, received, error = spans.measure(
        case, endpoint, counts, N, WARMUP, tmp_path / f"{case}.log"
    )
    assert error is None
    assert figures is not None and figures["req_us"] > 0 and figures["total_us"] > 0
    assert received == N + WARMUP


def test_floor_exports_nothing(sink: tuple[str, Path], tmp_path: Path) -> None:
    endpoint, counts = sink
    figures, received, error = spans.measure(
        "floor", endpoint, counts, N, WARMUP, tmp_path / "f.log"
    )
    assert error is None and figures is not None
    assert received == 0


def test_a_failing_case_is_reported_not_raised(sink: tuple[str, Path], tmp_path: Path) -> None:
    endpoint, counts = sink
    figures, _, error = spans.measure(
        "no-such-case", endpoint, counts, N, WARMUP, tmp_path / "x.log"
    )
    assert figures is None and error is not None and "failed" in error
