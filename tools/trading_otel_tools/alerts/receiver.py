"""The local webhook receiver: Alertmanager POSTs notifications, we archive them.

``POST /alerts/<channel>`` archives one webhook notification under that channel name
(the local Alertmanager config uses paging, chat and ticket). ``GET /-/healthy`` answers
200 for readiness probes. ``GET /runbooks/<Alert>.md`` serves the runbook from the
checkout's ``docs/runbooks/``, so the alerts' ``runbook_url`` links open on a laptop (the
local Prometheus config sets ``runbook_base_url`` to this receiver). ``GET
/reports/<name>.html`` serves the HTML reports of the alert diagnoses.

With a :class:`DiagnosisConfig`, a firing order-latency alert is archived first and answered
at once; its diagnosis runs in the background and is appended to the archive when it ends
(see ``alerts/diagnosis.py``). Standard library HTTP: it must start in a fraction of a
second and has no reason to pull in an ASGI stack.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
from dataclasses import replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

from trading_otel_tools import home
from trading_otel_tools.alerts.archive import AlertArchive, InvalidNotification
from trading_otel_tools.alerts.diagnosis import Diagnoser, DiagnosisConfig

log = logging.getLogger(__name__)

#: Alertmanager batches alerts of one group; a few MB is far above any real group.
MAX_BODY_BYTES = 8 * 1024 * 1024


# A runbook name is one path segment: no separators, no dot-dot, nothing URL-encoded.
_RUNBOOK_PATH = re.compile(r"/runbooks/([A-Za-z0-9_-]+\.md)")
_REPORT_PATH = re.compile(r"/reports/([A-Za-z0-9_-]+\.html)")


class _Handler(BaseHTTPRequestHandler):
    server: _ArchiveHTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/-/healthy", "/-/ready"):
            self._reply(HTTPStatus.OK, "ok")
        elif path.startswith("/runbooks/"):
            self._runbook(path)
        elif path.startswith("/reports/"):
            self._report(path)
        else:
            self._reply(HTTPStatus.NOT_FOUND, "not found")

    def _runbook(self, path: str) -> None:
        match = _RUNBOOK_PATH.fullmatch(path)
        directory = self.server.runbooks_dir
        if match is None or directory is None:
            self._reply(HTTPStatus.NOT_FOUND, "GET /runbooks/<AlertName>.md")
            return
        # The pattern alone rules out traversal. The parent check still holds if the pattern
        # is ever loosened, and it refuses a symlink that points out of the directory.
        file = (directory / match.group(1)).resolve()
        if file.parent != directory or not file.is_file():
            self._reply(HTTPStatus.NOT_FOUND, f"no runbook {match.group(1)}")
            return
        try:
            body = file.read_bytes()
        except OSError as exc:
            log.error("cannot read runbook %s: %s", file, exc)
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, "runbook unreadable")
            return
        self._send(HTTPStatus.OK, body, "text/markdown; charset=utf-8")

    def _report(self, path: str) -> None:
        match = _REPORT_PATH.fullmatch(path)
        diagnoser = self.server.diagnoser
        if match is None or diagnoser is None:
            self._reply(HTTPStatus.NOT_FOUND, "GET /reports/<name>.html")
            return
        directory = diagnoser.config.reports_dir.resolve()
        file = (directory / match.group(1)).resolve()
        if file.parent != directory or not file.is_file():
            self._reply(HTTPStatus.NOT_FOUND, f"no report {match.group(1)}")
            return
        try:
            body = file.read_bytes()
        except OSError as exc:
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, f"report unreadable: {exc}")
            return
        self._send(HTTPStatus.OK, body, "text/html; charset=utf-8")

    def do_POST(self) -> None:
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) != 2 or parts[0] != "alerts":
            self._reply(HTTPStatus.NOT_FOUND, "POST /alerts/<channel>")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._reply(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            return
        if length < 0 or length > MAX_BODY_BYTES:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes")
            return
        raw = self.rfile.read(length)
        try:
            payload = json.loads(raw)
            self.server.archive.append(payload, channel=parts[1])
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, f"invalid JSON: {exc}")
            return
        except (InvalidNotification, ValueError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, str(exc))
            return
        except OSError as exc:
            # Alertmanager retries on 5xx, so a full disk loses nothing while it lasts.
            log.error("cannot write alert archive: %s", exc)
            self._reply(HTTPStatus.INSUFFICIENT_STORAGE, "archive write failed")
            return
        self._reply(HTTPStatus.OK, "archived")
        # After the answer: Alertmanager never waits for a diagnosis.
        if self.server.diagnoser is not None:
            self.server.diagnoser.submit(payload)

    def _reply(self, status: HTTPStatus, text: str) -> None:
        self._send(status, (text + "\n").encode(), "text/plain; charset=utf-8")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _ArchiveHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        archive: AlertArchive,
        runbooks_dir: Path | None,
        diagnoser: Diagnoser | None = None,
    ) -> None:
        self.archive = archive
        self.runbooks_dir = runbooks_dir
        self.diagnoser = diagnoser
        super().__init__(address, _Handler)


class ArchiveReceiver:
    """An HTTP server archiving Alertmanager webhook notifications into ``directory``.

    Args:
        directory: The archive directory (``var/alerts`` in the local stack).
        port: Listen port; 0 picks a free one (see :attr:`port` after :meth:`start`).
        host: Listen address; loopback by default.
        retention_days: Passed to :class:`AlertArchive`.
        runbooks_dir: Served under ``/runbooks/``; the checkout's ``docs/runbooks`` by
            default, ``None`` to serve none.
        diagnosis: Diagnose firing order-latency alerts with this configuration; ``None``
            archives them as they come. Its ``report_base_url`` is set to this receiver's
            ``/reports`` when left unset.
    """

    def __init__(
        self,
        directory: Path,
        port: int = 0,
        host: str = "127.0.0.1",
        retention_days: int = 90,
        runbooks_dir: Path | Literal["checkout"] | None = "checkout",
        diagnosis: DiagnosisConfig | None = None,
    ) -> None:
        self.archive = AlertArchive(directory, retention_days=retention_days)
        if runbooks_dir == "checkout":
            root = home.find_home()
            runbooks_dir = None if root is None else home.Checkout(root).runbooks
        runbooks = None if runbooks_dir is None else runbooks_dir.resolve()
        self._server = _ArchiveHTTPServer((host, port), self.archive, runbooks)
        self.diagnoser: Diagnoser | None = None
        if diagnosis is not None:
            if diagnosis.report_base_url is None:
                diagnosis = replace(diagnosis, report_base_url=f"{self.url}/reports")
            self.diagnoser = Diagnoser(self.archive, diagnosis)
            self._server.diagnoser = self.diagnoser
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the CLI's ``alerts receiver``)."""
        self.archive.prune()
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def start(self) -> ArchiveReceiver:
        """Serve in a background thread (tests, in-process use)."""
        self.archive.prune()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="alert-archive", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)


def serve(
    directory: Path,
    *,
    port: int,
    host: str,
    retention_days: int,
    diagnosis: DiagnosisConfig | None = None,
) -> int:
    """Run a receiver in the foreground until Ctrl-C or SIGTERM; the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        receiver = ArchiveReceiver(
            directory, port=port, host=host, retention_days=retention_days, diagnosis=diagnosis
        )
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    print(f"archiving alerts to {directory}/<date>.jsonl, listening on {host}:{receiver.port}")
    if receiver.diagnoser is not None:
        cfg = receiver.diagnoser.config
        print(
            f"diagnosing latency alerts from {cfg.prometheus} and "
            f"{cfg.tempo or cfg.telemetry_dir} (budget {cfg.budget_s:g} s), "
            f"reports in {cfg.reports_dir}"
        )
    sys.stdout.flush()
    # Ctrl-C is the normal way to stop it in a terminal.
    with contextlib.suppress(KeyboardInterrupt):
        receiver.serve_forever()
    return 0
