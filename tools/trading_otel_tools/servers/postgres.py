"""Launch a private Postgres cluster on loopback (for the local stack and the tests).

Postgres refuses to run as root, so when we are root the cluster runs as the ``postgres``
system user through ``runuser``, with a data directory that user owns. The server runs in
the foreground under :class:`~trading_otel_tools.procs.ManagedProcess`, so it is only ever
stopped by the object that started it.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from trading_otel_tools.procs import ManagedProcess, ServerError

SUPERUSER = "postgres"


def pg_bindir() -> Path:
    """The newest installed Postgres ``bin`` directory (Debian layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ServerError("Postgres is not installed: run scripts/install-system-deps.sh")


def _version_key(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def _run_as() -> str | None:
    return SUPERUSER if os.geteuid() == 0 else None


@dataclass
class PostgresServer:
    """A Postgres cluster whose data lives under ``root`` and which listens on ``port``.

    Args:
        root: Directory for the cluster (``root/data``), its socket and its log.
        port: TCP port on 127.0.0.1.
        database: Database created on first start (besides ``postgres``).
    """

    root: Path
    port: int
    database: str = "trading"
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def dsn(self) -> str:
        """A libpq/asyncpg DSN for the application database."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{self.database}"

    def _cmd(self, argv: list[str]) -> None:
        user = _run_as()
        full = ["runuser", "-u", user, "--", *argv] if user else argv
        res = subprocess.run(full, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise ServerError(f"postgres: {' '.join(argv)} failed:\n{res.stdout}{res.stderr}")

    def init(self) -> None:
        """Create the cluster unless it already exists (idempotent)."""
        self.root.mkdir(parents=True, exist_ok=True)
        user = _run_as()
        if user:
            shutil.chown(self.root, user)
        if (self.data_dir / "PG_VERSION").exists():
            return
        initdb = str(pg_bindir() / "initdb")
        self._cmd([initdb, "-D", str(self.data_dir), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8"])

    def start(self, timeout: float = 60.0) -> PostgresServer:
        """Initialise if needed, start in the foreground, wait for readiness, create the DB."""
        self.init()
        bindir = pg_bindir()
        self.process = ManagedProcess(
            name="postgres",
            argv=[
                str(bindir / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",  # a disposable dev/test cluster: durability is not the point
                "-c",
                "max_connections=200",
            ],
            log_path=self.log_path,
            ready=self._ready,
            ports=(self.port,),
            user=_run_as(),
        )
        self.process.start(timeout)
        self._ensure_database()
        return self

    def _ready(self) -> bool:
        res = subprocess.run(
            [str(pg_bindir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
        )
        return res.returncode == 0

    def _ensure_database(self) -> None:
        psql = str(pg_bindir() / "psql")
        base = [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-tA"]
        exists = subprocess.run(
            [*base, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
            capture_output=True,
            text=True,
            check=False,
        )
        if exists.stdout.strip() != "1":
            self._cmd([*base, "-c", f'CREATE DATABASE "{self.database}"'])

    def stop(self) -> None:
        """Fast shutdown (SIGINT): roll back open transactions and exit."""
        if self.process is not None:
            self.process.stop(timeout=15.0, sig=signal.SIGINT)
