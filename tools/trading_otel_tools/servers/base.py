"""What the YAML-configured HTTP servers (Prometheus, Alertmanager) have in common."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from trading_otel_tools.procs import ManagedProcess, http_probe


@dataclass
class YamlConfiguredServer:
    """A server on 127.0.0.1:``port`` with its config, data and log under ``root``.

    Args:
        root: Directory for the rendered config, the data and the process log.
        port: Listen port (``free_port()`` in tests, the documented port in the stack).
        config: A config mapping (written to ``root``), or the path of an existing file.
        extra_args: More command-line flags.
    """

    #: Process name, also the stem of the log and rendered config file names.
    name: ClassVar[str]

    root: Path
    port: int
    config: Mapping[str, Any] | Path
    extra_args: Sequence[str] = ()
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    @property
    def config_path(self) -> Path:
        if isinstance(self.config, Path):
            return self.config
        return self.root / f"{self.name}.yml"

    def _launch(self, argv: Sequence[str], timeout: float) -> None:
        """Write the config if it is a mapping, start ``argv``, wait for ``/-/ready``."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not isinstance(self.config, Path):
            self.config_path.write_text(yaml.safe_dump(dict(self.config), sort_keys=False))
        self.process = ManagedProcess(
            name=self.name,
            argv=[*argv, *self.extra_args],
            log_path=self.log_path,
            ready=http_probe(f"{self.url}/-/ready"),
            ports=(self.port,),
        )
        self.process.start(timeout)

    def stop(self) -> None:
        """Stop the process we started (never anything else)."""
        if self.process is not None:
            self.process.stop()
