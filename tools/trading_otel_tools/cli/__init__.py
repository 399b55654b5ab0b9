"""The ``trading-otel`` command line: one module per command group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trading_otel_tools import home
from trading_otel_tools.cli import (
    alerts,
    collector,
    demo,
    doctor,
    investigate,
    metrics,
    stack,
    traffic,
)

app = typer.Typer(
    name="trading-otel",
    help="Observability for Python trading services: stack, load, faults, investigation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    repo: Annotated[
        Path | None,
        typer.Option(
            "--repo",
            envvar=home.ENV_VAR,
            help="The trading-otel checkout (collector/, deploy/, services/) "
            "Default: searched upwards from the current directory.",
        ),
    ] = None,
) -> None:
    """Observability for Python trading services: stack, load, faults, investigation."""
    home.set_home(repo)


for _module in (metrics, collector, stack, traffic, demo, investigate, alerts, doctor):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
