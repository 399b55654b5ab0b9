"""Build the collector distribution from ``collector/manifest.yaml`` with ocb, once per hash.

The builder version is not written anywhere else: it is the version pinned on the core
``otlpreceiver`` line of the manifest, so builder and components always share a release.
The binary lands in ``bin/otelcol-trading`` with a ``.sha256`` file beside it holding the
manifest hash it was built from; a build is skipped while that hash still matches.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from trading_otel_tools import home

BINARY_NAME = "otelcol-trading"


def manifest_path() -> Path:
    """The ocb manifest: the checkout's, else the copy shipped with the tooling."""
    return home.data_file("collector/manifest.yaml")


def binary_path() -> Path:
    """Where ``collector build`` puts our distribution: ``bin/`` of the checkout."""
    return home.path("bin", BINARY_NAME)


def __getattr__(name: str) -> Path:
    # MANIFEST, BINARY and REPO_ROOT are resolved when read, never at import.
    if name == "MANIFEST":
        return manifest_path()
    if name == "BINARY":
        return binary_path()
    if name == "REPO_ROOT":
        return home.repo_root()
    raise AttributeError(name)


BUILDER_MODULE = "go.opentelemetry.io/collector/cmd/builder"
_VERSION_LINE = re.compile(r"go\.opentelemetry\.io/collector/receiver/otlpreceiver\s+(v\S+)")

#: Called with each line the builder prints, and the seconds elapsed so far.
Progress = Callable[[str, float], None]


class BuildError(RuntimeError):
    """The collector could not be built; the message carries the tool's own error."""


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build` did."""

    binary: Path
    manifest_hash: str
    built: bool
    """False when the cached binary was reused."""
    seconds: float


def manifest_hash(manifest: Path | None = None) -> str:
    """SHA-256 of the manifest bytes: the cache key of the binary."""
    manifest = manifest or manifest_path()
    return hashlib.sha256(manifest.read_bytes()).hexdigest()


def pinned_version(manifest: Path | None = None) -> str:
    """The collector release the manifest pins (e.g. ``v0.159.0``)."""
    manifest = manifest or manifest_path()
    match = _VERSION_LINE.search(manifest.read_text())
    if match is None:
        raise BuildError(
            f"{manifest}: no pinned go.opentelemetry.io/collector/receiver/otlpreceiver line; "
            "the builder version is read from it"
        )
    return match.group(1)


def _hash_file(binary: Path) -> Path:
    return binary.with_name(binary.name + ".sha256")


def is_current(manifest: Path | None = None, binary: Path | None = None) -> bool:
    """True when ``binary`` exists and was built from this exact manifest."""
    binary = binary or binary_path()
    stamp = _hash_file(binary)
    if not (binary.is_file() and os.access(binary, os.X_OK) and stamp.is_file()):
        return False
    return stamp.read_text().strip() == manifest_hash(manifest)


#: Where the Go tarball install puts it, for shells (make, CI) whose PATH lacks it.
_GO_FALLBACK = Path("/usr/local/go/bin")


def go_env() -> dict[str, str]:
    """This environment, with Go's bin directory on PATH when ``go`` is not found."""
    env = dict(os.environ)
    if shutil.which("go") is None and (_GO_FALLBACK / "go").is_file():
        env["PATH"] = f"{_GO_FALLBACK}{os.pathsep}{env.get('PATH', '')}"
    return env


def _gopath_bin() -> Path:
    out = subprocess.run(
        ["go", "env", "GOPATH"], capture_output=True, text=True, check=False, env=go_env()
    )
    if out.returncode != 0:
        raise BuildError(f"`go env GOPATH` failed: {out.stderr.strip()}")
    return Path(out.stdout.strip().split(os.pathsep)[0]) / "bin"


#: ocb v0.159 generates a go.mod for Go 1.25 (`go mod tidy -compat=1.25`).
MIN_GO = (1, 25)


def check_go() -> str:
    """The Go version, or :class:`BuildError` when it is too old for the builder."""
    out = subprocess.run(
        ["go", "env", "GOVERSION"], capture_output=True, text=True, check=False, env=go_env()
    )
    found = out.stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", found)
    if out.returncode != 0 or match is None:
        raise BuildError(f"cannot tell the Go version (`go env GOVERSION`): {out.stderr.strip()}")
    if (int(match.group(1)), int(match.group(2))) < MIN_GO:
        raise BuildError(
            f"{found} is too old: the collector builder needs Go "
            f"{MIN_GO[0]}.{MIN_GO[1]} or newer (Debian's golang-go is older; install Go "
            "from go.dev or a backports package)"
        )
    return found


def builder_path(version: str, progress: Progress | None = None) -> Path:
    """Path of an ocb builder at ``version``, installed with ``go install`` when missing."""
    if shutil.which("go", path=go_env()["PATH"]) is None:
        raise BuildError(
            "Go is not installed (needed to build the collector): run "
            "scripts/install-system-deps.sh"
        )
    check_go()
    candidate = _gopath_bin() / "builder"
    if candidate.is_file():
        out = subprocess.run([str(candidate), "version"], capture_output=True, text=True)
        if out.returncode == 0 and version in out.stdout + out.stderr:  # ocb logs to stderr
            return candidate
    if progress:
        progress(f"installing {BUILDER_MODULE}@{version}", 0.0)
    out = subprocess.run(
        ["go", "install", f"{BUILDER_MODULE}@{version}"],
        capture_output=True,
        text=True,
        env=go_env(),
    )
    if out.returncode != 0:
        raise BuildError(
            f"go install {BUILDER_MODULE}@{version} failed:\n{out.stderr.strip() or out.stdout}"
        )
    return candidate


def _output_path(manifest: Path) -> Path:
    data = yaml.safe_load(manifest.read_text()) or {}
    dist = data.get("dist") or {}
    name, out = dist.get("name"), dist.get("output_path")
    if not name or not out:
        raise BuildError(f"{manifest}: dist.name and dist.output_path are required")
    return (home.repo_root() / str(out) / str(name)).resolve()


def _run_streaming(argv: list[str], progress: Progress | None) -> tuple[int, str]:
    """Run ``argv`` from the repo root, feeding each output line to ``progress``."""
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=home.repo_root(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=go_env(),
    )
    lines: list[str] = []
    assert proc.stdout is not None
    # A heartbeat keeps the elapsed time moving during the long silent `go build`.
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(1.0):
            if progress:
                progress("", time.monotonic() - start)

    ticker = threading.Thread(target=beat, daemon=True)
    ticker.start()
    # `with proc` closes the pipe and, on Ctrl-C, waits for the builder it interrupted.
    with proc:
        try:
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if progress:
                    progress(line.rstrip("\n"), time.monotonic() - start)
            code = proc.wait()
        finally:
            stop.set()
            ticker.join()
    return code, "\n".join(lines)


def _builder_error(log: str) -> str:
    """The lines of the builder's output that explain a failure (Error: ... onwards)."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Error:"):
            return "\n".join(lines[i:])
    return "\n".join(lines[-30:])


def build(
    manifest: Path | None = None,
    binary: Path | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> BuildResult:
    """Build the distribution unless ``binary`` is current for ``manifest``.

    Args:
        manifest: The ocb manifest.
        binary: Where the finished binary is copied.
        force: Rebuild even when the cached binary matches.
        progress: Receives each builder output line and the elapsed seconds.

    Returns:
        What was done, and where the binary is.

    Raises:
        BuildError: Go, the builder, the module proxy or the compiler failed; the message
            holds their exact error. No binary is left behind in that case.
    """
    manifest = manifest or manifest_path()
    binary = binary or binary_path()
    digest = manifest_hash(manifest)
    if not force and is_current(manifest, binary):
        return BuildResult(binary, digest, built=False, seconds=0.0)
    start = time.monotonic()
    builder = builder_path(pinned_version(manifest), progress)
    code, log = _run_streaming([str(builder), f"--config={manifest}"], progress)
    if code != 0:
        raise BuildError(f"ocb exited with {code}:\n{_builder_error(log)}")
    produced = _output_path(manifest)
    if not produced.is_file():
        raise BuildError(f"ocb succeeded but {produced} is missing:\n{_builder_error(log)}")
    binary.parent.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_name(binary.name + ".tmp")
    shutil.copy2(produced, tmp)
    tmp.replace(binary)
    # Replaced, never written in place: checkouts may share the stamp by hard link, and
    # writing through the link would tell every other one its binary is this build.
    stamp = _hash_file(binary)
    stamp_tmp = stamp.with_name(stamp.name + ".tmp")
    stamp_tmp.write_text(digest + "\n")
    stamp_tmp.replace(stamp)
    return BuildResult(binary, digest, built=True, seconds=time.monotonic() - start)


def components(binary: Path | None = None) -> dict[str, list[str]]:
    """Component types the binary knows, by kind (``receivers``, ``processors``, ...)."""
    binary = binary or binary_path()
    out = subprocess.run([str(binary), "components"], capture_output=True, text=True)
    if out.returncode != 0:
        raise BuildError(f"{binary} components failed:\n{out.stderr.strip()}")
    data = yaml.safe_load(out.stdout) or {}
    kinds = ("receivers", "processors", "exporters", "connectors", "extensions")
    return {kind: sorted(str(c["name"]) for c in data.get(kind) or []) for kind in kinds}


#: Component type names by Go module (last path element), as the v0.159 binary prints
#: them. Only used when the binary is not built yet; a test checks it against the binary.
MODULE_TYPES: dict[str, tuple[str, str]] = {
    "otlpreceiver": ("receivers", "otlp"),
    "hostmetricsreceiver": ("receivers", "host_metrics"),
    "prometheusreceiver": ("receivers", "prometheus"),
    "memorylimiterprocessor": ("processors", "memory_limiter"),
    "batchprocessor": ("processors", "batch"),
    "resourcedetectionprocessor": ("processors", "resource_detection"),
    "attributesprocessor": ("processors", "attributes"),
    "transformprocessor": ("processors", "transform"),
    "redactionprocessor": ("processors", "redaction"),
    "filterprocessor": ("processors", "filter"),
    "tailsamplingprocessor": ("processors", "tail_sampling"),
    "spanmetricsconnector": ("connectors", "span_metrics"),
    "servicegraphconnector": ("connectors", "servicegraph"),
    "routingconnector": ("connectors", "routing"),
    "forwardconnector": ("connectors", "forward"),
    "otlpexporter": ("exporters", "otlp_grpc"),
    "otlphttpexporter": ("exporters", "otlp_http"),
    "debugexporter": ("exporters", "debug"),
    "prometheusexporter": ("exporters", "prometheus"),
    "prometheusremotewriteexporter": ("exporters", "prometheus_remote_write"),
    "fileexporter": ("exporters", "file"),
    "loadbalancingexporter": ("exporters", "load_balancing"),
    "healthcheckextension": ("extensions", "health_check"),
    "filestorage": ("extensions", "file_storage"),
    "bearertokenauthextension": ("extensions", "bearertokenauth"),
    "pprofextension": ("extensions", "pprof"),
    "zpagesextension": ("extensions", "zpages"),
}


def manifest_types(manifest: Path | None = None) -> dict[str, set[str]]:
    """Component types the manifest will build, by kind (without building anything)."""
    manifest = manifest or manifest_path()
    data = yaml.safe_load(manifest.read_text()) or {}
    out: dict[str, set[str]] = {}
    for kind in ("receivers", "processors", "exporters", "connectors", "extensions"):
        names: set[str] = set()
        for entry in data.get(kind) or []:
            module = str(entry.get("gomod", "")).split()[0].rsplit("/", 1)[-1]
            if module not in MODULE_TYPES:
                raise BuildError(f"{manifest}: no known component type for module {module!r}")
            names.add(MODULE_TYPES[module][1])
        out[kind] = names
    return out
