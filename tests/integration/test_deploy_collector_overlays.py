"""The Kubernetes overlays are valid collector configs for our real distribution, layered
exactly as the manifests pass them (base, role, overlay)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.alerting import DEPLOY, REPO

pytestmark = pytest.mark.integration

CONFIG = REPO / "collector/config"
OVERLAYS = DEPLOY / "k8s/config"


@pytest.mark.parametrize(
    ("role", "overlay"),
    [("agent.yaml", "agent-k8s.yaml"), ("gateway.yaml", "gateway-k8s.yaml")],
)
def test_k8s_overlay_validates(
    collector_binary: Path, tmp_path: Path, role: str, overlay: str
) -> None:
    files = [CONFIG / "common.yaml", CONFIG / role, OVERLAYS / overlay]
    res = subprocess.run(
        [str(collector_binary), "validate", *(f"--config={f}" for f in files)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "TRADING_OTEL_COLLECTOR_QUEUE_DIR": str(tmp_path / "q"),
            # The DaemonSet mounts the node root at /hostfs; here the host root is it.
            "TRADING_OTEL_HOSTFS": "/",
        },
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
