"""Every shipped collector config passes lint and the real binary's validate."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from trading_otel_tools.cli import app
from trading_otel_tools.collector import build as building
from trading_otel_tools.collector.lint import lint
from trading_otel_tools.procs import free_port
from trading_otel_tools.servers.collector import ROLES, role_files

pytestmark = pytest.mark.integration


def test_binary_has_every_manifest_component(collector_binary: Path) -> None:
    # MODULE_TYPES (used before the first build) must agree with the real binary.
    assert building.components(collector_binary) == {
        kind: sorted(names) for kind, names in building.manifest_types().items()
    }


def test_build_is_cached_by_manifest_hash(collector_binary: Path) -> None:
    assert building.is_current(building.MANIFEST, collector_binary)
    result = building.build(binary=collector_binary)
    assert not result.built and result.manifest_hash == building.manifest_hash()


@pytest.mark.parametrize("role", sorted(ROLES))
def test_shipped_config_passes_lint_and_validate(role: str, collector_binary: Path) -> None:
    # lint() runs `otelcol-trading validate` on the same files after its own checks.
    findings = lint(role_files(role), binary=collector_binary, environ={})
    assert [str(f) for f in findings] == []


def test_validate_errors_are_reported_with_the_component_line(
    tmp_path: Path, collector_binary: Path
) -> None:
    # Passes every static check; only the collector knows `timeoutz` is not a batch key.
    overlay = tmp_path / "typo.yaml"
    overlay.write_text("processors:\n  batch:\n    timeoutz: 1s\n")
    findings = lint([*role_files("local"), overlay], binary=collector_binary, environ={})
    assert [f.rule for f in findings] == ["validate"]
    assert findings[0].location.file == overlay and findings[0].location.line == 3
    assert "timeoutz" in findings[0].message


def test_cli_lint_exit_codes(tmp_path: Path, collector_binary: Path) -> None:
    runner = CliRunner()
    files = [str(p) for p in role_files("gateway")]
    ok = runner.invoke(app, ["collector", "lint", *files, "--binary", str(collector_binary)])
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("exporters:\n  prometheus:\n    enable_open_metrics: false\n")
    res = runner.invoke(app, ["collector", "lint", *files, str(bad), "--no-validate"])
    assert res.exit_code == 1
    assert f"{bad}:2: error: exporter 'prometheus'" in res.output
    missing = runner.invoke(app, ["collector", "lint", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_cli_build_reuses_cache_and_prints_components(collector_binary: Path) -> None:
    res = CliRunner().invoke(app, ["collector", "build"])
    assert res.exit_code == 0, res.output
    assert "is current" in res.output
    assert "tail_sampling" in res.output and "otlp_grpc" in res.output


def test_module_proxy_failure_fails_the_build_with_its_exact_error(
    tmp_path: Path, collector_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that refuses connections, and a module version the local cache lacks: the
    # build must stop with Go's own error and leave no binary behind.
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("GOPROXY", dead_proxy)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        f"dist:\n  name: otelcol-broken\n  output_path: {tmp_path / 'out'}\n"
        "receivers:\n  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver v0.159.0\n"
        "exporters:\n  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/"
        "exporter/kafkaexporter v0.159.0\n"
    )
    binary = tmp_path / "bin" / "otelcol-broken"
    with pytest.raises(building.BuildError) as err:
        building.build(manifest, binary)
    assert "kafkaexporter" in str(err.value)
    assert dead_proxy.removeprefix("http://") in str(err.value)
    assert "connection refused" in str(err.value)
    assert not binary.exists()
