"""Both wheels, each installed into a fresh virtualenv from PyPI: what `pip install` gives users.

The library wheel (``trading-otel``) holds ``otel`` only: ``import otel`` works with no
extra, and the ``fastapi`` extra gives a FastAPI app its server span. The tooling wheel
(``trading-otel-tools``) brings the ``trading-otel`` command, which lints a collector
config copied outside the checkout. Neither wheel ships a ``services`` package.

pip's downloads are cached under ``var/pip-cache`` so a second run installs offline-fast.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import venv
from collections.abc import Sequence
from pathlib import Path

import pytest

from otel import __version__ as otel_version
from tests.fixtures.lib import OtlpReceiver

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PIP_CACHE = REPO / "var" / "pip-cache"

#: Prints the installed distributions (pip and setuptools, the venv's own, left out).
LIST_DISTRIBUTIONS = """
import json
from importlib.metadata import distributions
names = sorted({d.metadata["Name"].lower() for d in distributions()} - {"pip", "setuptools"})
print(json.dumps(names))
"""


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that points back into the checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "TRADING_OTEL_", "PYTHON", "VIRTUAL_ENV", "PIP_"))
    }
    env.update(extra)
    return env


def _run(argv: Sequence[str | Path], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, f"{argv} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``trading-otel`` and ``trading-otel-tools``, built from this checkout."""
    out = tmp_path_factory.mktemp("wheels")
    for project in (REPO, REPO / "tools"):
        _run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--cache-dir", PIP_CACHE,
             "-w", out, project],
            cwd=REPO,
        )  # fmt: skip
    built = {p.name.split("-", 1)[0]: p for p in out.glob("*.whl")}
    assert set(built) == {"trading_otel", "trading_otel_tools"}, sorted(built)
    return built


def _fresh_venv(root: Path, *requirements: str) -> Path:
    """A new virtualenv under ``root`` with ``requirements`` installed; its python."""
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    python = root / "bin" / "python"
    _run([python, "-m", "pip", "install", "--quiet", "--cache-dir", PIP_CACHE, *requirements],
         cwd=root)  # fmt: skip
    return python


def _distributions(python: Path, cwd: Path) -> list[str]:
    names: list[str] = json.loads(_run([python, "-c", LIST_DISTRIBUTIONS], cwd=cwd).stdout)
    return names


def _wheel_files(wheel: Path) -> list[str]:
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_library_wheel_holds_otel_only(wheels: dict[str, Path]) -> None:
    tops = {name.split("/", 1)[0] for name in _wheel_files(wheels["trading_otel"])}
    assert "services" not in tops and "trading_otel_tools" not in tops
    assert "otel" in tops and "_trading_otel_envguard.pth" in tops
    tool_tops = {name.split("/", 1)[0] for name in _wheel_files(wheels["trading_otel_tools"])}
    assert "services" not in tool_tops and "otel" not in tool_tops


def test_one_version_for_both_wheels(wheels: dict[str, Path]) -> None:
    """The version is declared once (otel/_internal/version.py); the tooling pins that library."""
    import zipfile

    for name, wheel in wheels.items():
        assert wheel.name.startswith(f"{name}-{otel_version}-"), wheel.name
    with zipfile.ZipFile(wheels["trading_otel_tools"]) as zf:
        [meta] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        requires = [
            line.split(":", 1)[1].strip()
            for line in zf.read(meta).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    assert f"trading-otel[all]=={otel_version}" in requires, requires


def test_import_otel_with_no_extras(wheels: dict[str, Path], tmp_path: Path) -> None:
    python = _fresh_venv(tmp_path / "venv", str(wheels["trading_otel"]))
    script = textwrap.dedent("""
        import importlib.util
        import otel
        assert importlib.util.find_spec("fastapi") is None, "fastapi came without the extra"
        assert importlib.util.find_spec("services") is None
        assert importlib.util.find_spec("trading_otel_tools") is None
        telemetry = otel.configure(service_name="bare")
        assert telemetry is not None
        otel.shutdown()
        print("version", otel.__version__)
    """)
    out = _run([python, "-c", script], cwd=tmp_path, OTEL_TRACES_EXPORTER="none",
               OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")  # fmt: skip
    assert f"version {otel_version}" in out.stdout
    names = _distributions(python, tmp_path)
    print(f"\ntrading-otel (no extras): {len(names)} distributions installed: {names}")
    assert not {"typer", "rich", "gunicorn", "websockets", "fastapi"} & set(names)

    # gRPC asked for, its extra not installed: one warning, and the spans go over HTTP.
    receiver = OtlpReceiver().start()
    try:
        script = textwrap.dedent("""
            import otel
            from opentelemetry import trace
            otel.configure(service_name="bare")
            with trace.get_tracer("wheel-test").start_as_current_span("over-http"):
                pass
            otel.shutdown()
        """)
        out = _run([python, "-c", script], cwd=tmp_path, OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
                   OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_METRICS_EXPORTER="none",
                   OTEL_LOGS_EXPORTER="none")  # fmt: skip
        assert "pip install 'trading-otel[grpc]'" in out.stderr, out.stderr
        assert [span["name"] for _, span in receiver.spans()] == ["over-http"]
    finally:
        receiver.stop()


def test_fastapi_extra_gives_a_server_span(wheels: dict[str, Path], tmp_path: Path) -> None:
    python = _fresh_venv(tmp_path / "venv", f"{wheels['trading_otel']}[fastapi]")
    # One request through the ASGI interface in-process; spans go to the console exporter.
    script = textwrap.dedent("""
        import asyncio
        from fastapi import FastAPI
        import otel

        otel.configure(service_name="wheel-check")
        app = FastAPI()

        @app.get("/orders/{order_id}")
        async def order(order_id: str) -> dict[str, str]:
            return {"id": order_id}

        async def call() -> int:
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                     "method": "GET", "scheme": "http", "path": "/orders/42",
                     "raw_path": b"/orders/42", "query_string": b"", "root_path": "",
                     "headers": [(b"host", b"test")], "client": ("127.0.0.1", 1),
                     "server": ("test", 80)}
            sent = []
            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}
            async def send(message):
                sent.append(message)
            await app(scope, receive, send)
            return sent[0]["status"]

        print("status", asyncio.run(call()))
        otel.shutdown()
    """)
    out = _run([python, "-c", script], cwd=tmp_path, OTEL_TRACES_EXPORTER="console",
               OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")  # fmt: skip
    assert "status 200" in out.stdout
    assert '"kind": "SpanKind.SERVER"' in out.stdout, out.stdout
    assert "/orders/{order_id}" in out.stdout, out.stdout
    names = _distributions(python, tmp_path)
    print(f"\ntrading-otel[fastapi]: {len(names)} distributions installed")


def test_tools_wheel_cli_outside_the_checkout(wheels: dict[str, Path], tmp_path: Path) -> None:
    python = _fresh_venv(
        tmp_path / "venv", str(wheels["trading_otel"]), str(wheels["trading_otel_tools"])
    )
    cli = python.parent / "trading-otel"
    elsewhere = tmp_path / "my-configs"
    elsewhere.mkdir()
    help_text = _run([cli, "--help"], cwd=elsewhere).stdout
    for verb in ("up", "down", "status", "demo", "load", "fault", "investigate", "collector",
                 "metrics", "alerts", "doctor"):  # fmt: skip
        assert f" {verb} " in help_text, verb
    # A user's own config, copied out of the repository (base + overlay, as shipped).
    configs = [shutil.copy(REPO / "collector" / "config" / n, elsewhere / n)
               for n in ("common.yaml", "local.yaml")]  # fmt: skip
    binary = REPO / "bin" / "otelcol-trading"
    validate = ["--binary", str(binary)] if binary.is_file() else ["--no-validate"]
    out = _run([cli, "collector", "lint", *validate, *configs], cwd=elsewhere)
    assert "0 error(s)" in out.stderr, out.stderr
    # Without the built binary, the component list comes from the manifest in the wheel.
    out = _run([cli, "collector", "lint", "--no-validate", *configs], cwd=elsewhere)
    assert "0 error(s)" in out.stderr, out.stderr
    _run([python, "-c", "import importlib.util as u; assert u.find_spec('services') is None"],
         cwd=elsewhere)  # fmt: skip
    names = _distributions(python, elsewhere)
    print(f"\ntrading-otel + trading-otel-tools: {len(names)} distributions installed")
