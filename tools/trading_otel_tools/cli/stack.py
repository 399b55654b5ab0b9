"""``trading-otel up | down | status``: the local stack (see docs/local-stack.md)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from trading_otel_tools.stack import StackConfig, StackError, down, status, up

_VAR_HELP = "Stack directory (data, logs, state file); default: var/ in the checkout."


def config_from(var_dir: Path | None, only: str | None = None) -> StackConfig:
    """The stack config the CLI options describe."""
    config = StackConfig.default(var_dir)
    if only:
        config = replace(config, only=tuple(s.strip() for s in only.split(",") if s.strip()))
    return config


def _table(rows: list[dict[str, object]]) -> Table:
    table = Table("component", "state", "pid", "ports", "detail")
    colors = {"ready": "green", "starting": "yellow", "stopped": "dim", "skipped": "dim"}
    for r in rows:
        color = colors.get(str(r["state"]), "white")
        table.add_row(
            str(r["name"]), f"[{color}]{r['state']}[/]", str(r["pid"] or ""),
            ",".join(str(p) for p in r["ports"]),  # type: ignore[attr-defined]
            str(r["detail"]),
        )  # fmt: skip
    return table


def register(app: typer.Typer) -> None:
    """Add ``up``, ``down`` and ``status`` to the top-level app."""

    @app.command("up")
    def up_cmd(
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
        only: Annotated[
            str | None,
            typer.Option(
                "--only", help="Comma list of components to start (default: all available)."
            ),
        ] = None,
        install: Annotated[
            bool,
            typer.Option("--install/--no-install", help="Install missing Debian packages first."),
        ] = True,
    ) -> None:
        """Start the local stack (Postgres, Redis, collector, Prometheus, alerting, services)."""
        console = Console()
        config = config_from(var_dir, only)
        try:
            rows = up(config, install=install, report=lambda m: console.print(f"  {m}"))
        except (StackError, ValueError) as exc:
            console.print(f"[red]trading-otel up failed:[/] {exc}")
            raise typer.Exit(1) from exc
        console.print(_table([asdict(r) for r in rows]))
        console.print(f"logs: {config.log_dir} and {config.var_dir}/<component>/; "
                      "stop with `trading-otel down`")  # fmt: skip

    @app.command("down")
    def down_cmd(
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """Stop what `trading-otel up` started (never anything else)."""
        console = Console()
        try:
            stopped = down(config_from(var_dir), report=lambda m: console.print(f"  {m}"))
        except ValueError as exc:
            console.print(f"[red]trading-otel down failed:[/] {exc}")
            raise typer.Exit(1) from exc
        console.print(f"stopped {len(stopped)} component(s)")

    @app.command("status")
    def status_cmd(
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print JSON instead of a table.")
        ] = False,
    ) -> None:
        """Show each component: ready, starting, stopped or skipped."""
        try:
            rows = [asdict(r) for r in status(config_from(var_dir))]
        except ValueError as exc:
            Console().print(f"[red]trading-otel status failed:[/] {exc}")
            raise typer.Exit(1) from exc
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
        else:
            Console().print(_table(rows))
