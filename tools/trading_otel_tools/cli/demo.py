"""``trading-otel demo``: the whole local stack, load with a latency spike, the investigation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from trading_otel_tools.demo import (
    DemoError,
    DemoOptions,
    alert_lines,
    diagnosis_lines,
    run_demo,
    where_to_look,
)
from trading_otel_tools.investigate import ExemplarStorageError, PrometheusError, render_text
from trading_otel_tools.investigate.sources import SourceError
from trading_otel_tools.stack import StackConfig, StackError


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the top-level app."""

    @app.command("demo")
    def demo_cmd(
        rate: Annotated[float, typer.Option(help="Orders per second.")] = 15.0,
        duration: Annotated[float, typer.Option(help="Load duration, seconds.")] = 90.0,
        spike_ms: Annotated[float, typer.Option(help="Broker latency added in the spike.")] = 600.0,
        spike_fraction: Annotated[float, typer.Option(help="Share of orders hit.")] = 0.6,
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help="Stack directory.")] = None,
        install: Annotated[bool, typer.Option("--install/--no-install")] = True,
    ) -> None:
        """Start the local stack, send orders with a broker spike, then investigate it."""
        console = Console()
        opts = DemoOptions(rate=rate, duration_s=duration, spike_ms=spike_ms,
                           spike_at_s=duration * 0.4, spike_for_s=duration * 0.28,
                           spike_fraction=spike_fraction)  # fmt: skip
        try:
            opts.validate()
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        config = StackConfig.default(var_dir)
        step = {"n": 0}

        def say(msg: str) -> None:
            console.print(f"[cyan]demo[/] {msg}", highlight=False)

        columns = (TextColumn("load"), BarColumn(), TextColumn("{task.fields[sent]} orders"),
                   TimeRemainingColumn())  # fmt: skip
        try:
            with Progress(*columns, console=console, transient=True) as bar:
                task = bar.add_task("load", total=duration, sent=0, visible=False)

                def tick(elapsed: float) -> None:
                    step["n"] += 1
                    bar.update(task, completed=elapsed, sent=step["n"], visible=True)

                result = run_demo(config, opts, say, install=install, on_tick=tick)
        except (DemoError, StackError, PrometheusError, ExemplarStorageError, SourceError) as exc:
            console.print(f"[red]demo failed:[/] {exc}", highlight=False)
            raise typer.Exit(1) from exc
        load = result.load.as_dict()
        say(f"load done: sent {load['sent']}, accepted {load['accepted']}, rejected "
            f"{load['rejected']}, errors {load['errors']}; client p50/p95/p99 "
            f"{load['p50_ms']}/{load['p95_ms']}/{load['p99_ms']} ms")  # fmt: skip
        console.rule("investigation")
        typer.echo(render_text(result.report), nl=False)
        console.rule("alerts")
        for line in alert_lines(result):
            console.print(line, highlight=False, soft_wrap=True)
        console.rule("the alert, with its diagnosis")
        for line in diagnosis_lines(result):
            console.print(line, highlight=False, soft_wrap=True, markup=False)
        console.rule("where to look")
        for line in where_to_look(config, result):
            console.print(line, highlight=False, soft_wrap=True)
        console.print(f"demo wall time: {result.wall_s:.0f}s")
