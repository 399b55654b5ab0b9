"""Launch a private Prometheus 2.42 (Debian package) with exemplar storage on.

Used by the local stack and by tests. Exemplars are only kept when a target is scraped
in OpenMetrics format, which Prometheus asks for on its own; ``--enable-feature=
exemplar-storage`` makes it store them and answer ``/api/v1/query_exemplars``.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from trading_otel_tools.procs import ServerError
from trading_otel_tools.servers.base import YamlConfiguredServer

T = TypeVar("T")


def scrape_config(
    targets: Mapping[str, Sequence[str]],
    interval: str = "1s",
    metrics_path: str = "/metrics",
) -> dict[str, Any]:
    """A minimal Prometheus config scraping ``{job: [host:port, ...]}`` every ``interval``."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_interval": interval,
                "metrics_path": metrics_path,
                "static_configs": [{"targets": list(hosts)}],
            }
            for job, hosts in targets.items()
        ],
    }


@dataclass
class PrometheusServer(YamlConfiguredServer):
    """A Prometheus listening on 127.0.0.1:``port`` with its TSDB under ``root``.

    Args:
        root: Directory for the config, the TSDB and the log.
        port: Listen port (use ``free_port()`` in tests).
        config: A config mapping, or the path of an existing YAML file.
        extra_args: More command-line flags (e.g. ``--web.enable-lifecycle``).
    """

    name: ClassVar[str] = "prometheus"

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        """Write the config, start Prometheus and wait for ``/-/ready``."""
        binary = shutil.which("prometheus")
        if binary is None:
            raise ServerError("prometheus is not installed: run scripts/install-system-deps.sh")
        self._launch(
            [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--enable-feature=exemplar-storage",
                "--web.enable-remote-write-receiver",
            ],
            timeout,
        )
        return self

    # --- HTTP API helpers -----------------------------------------------------------

    def api(self, path: str, **params: str | float) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``; raise on an API error."""
        query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            raise ServerError(f"prometheus {path}: HTTP {exc.code}: {exc.read()[:500]!r}") from exc
        if body.get("status") != "success":
            raise ServerError(f"prometheus {path}: {body}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; returns the result vector."""
        data = self.api("query", query=promql)
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_exemplars(self, promql: str, window_s: float = 3600) -> list[dict[str, Any]]:
        """Exemplars of the series selected by ``promql`` over the last ``window_s`` seconds."""
        now = time.time()
        data: list[dict[str, Any]] = self.api(
            "query_exemplars", query=promql, start=now - window_s, end=now + 60
        )
        return data

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health and last error."""
        data = self.api("targets", state="active")
        active: list[dict[str, Any]] = data["activeTargets"]
        return active


def wait_for(
    probe: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.25, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something truthy, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout:.0f}s waiting for {what or probe!r}; last={last!r}"
    )
