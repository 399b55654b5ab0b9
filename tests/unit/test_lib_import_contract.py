"""``import otel`` loads no private module of FastAPI or the SDK, and no integration or tooling.

A FastAPI or SDK release that moves a private module must not break ``import otel``: the
lean paths that use such modules import them when they install themselves, and fall back
when they are missing. Each check runs in a fresh interpreter, since this test process
has long imported everything.

What "private module" means for OpenTelemetry: the SDK's public modules are themselves
implemented in private ones (``opentelemetry.metrics`` in ``opentelemetry.metrics._internal``,
``opentelemetry.sdk.metrics`` in ``..._internal``); those move together with their public
module, so they are allowed exactly when importing the public modules we import loads
them too. Our own modules must not import a private module or a private name at module
level (checked on their source). ``opentelemetry._logs`` and ``opentelemetry.sdk._logs``
(with the ``_log_exporter``/``_log_encoder`` modules) are the SDK's only logs API, still
experimental and so underscore-named: they are allowed.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import otel

OTEL_ROOT = Path(otel.__file__).resolve().parent
BANNED_PACKAGES = {"fastapi", "starlette", "asyncpg", "redis", "httpx", "grpc", "typer", "rich"}
TOOLING = ("trading_otel_tools", "services")
#: The SDK's experimental logs API: the only way to its logs, so allowed (see above).
LOGS_API = ("opentelemetry._logs", "opentelemetry.sdk._logs")


def _private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split(".")[1:])


def _logs_api(module: str) -> bool:
    return module.startswith(LOGS_API) or any(
        p in ("_log_exporter", "_log_encoder") for p in module.split(".")
    )


def _modules_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    """``sys.modules`` of a fresh interpreter after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=OTEL_ROOT.parent,
        env=env,
        timeout=120,
    )
    modules: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return modules


def _module_level_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) for every import that runs when ``path`` is imported."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, list[str]]] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend((a.name, []) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((node.module, [a.name for a in node.names]))
            elif isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


def _source(module: str) -> Path:
    rel = Path(*module.split(".")[1:])
    pkg = OTEL_ROOT / rel / "__init__.py"
    return pkg if pkg.exists() else OTEL_ROOT / rel.with_suffix(".py")


def test_import_otel_loads_no_integration_tooling_or_private_module() -> None:
    loaded = _modules_after("import otel")
    ours = [m for m in loaded if m == "otel" or m.startswith("otel.")]
    assert "otel._internal.bootstrap" in ours  # the core is really imported

    assert not [m for m in loaded if m.split(".")[0] in BANNED_PACKAGES]
    assert not [m for m in ours if m.startswith(TOOLING)]

    # Our modules: no private module and no private name at module level.
    public_otel_imports: set[str] = set()
    for module in ours:
        for imported, names in _module_level_imports(_source(module)):
            top = imported.split(".")[0]
            if top in BANNED_PACKAGES:
                raise AssertionError(f"{module} imports {imported} at import time")
            if top != "opentelemetry":
                continue
            private_names = [n for n in names if n.startswith("_")]
            if _logs_api(imported) or all(_logs_api(f"{imported}.{n}") for n in private_names):
                private_names = []
            assert not (_private(imported) and not _logs_api(imported)), (module, imported)
            assert not private_names, (module, imported, private_names)
            public_otel_imports.add(imported)

    # Every private OpenTelemetry module loaded comes with a public module we import.
    baseline = set(_modules_after("\n".join(f"import {m}" for m in sorted(public_otel_imports))))
    private = {m for m in loaded if m.startswith("opentelemetry.") and _private(m)}
    assert not {m for m in private - baseline if not _logs_api(m)}
    assert not [m for m in loaded if m.startswith("fastapi.") and _private(m)]


def test_configure_with_exporters_off_loads_no_tooling() -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "PATH": "/usr/bin:/bin",
    }
    loaded = _modules_after("import otel\nassert otel.configure() is not None", env)
    assert "otel._internal.server_telemetry" in loaded
    assert not [m for m in loaded if m.startswith(TOOLING)]
    # No gRPC without a gRPC exporter. (httpx, instrumented here, loads click and rich
    # itself for its command line when they are installed: not ours to judge.)
    assert "grpc" not in loaded
