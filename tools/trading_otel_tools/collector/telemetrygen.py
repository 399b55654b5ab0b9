"""telemetrygen, the outside OTLP load generator our collector claims are measured with.

Its version is pinned here and nowhere else. :func:`ensure` installs it with
``go install`` into ``bin/telemetrygen`` of the checkout (``GOBIN``), next to a
``.version`` stamp; while the stamp matches :data:`VERSION` the binary is reused, as the
collector build reuses its binary while the manifest hash matches.

It is a client, so it need not match the distribution's release (v0.159.0 is not served
by the module proxy; v0.161.0 is).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from trading_otel_tools import home
from trading_otel_tools.collector.build import go_env

MODULE = "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen"
VERSION = "v0.161.0"
BINARY_NAME = "telemetrygen"


class TelemetrygenError(RuntimeError):
    """telemetrygen could not be installed; the message carries Go's own error."""


def binary_path() -> Path:
    """Where :func:`ensure` puts telemetrygen: ``bin/`` of the checkout."""
    return home.path("bin", BINARY_NAME)


def _stamp(binary: Path) -> Path:
    return binary.with_name(binary.name + ".version")


def is_current(binary: Path | None = None) -> bool:
    """True when ``binary`` exists and was installed at :data:`VERSION`."""
    binary = binary or binary_path()
    stamp = _stamp(binary)
    return (
        binary.is_file()
        and os.access(binary, os.X_OK)
        and stamp.is_file()
        and stamp.read_text().strip() == VERSION
    )


def ensure(binary: Path | None = None) -> Path:
    """The path of telemetrygen at :data:`VERSION`, installed with ``go install`` if needed.

    Raises:
        TelemetrygenError: Go is missing or ``go install`` failed (its output is included).
    """
    binary = binary or binary_path()
    if is_current(binary):
        return binary
    env = go_env()
    if shutil.which("go", path=env["PATH"]) is None:
        raise TelemetrygenError(
            f"Go is not installed, so {MODULE}@{VERSION} cannot be installed: "
            "run scripts/install-system-deps.sh"
        )
    binary.parent.mkdir(parents=True, exist_ok=True)
    env["GOBIN"] = str(binary.parent.resolve())
    out = subprocess.run(
        ["go", "install", f"{MODULE}@{VERSION}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0 or not binary.is_file():
        raise TelemetrygenError(
            f"go install {MODULE}@{VERSION} failed:\n{out.stderr.strip() or out.stdout}"
        )
    _stamp(binary).write_text(VERSION + "\n")
    return binary


def traces_argv(
    endpoint: str,
    *,
    rate: float,
    workers: int,
    seconds: float | None = None,
    traces: int | None = None,
    child_spans: int = 4,
    service: str = "telemetrygen",
    token: str | None = None,
    status_code: str | None = None,
    span_duration: str | None = None,
    attributes: dict[str, str] | None = None,
    binary: Path | None = None,
) -> list[str]:
    """argv of one ``telemetrygen traces`` run over insecure OTLP/gRPC.

    ``rate`` is spans per second per worker. Each trace has ``1 + child_spans`` spans.
    Give ``seconds`` (run that long) or ``traces`` (exactly that many per worker).
    """
    if (seconds is None) == (traces is None):
        raise ValueError("give exactly one of seconds and traces")
    argv = [
        str(binary or binary_path()), "traces",
        "--otlp-endpoint", endpoint, "--otlp-insecure",
        "--rate", f"{rate:g}", "--workers", str(workers),
        *(["--duration", f"{seconds:g}s"] if seconds is not None else ["--traces", str(traces)]),
        "--child-spans", str(child_spans), "--service", service,
    ]  # fmt: skip
    if token is not None:
        argv += ["--otlp-header", f'authorization="Bearer {token}"']
    if status_code is not None:
        argv += ["--status-code", status_code]
    if span_duration is not None:
        argv += ["--span-duration", span_duration]
    for key, value in (attributes or {}).items():
        argv += ["--telemetry-attributes", f'{key}="{value}"']
    return argv
