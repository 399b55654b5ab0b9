"""Start, watch and stop local server processes (Postgres, Redis, Prometheus, the collector...).

Shared by ``trading-otel up`` and the test fixtures. Rules it enforces:

* a process is only ever stopped by the object that started it (never by name or port);
* its output goes to a log file, and a readiness timeout raises with the log's tail;
* a port that is already taken is reported before anything starts.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ServerError(RuntimeError):
    """A local server could not be started or did not become ready."""


#: Where Linux's range for the local ports of outgoing connections starts when
#: ``/proc/sys/net/ipv4/ip_local_port_range`` cannot be read (its default).
_EPHEMERAL_LOW_DEFAULT = 32768
_PORT_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
#: How far below the ephemeral range ports are drawn from (never below 1024).
_WINDOW = 12000
_issued: set[int] = set()
_issued_lock = threading.Lock()
_random = random.SystemRandom()  # a test's random.seed() must not make processes agree


def _ephemeral_low() -> int:
    try:
        return int(Path(_PORT_RANGE_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _EPHEMERAL_LOW_DEFAULT


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now on ``host``, for a listener started later.

    The port is drawn outside the kernel's ephemeral range. A port the kernel hands
    out for ``bind(0)`` lies inside it, where any outgoing connection made before the
    listener binds (a service calling Postgres, an exporter) may take it as its local
    port; CI once lost a whole e2e module that way. Ports are never handed out twice
    by one process. When the ephemeral range leaves no room below it, the kernel picks.
    """
    lo = _ephemeral_low()
    first = max(1024, lo - _WINDOW)
    if lo - first >= 1000:
        for _ in range(500):
            port = _random.randrange(first, lo)
            with _issued_lock:
                if port in _issued or not _bindable(host, port):
                    continue
                _issued.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port = int(s.getsockname()[1])
    with _issued_lock:
        _issued.add(port)
    return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when ``url`` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tcp_ok(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    """A readiness probe that succeeds once ``host:port`` accepts connections."""
    return lambda: port_in_use(port, host)


def http_probe(url: str) -> Callable[[], bool]:
    """A readiness probe that succeeds once ``url`` answers 2xx."""
    return lambda: http_ok(url)


@dataclass
class ManagedProcess:
    """One server process we started, with its log file and readiness probe."""

    name: str
    argv: Sequence[str]
    log_path: Path
    ready: Callable[[], bool] | None = None
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    ports: Sequence[int] = ()
    user: str | None = None
    """Run as this user (Postgres refuses root) via ``runuser``."""
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, timeout: float = 30.0) -> ManagedProcess:
        """Start the process and wait until it is ready, or raise :class:`ServerError`."""
        for port in self.ports:
            if port_in_use(port):
                raise ServerError(
                    f"{self.name}: port {port} is already in use by another process; "
                    "stop it or choose another port"
                )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = list(self.argv)
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise ServerError(f"{self.name}: cannot run {argv[0]}: {exc}") from exc
        finally:
            log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Poll the readiness probe until it passes, the process dies, or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with code {self.proc.returncode} during startup; "
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            if self.ready is None or self.ready():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"{self.name} not ready after {timeout:.0f}s; "
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            time.sleep(0.1)

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        """Stop the process group we started: SIGTERM, then SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
