"""The Tempo and Loki readers over real HTTP, against a local server that replays the
recorded payloads and records what it was asked (not a live Tempo or Loki: see
docs/investigate.md)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from trading_otel_tools.investigate.sources import (
    FileTraceSource,
    LokiLogSource,
    SourceError,
    TempoTraceSource,
)
from trading_otel_tools.procs import free_port

FIXTURES = Path(__file__).parents[1] / "fixtures" / "investigate"
SLOW = "5b8efff798038103d269b633813fc60c"


@dataclass
class Replay:
    url: str
    routes: dict[str, tuple[int, bytes]]
    requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = field(default_factory=list)


@pytest.fixture
def replay() -> Iterator[Replay]:
    state = Replay("", {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            state.requests.append((parts.path, parse_qs(parts.query), dict(self.headers)))
            status, body = state.routes.get(parts.path, (404, b"trace not found"))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_tempo_fetch_by_id_and_not_found(replay: Replay) -> None:
    replay.routes[f"/api/traces/{SLOW}"] = (200, (FIXTURES / "tempo_v2.json").read_bytes())
    with httpx.Client() as client:
        found = TempoTraceSource(replay.url + "/", client).fetch([SLOW, "f" * 32])
    assert list(found) == [SLOW]
    assert len(found[SLOW].spans) == 6
    assert found[SLOW].source == f"Tempo {replay.url}"
    assert [r[0] for r in replay.requests] == [f"/api/traces/{SLOW}", f"/api/traces/{'f' * 32}"]


def test_tempo_server_error_is_reported(replay: Replay) -> None:
    replay.routes[f"/api/traces/{SLOW}"] = (500, b"ingester unavailable")
    with httpx.Client() as client, pytest.raises(SourceError, match="Tempo answered 500"):
        TempoTraceSource(replay.url, client).fetch([SLOW])


def test_loki_query_range_request_and_parse(replay: Replay) -> None:
    replay.routes["/loki/api/v1/query_range"] = (200, (FIXTURES / "loki_categorized.json")
                                                 .read_bytes())  # fmt: skip
    trace = FileTraceSource(FIXTURES).fetch([SLOW])[SLOW]
    with httpx.Client() as client:
        logs = LokiLogSource(replay.url, client).fetch([trace])
    assert [e.body for e in logs[SLOW]][:2] == ["injected latency 800 ms",
                                                "slow broker answer: 812 ms"]  # fmt: skip
    path, query, headers = replay.requests[0]
    assert path == "/loki/api/v1/query_range"
    assert query["query"] == [
        '{service_name=~"broker-sim|execution-gateway"} | trace_id="' + SLOW + '"'
    ]
    start, end = int(query["start"][0]), int(query["end"][0])
    first = min(s.start_ns for s in trace.spans)
    assert start == first - 60_000_000_000 and end > start
    assert query["direction"] == ["forward"]
    assert headers["X-Loki-Response-Encoding-Flags"] == "categorize-labels"


def test_unreachable_backends_are_clear_errors() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with httpx.Client() as client:
        with pytest.raises(SourceError, match=f"cannot reach Tempo at {url}"):
            TempoTraceSource(url, client).fetch([SLOW])
        trace = FileTraceSource(FIXTURES).fetch([SLOW])[SLOW]
        with pytest.raises(SourceError, match=f"cannot reach Loki at {url}"):
            LokiLogSource(url, client).fetch([trace])
