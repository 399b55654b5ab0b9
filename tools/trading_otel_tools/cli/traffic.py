"""``trading-otel load`` and ``trading-otel fault ...`` against the running local stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import redis.exceptions
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from trading_otel_tools.cli.stack import config_from
from trading_otel_tools.stack import clear_fault, inject_fault, list_faults, run_load
from trading_otel_tools.stack.faults import pause_component, resume_component
from trading_otel_tools.stack.load import Spike

_VAR_HELP = "Stack directory; default: var/ in the checkout."
Duration = Annotated[
    float, typer.Option("--duration", "-d", help="Seconds until the fault ends by itself.")
]


def _fault(var_dir: Path | None, name: str, duration: float, **params: float) -> None:
    console = Console()
    try:
        console.print(inject_fault(config_from(var_dir), name, duration, **params))
    except ValueError as exc:
        console.print(f"[red]bad fault:[/] {exc}")
        raise typer.Exit(2) from exc
    except (redis.exceptions.ConnectionError, OSError) as exc:
        console.print(
            f"[red]cannot reach the stack's Redis[/] ({exc}); is `trading-otel up` running?"
        )
        raise typer.Exit(1) from exc


def register(app: typer.Typer) -> None:
    """Add ``load`` and the ``fault`` group to the top-level app."""

    @app.command("load")
    def load_cmd(
        rate: Annotated[float, typer.Option("--rate", "-r", help="Orders per second.")] = 20.0,
        duration: Annotated[float, typer.Option("--duration", "-d", help="Seconds to run.")] = 30.0,
        spike: Annotated[
            float | None,
            typer.Option(
                "--spike", help="Inject a broker latency spike of this many ms during the run."
            ),
        ] = None,
        spike_at: Annotated[
            float | None, typer.Option(help="Seconds into the run (default: 1/3).")
        ] = None,
        spike_for: Annotated[
            float | None, typer.Option(help="Spike length, s (default: 1/3 run).")
        ] = None,
        spike_fraction: Annotated[
            float, typer.Option(help="Fraction of orders the spike hits.")
        ] = 1.0,
        gateway_url: Annotated[
            str | None, typer.Option(help="Gateway URL (default: the stack's).")
        ] = None,
        api_key: Annotated[
            str | None,
            typer.Option(
                envvar="TRADING_OTEL_API_KEY",
                show_default=False,
                help="API key sent as 'Authorization: Bearer' (default: the first of "
                "TRADING_OTEL_API_KEYS; none if unset).",
            ),
        ] = None,
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ) -> None:
        """Send orders at a fixed rate; print sent/accepted/rejected/errors and p50/p95/p99."""
        console = Console(stderr=as_json)
        spec = None
        if spike is not None:
            at = duration / 3 if spike_at is None else spike_at
            length = duration / 3 if spike_for is None else spike_for
            spec = Spike(spike, at, length, spike_fraction)
        columns = (TextColumn("orders"), BarColumn(), TextColumn("{task.fields[sent]} sent"),
                   TimeRemainingColumn())  # fmt: skip
        with Progress(*columns, console=console, transient=as_json) as bar:
            task = bar.add_task("load", total=duration, sent=0)
            sent = 0

            def tick(elapsed: float) -> None:
                nonlocal sent
                sent += 1
                bar.update(task, completed=elapsed, sent=sent)

            try:
                report = run_load(config_from(var_dir), rate=rate, duration_s=duration,
                                  gateway_url=gateway_url, spike=spec, on_tick=tick,
                                  api_key=api_key)  # fmt: skip
            except ValueError as exc:
                console.print(f"[red]bad options:[/] {exc}")
                raise typer.Exit(2) from exc
            bar.update(task, completed=duration)
        summary = report.as_dict()
        if as_json:
            typer.echo(json.dumps(summary))
            return
        table = Table("sent", "accepted", "rejected", "errors", "p50 ms", "p95 ms", "p99 ms",
                      "orders/s", title="load summary (client side)")  # fmt: skip
        table.add_row(*(str(summary[k]) for k in ("sent", "accepted", "rejected", "errors",
                      "p50_ms", "p95_ms", "p99_ms", "throughput_per_s")))  # fmt: skip
        console.print(table)
        if report.rejections:
            console.print("rejections by reason: " + ", ".join(
                f"{k}={v}" for k, v in sorted(report.rejections.items())))  # fmt: skip
        if report.sent and report.errors == report.sent:
            console.print("[red]every order failed: is the stack up (`trading-otel status`)?[/]")
            raise typer.Exit(1)

    fault = typer.Typer(help="Inject or clear faults in the running stack (each time-bounded).",
                        no_args_is_help=True)  # fmt: skip
    app.add_typer(fault, name="fault")

    @fault.command("broker-spike")
    def broker_spike(
        delay_ms: Annotated[float, typer.Option(help="Extra broker latency, ms.")] = 500.0,
        fraction: Annotated[float, typer.Option(help="Fraction of orders delayed (0..1).")] = 1.0,
        duration: Duration = 30.0,
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """Add DELAY_MS to a FRACTION of broker orders."""
        _fault(var_dir, "broker-spike", duration, delay_ms=delay_ms, fraction=fraction)

    @fault.command("broker-reject")
    def broker_reject(
        rate: Annotated[
            float, typer.Option(help="Fraction of orders the broker rejects (0..1).")
        ] = 0.5,
        duration: Duration = 30.0,
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """Make the broker reject a fraction of orders."""
        _fault(var_dir, "broker-reject", duration, rate=rate)

    @fault.command("broker-disconnect")
    def broker_disconnect(
        duration: Duration = 30.0,
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """The broker refuses connections."""
        _fault(var_dir, "broker-disconnect", duration)

    @fault.command("broker-slow-fills")
    def broker_slow_fills(
        delay_ms: Annotated[float, typer.Option(help="Extra time for every fill, ms.")] = 300.0,
        duration: Duration = 30.0,
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """Every fill takes DELAY_MS longer."""
        _fault(var_dir, "broker-slow-fills", duration, delay_ms=delay_ms)

    @fault.command("feed-stall")
    def feed_stall(
        duration: Duration = 30.0,
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """The market data feed stops publishing (staleness rises)."""
        _fault(var_dir, "feed-stall", duration)

    @fault.command("pg-slow")
    def pg_slow(
        delay_ms: Annotated[
            float, typer.Option(help="pg_sleep added to the risk query, ms.")
        ] = 200.0,
        duration: Duration = 30.0,
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """Slow Postgres down: the gateway's risk query sleeps DELAY_MS."""
        _fault(var_dir, "pg-slow", duration, delay_ms=delay_ms)

    @fault.command("price-shock")
    def price_shock(
        pct: Annotated[float, typer.Option(help="How far every quote falls, % (0..100).")] = 10.0,
        duration: Duration = 30.0,
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """Market data quotes every symbol PCT percent lower (a gap down, P&L follows)."""
        _fault(var_dir, "price-shock", duration, pct=pct)

    @fault.command("pg-down")
    def pg_down(
        duration: Annotated[
            float, typer.Option("--duration", "-d", help="Seconds of outage.")
        ] = 90.0,
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """Postgres stops answering (its processes are paused): probes and queries hang."""
        _fault(var_dir, "pg-down", duration)

    @fault.command("pause")
    def pause(
        component: Annotated[str, typer.Argument(help="As `trading-otel status` names it.")],
        duration: Annotated[
            float, typer.Option("--duration", "-d", help="Seconds until SIGCONT.")
        ] = 90.0,
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """Hang one stack process (SIGSTOP, then SIGCONT): its scrapes and calls time out."""
        console = Console()
        try:
            console.print(pause_component(config_from(var_dir), component, duration))
        except ValueError as exc:
            console.print(f"[red]cannot pause:[/] {exc}")
            raise typer.Exit(2) from exc

    @fault.command("resume")
    def resume(
        component: Annotated[str, typer.Argument(help="The paused component.")],
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """End a pause now (SIGCONT)."""
        was = resume_component(config_from(var_dir), component)
        Console().print(f"{component}: " + ("resumed" if was else "was not paused"))

    @fault.command("redis-down")
    def redis_down(
        duration: Annotated[
            float, typer.Option("--duration", "-d", help="Seconds of outage.")
        ] = 10.0,
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """Make Redis unavailable to every client (CLIENT PAUSE)."""
        _fault(var_dir, "redis-down", duration)

    @fault.command("clear")
    def clear(
        name: Annotated[str | None, typer.Argument(help="Fault to clear (default: all).")] = None,
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """Clear one fault, or all of them."""
        console = Console()
        try:
            cleared = clear_fault(config_from(var_dir), name)
        except ValueError as exc:
            console.print(f"[red]bad fault:[/] {exc}")
            raise typer.Exit(2) from exc
        except (redis.exceptions.ConnectionError, OSError) as exc:
            console.print(f"[red]cannot reach the stack's Redis[/] ({exc})")
            raise typer.Exit(1) from exc
        console.print(f"cleared: {', '.join(cleared) or 'nothing was active'}")

    @fault.command("list")
    def list_cmd(
        var_dir: Annotated[Path | None, typer.Option("--var-dir", help=_VAR_HELP)] = None,
    ) -> None:
        """Show the active faults and when each ends."""
        try:
            active = list_faults(config_from(var_dir))
        except (redis.exceptions.ConnectionError, OSError) as exc:
            Console().print(f"[red]cannot reach the stack's Redis[/] ({exc})")
            raise typer.Exit(1) from exc
        typer.echo(json.dumps(active, indent=2) if active else "no active faults")
