"""telemetrygen: one pinned version, a binary cached by that version, argv by keyword."""

from __future__ import annotations

from pathlib import Path

import pytest

from trading_otel_tools.collector import telemetrygen


def test_a_binary_is_current_only_with_the_pinned_version_stamp(tmp_path: Path) -> None:
    binary = tmp_path / "telemetrygen"
    assert not telemetrygen.is_current(binary)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert not telemetrygen.is_current(binary), "no stamp: version unknown"
    stamp = tmp_path / "telemetrygen.version"
    stamp.write_text("v0.150.0\n")
    assert not telemetrygen.is_current(binary)
    stamp.write_text(telemetrygen.VERSION + "\n")
    assert telemetrygen.is_current(binary)
    assert telemetrygen.ensure(binary) == binary  # cached: no go install


def test_ensure_says_go_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetrygen, "go_env", lambda: {"PATH": str(tmp_path)})
    with pytest.raises(telemetrygen.TelemetrygenError, match="Go is not installed"):
        telemetrygen.ensure(tmp_path / "telemetrygen")


def test_traces_argv() -> None:
    argv = telemetrygen.traces_argv(
        "127.0.0.1:4317", rate=500, workers=2, traces=40, service="errors", token="t",
        status_code="Error", attributes={"trading.order.outcome": "rejected"},
        binary=Path("/x/telemetrygen"),
    )  # fmt: skip
    assert argv[:2] == ["/x/telemetrygen", "traces"]
    joined = " ".join(argv)
    assert "--rate 500 --workers 2 --traces 40 --child-spans 4 --service errors" in joined
    assert "--duration" not in argv
    assert argv[argv.index("--otlp-header") + 1] == 'authorization="Bearer t"'
    assert argv[argv.index("--status-code") + 1] == "Error"
    assert argv[argv.index("--telemetry-attributes") + 1] == 'trading.order.outcome="rejected"'
    with pytest.raises(ValueError, match="exactly one"):
        telemetrygen.traces_argv("h:1", rate=1, workers=1)
