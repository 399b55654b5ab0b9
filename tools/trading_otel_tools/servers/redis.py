"""Launch a private, non-persistent Redis on loopback (for the local stack and the tests)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from trading_otel_tools.procs import ManagedProcess, ServerError, tcp_ok


@dataclass
class RedisServer:
    """A Redis server listening on 127.0.0.1:``port``, working directory ``root``.

    Persistence is off (no RDB, no AOF): the services rebuild their Redis state.
    """

    root: Path
    port: int
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.root / "redis.log"

    def start(self, timeout: float = 30.0) -> RedisServer:
        """Start in the foreground and wait until the port accepts connections."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerError("redis-server is not installed: run scripts/install-system-deps.sh")
        self.root.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            name="redis",
            argv=[
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            log_path=self.log_path,
            ready=tcp_ok(self.port),
            ports=(self.port,),
        )
        self.process.start(timeout)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
