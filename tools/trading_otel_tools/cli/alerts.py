"""``trading-otel alerts tail|status|receiver``: the local alert archive."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from trading_otel_tools.alerts import ArchivedAlert, current_state, read_archive
from trading_otel_tools.alerts.archive import DEFAULT_RETENTION_DAYS
from trading_otel_tools.alerts.receiver import serve
from trading_otel_tools.ports import TOOL_PORTS

alerts_app = typer.Typer(
    help="Read the alert archive (var/alerts/<date>.jsonl) or run its webhook receiver.",
    no_args_is_help=True,
)

DirOption = typer.Option(
    Path("var/alerts"), "--dir", help="Archive directory.", file_okay=False, dir_okay=True
)


def _line(alert: ArchivedAlert) -> str:
    labels = alert.labels
    summary = alert.annotations.get("summary", "")
    return (
        f"{alert.received_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z  {alert.status:<8} "
        f"{labels.get('severity', '-'):<8} {alert.name:<26} "
        f"service={labels.get('service', '-')}  via {alert.channel}  {summary}"
    )


def _warn_bad(bad: int) -> None:
    if bad:
        typer.secho(f"warning: skipped {bad} unreadable archive line(s)", err=True, fg="yellow")


@alerts_app.command("tail")
def tail_cmd(
    lines: int = typer.Option(20, "--lines", "-n", min=1, help="How many alerts to show."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new alerts."),
    directory: Path = DirOption,
) -> None:
    """Print the most recent archived alert notifications, oldest first."""
    result = read_archive(directory)
    _warn_bad(result.bad_lines)
    if not result.alerts and not follow:
        typer.echo(f"no alerts archived in {directory}")
        return
    for alert in result.alerts[-lines:]:
        typer.echo(_line(alert))
    if not follow:
        return
    seen = len(result.alerts)
    try:
        while True:
            time.sleep(1.0)
            alerts = read_archive(directory).alerts
            for alert in alerts[seen:]:
                typer.echo(_line(alert))
            seen = len(alerts)
    except KeyboardInterrupt:
        return


@alerts_app.command("status")
def status_cmd(
    directory: Path = DirOption,
    since: int = typer.Option(
        DEFAULT_RETENTION_DAYS, "--days", min=1, help="Only look at this many recent days."
    ),
) -> None:
    """Show the alerts whose latest notification says they are still firing."""
    result = read_archive(directory, since=datetime.now(UTC) - timedelta(days=since))
    _warn_bad(result.bad_lines)
    firing = current_state(result.alerts)
    console = Console()
    if not firing:
        total = len(result.alerts)
        console.print(f"nothing firing ({total} notification(s) archived in {directory})")
        return
    table = Table(title=f"{len(firing)} alert(s) firing", title_justify="left")
    for column in ("alert", "severity", "service"):
        table.add_column(column, no_wrap=True)
    for column in ("since", "last notified", "summary"):
        table.add_column(column)
    for alert in firing:
        table.add_row(
            alert.name,
            alert.labels.get("severity", "-"),
            alert.labels.get("service", "-"),
            alert.starts_at[:19].replace("T", " "),
            f"{alert.received_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
            alert.annotations.get("summary", ""),
        )
    console.print(table)


@alerts_app.command("receiver")
def receiver_cmd(
    port: int = typer.Option(
        TOOL_PORTS["alert-receiver"], "--port", min=1, max=65535, help="Listen port."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Listen address."),
    directory: Path = DirOption,
    retention_days: int = typer.Option(
        DEFAULT_RETENTION_DAYS, "--retention-days", min=1, help="Delete day files older than this."
    ),
) -> None:
    """Run the webhook receiver Alertmanager sends to (POST /alerts/<channel>)."""
    code = serve(directory, port=port, host=host, retention_days=retention_days)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``alerts tail``, ``alerts status`` and ``alerts receiver`` to the top-level app."""
    app.add_typer(alerts_app, name="alerts")
