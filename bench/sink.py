"""A local OTLP sink (gRPC and HTTP/protobuf) that counts what it receives and keeps nothing.

It runs in its own process, so its CPU is not charged to the benchmarked app, while the
app still pays the real cost of its exporters (serialisation, compression, transport).
After every export it rewrites a small JSON file with the running counts, which the
benchmark reads to confirm that each setup really exported spans, metrics and logs.

    python -m bench.sink --grpc-port 4317 --http-port 4318 --counts counts.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import signal
import threading
import zlib
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc


class Counts:
    """Running totals of received spans, metric data points and log records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values = {"spans": 0, "metric_points": 0, "logs": 0, "requests": 0}
        self._lock = threading.Lock()
        self._write()

    def add(self, kind: str, n: int) -> None:
        with self._lock:
            self.values[kind] += n
            self.values["requests"] += 1
            self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.values))
        tmp.replace(self.path)


def _spans(req: Any) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


def _points(req: Any) -> int:
    total = 0
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                total += len(getattr(m, kind).data_points) if kind else 0
    return total


def _logs(req: Any) -> int:
    return sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)


def _grpc_server(port: int, counts: Counts) -> grpc.Server:
    class Trace(trace_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            counts.add("spans", _spans(request))
            return trace_pb.ExportTraceServiceResponse()

    class Metrics(metrics_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            counts.add("metric_points", _points(request))
            return metrics_pb.ExportMetricsServiceResponse()

    class Logs(logs_grpc.LogsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            counts.add("logs", _logs(request))
            return logs_pb.ExportLogsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    # The generated registration helpers are untyped.
    trace_grpc.add_TraceServiceServicer_to_server(Trace(), server)  # type: ignore[no-untyped-call]
    metrics_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)  # type: ignore[no-untyped-call]
    logs_grpc.add_LogsServiceServicer_to_server(Logs(), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"127.0.0.1:{port}")
    return server


_HTTP_ROUTES: dict[str, tuple[Any, Any, str]] = {
    "/v1/traces": (trace_pb.ExportTraceServiceRequest, _spans, "spans"),
    "/v1/metrics": (metrics_pb.ExportMetricsServiceRequest, _points, "metric_points"),
    "/v1/logs": (logs_pb.ExportLogsServiceRequest, _logs, "logs"),
}


def _http_server(port: int, counts: Counts) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as a collector does: a new connection per export would charge every
        # exporter a TCP and HTTP setup that real deployments do not pay.
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            route = _HTTP_ROUTES.get(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if route is None:
                self.send_error(404)
                return
            encoding = self.headers.get("Content-Encoding")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            message, count, kind = route
            counts.add(kind, count(message.FromString(body)))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--counts", type=Path, required=True)
    args = parser.parse_args()
    counts = Counts(args.counts)
    grpc_server = _grpc_server(args.grpc_port, counts)
    grpc_server.start()
    http_server = _http_server(args.http_port, counts)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    stop.wait()
    http_server.shutdown()
    grpc_server.stop(1)


if __name__ == "__main__":
    main()
