"""``trading-otel collector build|lint``: our collector distribution and its pipelines."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from trading_otel_tools import home
from trading_otel_tools.collector import build as building
from trading_otel_tools.collector import lint as linting

collector_app = typer.Typer(
    help="Build our OpenTelemetry Collector (ocb) and check pipeline configs.",
    no_args_is_help=True,
)


@collector_app.command("build")
def build_cmd(
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if current.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print every builder line.")
    ] = False,
) -> None:
    """Build bin/otelcol-trading from collector/manifest.yaml (cached by manifest hash)."""
    console = Console(stderr=True)
    spinner = Spinner("dots", text="starting ocb")
    step = ["starting ocb"]
    said = [-1.0]

    def progress(line: str, elapsed: float) -> None:
        if line:
            step[0] = _step(line)
            if verbose:
                console.print(line, markup=False, highlight=False)
        if console.is_terminal:
            spinner.update(text=Text(f"building collector {elapsed:5.0f}s  {step[0][:90]}"))
        elif line or elapsed - said[0] >= 30:
            # make/CI logs: one line per builder step, and a heartbeat while Go compiles.
            said[0] = elapsed
            console.print(f"[{elapsed:5.0f}s] {step[0]}", markup=False, highlight=False)

    try:
        if building.is_current() and not force:
            result = building.build()
        else:
            live = Live(spinner, console=console, refresh_per_second=4, transient=True)
            with live if console.is_terminal else contextlib.nullcontext():
                result = building.build(force=force, progress=progress)
    except building.BuildError as exc:
        console.print(f"[red]collector build failed[/red]\n{exc}", highlight=False)
        raise typer.Exit(1) from exc
    rel = result.binary.relative_to(home.repo_root())
    if result.built:
        console.print(
            f"built {rel} in {result.seconds:.0f}s (manifest {result.manifest_hash[:12]})"
        )
    else:
        console.print(f"{rel} is current (manifest {result.manifest_hash[:12]}); not rebuilt")
    for kind, names in building.components(result.binary).items():
        typer.echo(f"{kind:<11} {', '.join(names)}")


@collector_app.command("lint")
def lint_cmd(
    files: Annotated[
        list[Path], typer.Argument(help="Config files, merged in order like --config.")
    ],
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Static checks only; skip `validate`.")
    ] = False,
    binary: Annotated[
        Path | None,
        typer.Option(
            help="Collector binary used for validate. Default: the checkout's "
            "bin/otelcol-trading, else otelcol-trading on PATH."
        ),
    ] = None,
) -> None:
    """Check collector configs for pipeline mistakes, then run the binary's validate."""
    try:
        findings = linting.lint(
            files, binary=None if no_validate else binary or linting.default_binary()
        )
    except linting.LintInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for finding in findings:
        typer.echo(str(finding))
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    typer.echo(f"{len(files)} file(s): {errors} error(s), {warnings} warning(s)", err=True)
    hint = linting.overlay_hint(files, findings)
    if hint:
        typer.echo(hint, err=True)
    if errors:
        raise typer.Exit(1)


def _step(line: str) -> str:
    """The message of one builder log line (``time\tLEVEL\tcaller\tmessage\t{fields}``)."""
    fields = line.split("\t")
    if len(fields) >= 4 and fields[1] in ("INFO", "WARN", "ERROR", "DEBUG"):
        return fields[3]
    return line.strip()


def register(app: typer.Typer) -> None:
    """Add ``collector build`` and ``collector lint`` to the top-level app."""
    app.add_typer(collector_app, name="collector")
