"""The collector build cache and manifest reading, without running the builder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from trading_otel_tools.collector import build as building


def fake_binary(tmp_path: Path, manifest: Path) -> Path:
    binary = tmp_path / "bin" / "otelcol-trading"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (binary.parent / "otelcol-trading.sha256").write_text(building.manifest_hash(manifest) + "\n")
    return binary


def test_builder_version_is_pinned_once_in_the_manifest() -> None:
    assert building.pinned_version() == "v0.159.0"
    text = building.MANIFEST.read_text()
    # every component shares the release: core/contrib v0.159.0
    versions = {line.split()[-1] for line in text.splitlines() if "gomod:" in line}
    assert versions == {"v0.159.0"}


def test_manifest_components_cover_the_distribution() -> None:
    types = building.manifest_types()
    assert types["receivers"] == {"otlp", "host_metrics"}
    assert {"memory_limiter", "batch", "tail_sampling", "redaction", "transform"} <= types[
        "processors"
    ]
    assert {"prometheus", "prometheus_remote_write", "otlp_grpc", "otlp_http", "file"} <= types[
        "exporters"
    ]
    assert "span_metrics" in types["connectors"]
    assert {"health_check", "file_storage", "bearertokenauth"} == types["extensions"]


#: Built although no shipped config uses it: the exporter to swap into a pipeline when
#: troubleshooting it. Everything else in the manifest must earn its build time.
KEPT_UNUSED = {("exporters", "debug")}


def shipped_config_types() -> set[tuple[str, str]]:
    """(kind, type) of every component defined by a shipped collector config."""
    root = building.REPO_ROOT
    files = [
        *sorted((root / "collector" / "config").glob("*.yaml")),
        *sorted((root / "collector" / "fixtures").glob("*.yaml")),
        *sorted((root / "deploy" / "k8s" / "config").glob("*.yaml")),
    ]
    used: set[tuple[str, str]] = set()
    for file in files:
        data = yaml.safe_load(file.read_text()) or {}
        for kind in ("receivers", "processors", "exporters", "connectors", "extensions"):
            used |= {(kind, str(cid).split("/")[0]) for cid in data.get(kind) or {}}
    return used


def test_every_built_component_is_used_by_a_shipped_config() -> None:
    built = {(kind, name) for kind, names in building.manifest_types().items() for name in names}
    unused = built - shipped_config_types() - KEPT_UNUSED
    assert not unused, f"built but used by no shipped config (drop from the manifest): {unused}"


def test_cache_hit_skips_the_builder(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    shutil.copy(building.MANIFEST, manifest)
    binary = fake_binary(tmp_path, manifest)
    assert building.is_current(manifest, binary)
    result = building.build(manifest, binary)
    assert not result.built and result.binary == binary


def test_cache_misses_when_the_manifest_changes(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    shutil.copy(building.MANIFEST, manifest)
    binary = fake_binary(tmp_path, manifest)
    manifest.write_text(manifest.read_text() + "\n# changed\n")
    assert not building.is_current(manifest, binary)


def test_a_build_leaves_a_hard_linked_stamp_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Checkouts may share bin/ by hard link; a build must replace its files, not write
    # through the link into the other checkout's stamp.
    produced = tmp_path / "out" / "otelcol-trading"
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        building.MANIFEST.read_text().replace("./collector/_build", str(produced.parent))
    )
    binary = fake_binary(tmp_path, manifest)
    stamp = binary.parent / "otelcol-trading.sha256"
    other = tmp_path / "other.sha256"
    stamp.write_text("other checkout\n")
    other.hardlink_to(stamp)

    def fake_builder(argv: list[str], progress: object) -> tuple[int, str]:
        produced.parent.mkdir()
        produced.write_text("#!/bin/sh\n")
        produced.chmod(0o755)
        return 0, ""

    monkeypatch.setattr(building, "builder_path", lambda *_: Path("builder"))
    monkeypatch.setattr(building, "_run_streaming", fake_builder)
    assert building.build(manifest, binary).built
    assert building.is_current(manifest, binary)
    assert other.read_text() == "other checkout\n"


def test_cache_misses_without_binary_or_stamp(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    shutil.copy(building.MANIFEST, manifest)
    binary = fake_binary(tmp_path, manifest)
    (binary.parent / "otelcol-trading.sha256").unlink()
    assert not building.is_current(manifest, binary)
    binary.unlink()
    assert not building.is_current(manifest, binary)


def test_manifest_without_pinned_core_line_is_an_error(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text("dist:\n  name: x\n")
    with pytest.raises(building.BuildError, match="otlpreceiver"):
        building.pinned_version(manifest)


def test_unknown_module_in_manifest_is_an_error(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text("receivers:\n  - gomod: example.com/x/kafkareceiver v0.159.0\n")
    with pytest.raises(building.BuildError, match="kafkareceiver"):
        building.manifest_types(manifest)
