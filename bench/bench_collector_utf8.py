"""Collector CPU for one span load, with and without ``transform/utf8``, side by side.

``python -m bench.bench_collector_utf8 [--requests N] [--rounds R]``

Starts the local role (common.yaml + local.yaml) of ``bin/otelcol-trading`` twice per
round: as shipped, and with an overlay whose pipelines leave ``transform/utf8`` out. Each
gets the same N OTLP/HTTP requests of 200 valid spans with 12 string attributes (the
common case: nothing to repair, every value is scanned). Prints the collector process's
CPU seconds (user + system, from /proc) per run and the ratio of the medians. Figures are
only comparable within one run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from bench.common import cpu_seconds
from trading_otel_tools.collector.config import load
from trading_otel_tools.servers.collector import CollectorServer, role_files

PROCESSOR = "transform/utf8"
SPANS, ATTRIBUTES = 200, 12


def _request() -> bytes:
    def kv(key: str, value: str) -> KeyValue:
        return KeyValue(key=key, value=AnyValue(string_value=value))

    now = time.time_ns()
    spans = [
        Span(
            trace_id=(i + 1).to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"),
            name=f"POST /api/v1/orders {i}", start_time_unix_nano=now - 1_000_000,
            end_time_unix_nano=now,
            attributes=[kv(f"attr.{j}", f"value {j} of span {i}, text") for j in range(ATTRIBUTES)],
        )
        for i in range(SPANS)
    ]  # fmt: skip
    resource = Resource(attributes=[kv("service.name", "bench")])
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )
    raw: bytes = request.SerializeToString()
    return raw


def _without_overlay(directory: Path) -> Path:
    """An overlay that lists every local pipeline's processors minus transform/utf8."""
    pipelines = load(role_files("local"), {}).get("service", "pipelines")
    lists = {
        name: {"processors": [p for p in body["processors"] if p != PROCESSOR]}
        for name, body in pipelines.items()
        if PROCESSOR in body["processors"]
    }
    path = directory / "without-utf8.yaml"
    path.write_text(yaml.safe_dump({"service": {"pipelines": lists}}))
    return path


def _run(root: Path, configs: list[Path], body: bytes, requests: int) -> float:
    server = CollectorServer(root=root, configs=configs, name="bench",
                             env={"TRADING_OTEL_HOST_METRICS_INTERVAL": "600s"})  # fmt: skip
    server.start()
    try:
        assert server.process is not None and server.process.pid is not None
        pid = server.process.pid
        time.sleep(1.0)
        before = cpu_seconds(pid)
        headers = {"Content-Type": "application/x-protobuf"}
        with httpx.Client(timeout=30) as client:
            for _ in range(requests):
                url = server.otlp_http_url + "/v1/traces"
                client.post(url, content=body, headers=headers).raise_for_status()
        time.sleep(2.5)  # the batch and the file flush
        return cpu_seconds(pid) - before
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    body = _request()
    cpu: dict[str, list[float]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory(prefix="bench-utf8-") as tmp:
        root = Path(tmp)
        shipped = role_files("local")
        without = [*shipped, _without_overlay(root)]
        for r in range(args.rounds):
            cpu["without"].append(_run(root / f"without-{r}", without, body, args.requests))
            cpu["with"].append(_run(root / f"with-{r}", shipped, body, args.requests))
    spans = args.requests * SPANS
    print(f"local role, {spans} spans x {ATTRIBUTES} attributes, collector CPU seconds:")
    for name, runs in cpu.items():
        per_span = statistics.median(runs) / spans * 1e6
        print(f"  {name:>7} {PROCESSOR}: {' '.join(f'{x:.2f}' for x in runs)}"
              f"  (median {statistics.median(runs):.2f} s, {per_span:.0f} us/span)")  # fmt: skip
    ratio = statistics.median(cpu["with"]) / statistics.median(cpu["without"])
    print(f"  ratio with/without (medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
