"""The ``trading-otel`` command line: one module per command group."""

from __future__ import annotations

import typer

from otel.cli import alerts, collector, demo, doctor, investigate, metrics, stack, traffic

app = typer.Typer(
    name="trading-otel",
    help="Observability for Python trading services: stack, load, faults, investigation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Observability for Python trading services: stack, load, faults, investigation."""


for _module in (metrics, collector, stack, traffic, demo, investigate, alerts, doctor):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
