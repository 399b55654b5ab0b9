"""``bench.freshness`` finds what it times: on a short run on the real local stack, every
order's increment shows in Prometheus and every order's trace, with its root span, is in
the collector's trace file. Correctness only; the delays are bench figures, not asserted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import freshness

pytestmark = pytest.mark.integration


def test_freshness_bench_finds_every_order_in_prometheus_and_on_disk(
    collector_binary: Path,
) -> None:
    result = freshness.run(3, 0.1, idle_s=0.0, settle_s=1.0)
    ids = result.trace_ids
    assert len(ids) == len(set(ids)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) and t.strip("0") for t in ids)
    # Each order was seen after its 201: a count or a span found before it would mean the
    # bench matched an earlier order's (a wrong Prometheus base, a wrong trace id).
    assert min(result.prometheus) > 0, result.prometheus
    assert min(result.root_on_disk) > 0, result.root_on_disk
