"""The per-span bench's case runner: every case makes its spans and the sink receives them.

Correctness only (counts, figures present); the timings themselves are never asserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import spans
from bench.common import Sink

pytestmark = pytest.mark.integration
N, WARMUP = 300, 50


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    proc = Sink(tmp_path_factory.mktemp("bench-spans"), nice=False)
    proc.proc.start(30)
    try:
        yield proc
    finally:
        proc.proc.stop()


#: Which cases must run on our lean spans (the rest on the SDK's own).
LEAN = {"ours": True, "ours-sdk": False, "stock": False, "fastotel": False, "ours-fastotel": True}


@pytest.mark.parametrize("case", list(LEAN))
def test_case_exports_every_span(case: str, sink: Sink, tmp_path: Path) -> None:
    figures, received, error = spans.measure(case, sink, N, WARMUP, tmp_path / f"{case}.log")
    assert error is None
    assert figures is not None and figures["req_us"] > 0 and figures["total_us"] > 0
    assert received == N + WARMUP
    assert figures["lean_spans"] == float(LEAN[case]), "the row measured other spans"


def test_floor_exports_nothing(sink: Sink, tmp_path: Path) -> None:
    figures, received, error = spans.measure("floor", sink, N, WARMUP, tmp_path / "f.log")
    assert error is None and figures is not None
    assert received == 0


def test_a_failing_case_is_reported_not_raised(sink: Sink, tmp_path: Path) -> None:
    figures, _, error = spans.measure("no-such-case", sink, N, WARMUP, tmp_path / "x.log")
    assert figures is None and error is not None and "failed" in error
