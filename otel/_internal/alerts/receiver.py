"""The local webhook receiver: Alertmanager POSTs notifications, we archive them.

``POST /alerts/<channel>`` archives one webhook notification under that channel name
(the local Alertmanager config uses paging, chat and ticket). ``GET /-/healthy`` answers
200 for readiness probes. Standard library only: it must start in a fraction of a second
and has no reason to pull in an ASGI stack.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from otel._internal.alerts.archive import AlertArchive, InvalidNotification

log = logging.getLogger(__name__)

#: Alertmanager batches alerts of one group; a few MB is far above any real group.
MAX_BODY_BYTES = 8 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    server: _ArchiveHTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path in ("/-/healthy", "/-/ready"):
            self._reply(HTTPStatus.OK, "ok")
        else:
            self._reply(HTTPStatus.NOT_FOUND, "not found")

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

    def _reply(self, status: HTTPStatus, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _ArchiveHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], archive: AlertArchive) -> None:
        self.archive = archive
        super().__init__(address, _Handler)


class ArchiveReceiver:
    """An HTTP server archiving Alertmanager webhook notifications into ``directory``.

    Args:
        directory: The archive directory (``var/alerts`` in the local stack).
        port: Listen port; 0 picks a free one (see :attr:`port` after :meth:`start`).
        host: Listen address; loopback by default.
        retention_days: Passed to :class:`AlertArchive`.
    """

    def __init__(
        self, directory: Path, port: int = 0, host: str = "127.0.0.1", retention_days: int = 90
    ) -> None:
        self.archive = AlertArchive(directory, retention_days=retention_days)
        self._server = _ArchiveHTTPServer((host, port), self.archive)
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
