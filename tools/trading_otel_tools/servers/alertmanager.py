"""Launch a private Alertmanager 0.25 (Debian package ``prometheus-alertmanager``).

Clustering is switched off (``--cluster.listen-address=`` empty): a single local
instance needs no gossip, and the default cluster port 9094 may be taken.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from trading_otel_tools.procs import ServerError
from trading_otel_tools.servers.base import YamlConfiguredServer


@dataclass
class AlertmanagerServer(YamlConfiguredServer):
    """An Alertmanager on 127.0.0.1:``port`` with its data and log under ``root``.

    Args:
        root: Directory for the rendered config, the notification log and the process log.
        port: Listen port (``free_port()`` in tests, 9093 in the local stack).
        config: A config mapping, or the path of an existing YAML file.
        extra_args: More command-line flags.
    """

    name: ClassVar[str] = "alertmanager"

    def start(self, timeout: float = 30.0) -> AlertmanagerServer:
        """Write the config, start Alertmanager and wait for ``/-/ready``."""
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if binary is None:
            raise ServerError(
                "prometheus-alertmanager is not installed: run scripts/install-system-deps.sh"
            )
        self._launch(
            [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.external-url={self.url}",
                "--cluster.listen-address=",
            ],
            timeout,
        )
        return self

    def _request(self, method: str, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/api/v2/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise ServerError(
                f"alertmanager {path}: HTTP {exc.code}: {exc.read()[:500]!r}"
            ) from exc
        return json.loads(raw) if raw.strip() else None

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds now, with their inhibition/silence status."""
        result: list[dict[str, Any]] = self._request("GET", "alerts")
        return result

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Push alerts the way Prometheus does (``labels``, ``annotations``, times)."""
        self._request("POST", "alerts", [dict(a) for a in alerts])
