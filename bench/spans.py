"""What one span costs: ours, the stock SDK, fastotel, and a floor.

``python -m bench.spans [--n N] [--rounds R] [--json FILE]``

Each case makes N spans shaped like an HTTP server span: ``start_as_current_span`` with
7 attributes, then ``http.route`` and the status code set inside (9 in all), then the
span ends. Spans are exported over OTLP/HTTP to a local sink (``bench.sink``) in another
process at ``nice 19``, which counts them. Cases:

- ``ours``: the providers ``otel._internal.bootstrap.build`` makes from the environment,
  with ``TRADING_OTEL_LEAN_SPANS`` unset (the library's default path);
- ``ours-sdk``: the same with ``TRADING_OTEL_LEAN_SPANS=false``;
- ``stock``: the SDK's ``TracerProvider``, ``BatchSpanProcessor`` and the stock HTTP
  ``OTLPSpanExporter``;
- ``fastotel``: the SDK's ``TracerProvider`` with fastotel's Rust ``OTLPSpanProcessor``
  (batching, encoding and sending off the GIL);
- ``ours-fastotel``: our default spans (``build()`` with ``OTEL_TRACES_EXPORTER=none``)
  handed to fastotel's processor instead of ours: what an export path off the GIL would
  add to our spans;
- ``floor``: no OpenTelemetry span at all: a slotted object with the same 9 attributes,
  random ids and timestamps, made current with a context attach/detach. Nothing exported.

Every case runs in a fresh interpreter, R times; the round with the least process CPU
counts. ``req`` is the CPU
time of the thread that makes the spans (``time.thread_time_ns``); ``export`` is the whole
process's CPU (``time.process_time_ns``, export threads and a final ``force_flush``
included) minus ``req``. The batch queue is sized to hold every span
(``OTEL_BSP_MAX_QUEUE_SIZE``), so no case drops spans to save work; the ``spans`` column
is what the sink received. Figures are comparable within one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import PY, ROOT, Sink, clean_env

CASES = {
    "ours": "(1) trading-otel (default)",
    "ours-sdk": "(2) trading-otel, LEAN_SPANS=false",
    "stock": "(3) stock SDK + BatchSpanProcessor",
    "fastotel": "(4) fastotel 0.9.1 OTLPSpanProcessor",
    "floor": "(5) floor: slotted object + context",
    "ours-fastotel": "(6) trading-otel spans + fastotel export",
}
#: The attributes an HTTP server span is started with, then the two set while it runs.
START_ATTRIBUTES: dict[str, str | int] = {
    "http.request.method": "POST",
    "url.scheme": "http",
    "url.path": "/api/v1/orders",
    "network.protocol.version": "1.1",
    "server.address": "127.0.0.1",
    "server.port": 8002,
    "client.address": "127.0.0.1",
}
ROUTE, STATUS = "/api/v1/orders", 201


# --------------------------------------------------------------------------- worker side


def _providers(case: str) -> tuple[Any, Callable[[], None]]:
    """(tracer provider, shutdown) for one case, from the process environment."""
    if case in ("ours", "ours-sdk", "ours-fastotel"):
        from otel._internal.bootstrap import build
        from otel._internal.settings import Settings

        telemetry = build(Settings.from_env(os.environ))
        provider = telemetry.tracer_provider
        if case == "ours-fastotel":
            from fastotel import OTLPSpanProcessor  # pre-alpha: see the fastotel case

            provider.add_span_processor(OTLPSpanProcessor())

        def stop() -> None:
            provider.shutdown()
            telemetry.meter_provider.shutdown()

        return provider, stop
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(shutdown_on_exit=False)
    if case == "stock":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif case == "fastotel":
        from fastotel import OTLPSpanProcessor  # pre-alpha; a failure is reported, not raised

        provider.add_span_processor(OTLPSpanProcessor())
    else:
        raise ValueError(f"unknown case {case!r}")
    return provider, provider.shutdown


def _otel_spans(case: str, n: int, warmup: int) -> tuple[int, int, bool]:
    from opentelemetry.trace import SpanKind

    provider, stop = _providers(case)
    tracer = provider.get_tracer("bench.spans")

    def run(count: int) -> None:
        for _ in range(count):
            with tracer.start_as_current_span(
                "POST /api/v1/orders", kind=SpanKind.SERVER, attributes=START_ATTRIBUTES
            ) as span:
                span.set_attribute("http.route", ROUTE)
                span.set_attribute("http.response.status_code", STATUS)

    run(warmup)
    provider.force_flush()
    t0, p0 = time.thread_time_ns(), time.process_time_ns()
    run(n)
    t1 = time.thread_time_ns()
    provider.force_flush()
    p1 = time.process_time_ns()
    stop()
    return t1 - t0, p1 - p0, type(provider).__name__ == "LeanTracerProvider"


class _FloorSpan:
    __slots__ = ("attributes", "end", "name", "span_id", "start", "trace_id")

    def __init__(self, name: str, attributes: dict[str, str | int]) -> None:
        self.name = name
        self.trace_id = random.getrandbits(128)
        self.span_id = random.getrandbits(64)
        self.attributes = dict(attributes)
        self.start = time.time_ns()
        self.end = 0


def _floor(n: int, warmup: int) -> tuple[int, int]:
    from opentelemetry import context

    key = context.create_key("bench-floor-span")

    def run(count: int) -> None:
        for _ in range(count):
            span = _FloorSpan("POST /api/v1/orders", START_ATTRIBUTES)
            token = context.attach(context.set_value(key, span))
            span.attributes["http.route"] = ROUTE
            span.attributes["http.response.status_code"] = STATUS
            context.detach(token)
            span.end = time.time_ns()

    run(warmup)
    t0, p0 = time.thread_time_ns(), time.process_time_ns()
    run(n)
    t1 = time.thread_time_ns()
    return t1 - t0, time.process_time_ns() - p0


def run_case(case: str, n: int, warmup: int) -> dict[str, float]:
    """Make ``warmup`` then ``n`` measured spans in this process; µs per span.

    ``lean_spans`` is 1 when the spans were our lean ones (the provider falls back to the
    SDK's with only a warning, so a row could otherwise measure other spans unseen).
    """
    if case == "floor":
        thread_ns, process_ns, lean = (*_floor(n, warmup), False)
    else:
        thread_ns, process_ns, lean = _otel_spans(case, n, warmup)
    return {"req_us": thread_ns / n / 1000, "total_us": process_ns / n / 1000,
            "lean_spans": float(lean)}  # fmt: skip


# --------------------------------------------------------------------------- runner side


@dataclass
class Result:
    case: str
    req_us: float | None = None
    total_us: float | None = None
    spans: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def export_us(self) -> float | None:
        if self.req_us is None or self.total_us is None or self.case == "floor":
            return None
        return self.total_us - self.req_us


def case_env(case: str, endpoint: str, queue: int) -> dict[str, str]:
    """The environment of one case's process (inherited OTEL_* settings removed)."""
    env = clean_env() | {
        "OTEL_SERVICE_NAME": "bench-spans",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_BSP_MAX_QUEUE_SIZE": str(max(queue, 2048)),  # never below the default
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if case == "ours-sdk":
        env["TRADING_OTEL_LEAN_SPANS"] = "false"
    if case == "ours-fastotel":
        env["OTEL_TRACES_EXPORTER"] = "none"  # fastotel's processor exports instead
    return env


def measure(
    case: str, sink: Sink, n: int, warmup: int, log: Path
) -> tuple[dict[str, float] | None, int, str | None]:
    """Run one case in a fresh interpreter: (figures or None, spans the sink got, error)."""
    before = sink.counts()["spans"]
    out = log.with_suffix(".json")
    argv = [PY, "-m", "bench.spans", "--worker", case, "--n", str(n), "--warmup", str(warmup),
            "--out", str(out)]  # fmt: skip
    with log.open("wb") as fh:
        env = case_env(case, sink.http_endpoint, n + warmup)
        proc = subprocess.run(argv, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                              timeout=300, check=False)  # fmt: skip
    # The sink counts a batch before answering it; fastotel may return from its flush
    # before its last POST has landed.
    time.sleep(0.3)
    received = sink.counts()["spans"] - before
    if proc.returncode != 0 or not out.exists():
        lines = log.read_text(errors="replace").strip().splitlines() or ["no output"]
        return None, received, f"failed (exit {proc.returncode}: {lines[-1]}), see {log}"
    figures: dict[str, float] = json.loads(out.read_text())
    return figures, received, None


def render(results: list[Result], n: int, warmup: int) -> str:
    stock = next((r for r in results if r.case == "stock"), None)
    lines = [
        f"Per span, in µs ({n} measured spans after {warmup} warm-up, best round):",
        "  req: CPU of the thread making the spans (start_as_current_span, 9 attributes, end);",
        "  export: process CPU minus req, incl. a final flush; total: process CPU;",
        "  spans: received by the OTLP/HTTP sink (warm-up included); x stock: total / stock total.",
        "",
        f"{'case':40} {'req':>7} {'export':>7} {'total':>7} {'x stock':>8} {'spans':>7}",
    ]

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    for r in results:
        ratio = (
            f"{r.total_us / stock.total_us:.2f}"
            if r.total_us is not None and stock is not None and stock.total_us
            else "-"
        )
        spans = "-" if r.spans is None else str(r.spans)
        lines.append(
            f"{CASES.get(r.case, r.case):40} {fmt(r.req_us):>7} {fmt(r.export_us):>7} "
            f"{fmt(r.total_us):>7} {ratio:>8} {spans:>7}"
        )
        lines += [f"{'':4}! {note}" for note in r.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.spans",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=5000, help="measured spans per round")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.out.write_text(json.dumps(run_case(args.worker, args.n, args.warmup)))
        return

    root = Path(tempfile.mkdtemp(prefix="bench-spans-"))
    sink = Sink(root)
    results = [Result(c) for c in args.cases.split(",")]
    sink.proc.start(timeout=30)
    try:
        for rnd in range(args.rounds):
            for r in results:
                print(
                    f"spans  {CASES.get(r.case, r.case)} (round {rnd + 1}/{args.rounds})",
                    flush=True,
                )
                log = root / f"{r.case}-{rnd}.log"
                figures, received, error = measure(r.case, sink, args.n, args.warmup, log)
                if error is not None:
                    r.notes.append(error)
                    continue
                assert figures is not None
                if r.case != "floor":
                    r.spans = received if r.spans is None else min(r.spans, received)
                # The least disturbed round, whole: req and export from the same process.
                if r.total_us is None or figures["total_us"] < r.total_us:
                    r.req_us, r.total_us = figures["req_us"], figures["total_us"]
    finally:
        sink.proc.stop()
    print()
    print(render(results, args.n, args.warmup))
    print(f"\nlogs: {root}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
