"""``trading-otel alerts tail|status|receiver``: the local alert archive."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from trading_otel_tools.alerts import ArchivedAlert, current_state, read_archive
from trading_otel_tools.alerts.archive import DEFAULT_RETENTION_DAYS, REPORTS_DIR
from trading_otel_tools.alerts.diagnosis import (
    DEFAULT_BUDGET_S,
    LATENCY_ALERTS,
    PENDING_FOR_S,
    DiagnosisConfig,
    one_line,
    read_secret_url,
)
from trading_otel_tools.alerts.receiver import serve
from trading_otel_tools.ports import TOOL_PORTS, local_url

alerts_app = typer.Typer(
    help="Read the alert archive (var/alerts/<date>.jsonl) or run its webhook receiver.",
    no_args_is_help=True,
)

DirOption = typer.Option(
    Path("var/alerts"), "--dir", help="Archive directory.", file_okay=False, dir_okay=True
)


TelemetryDirOption = typer.Option(
    Path("var/telemetry"), help="Telemetry files (traces, logs) when no Tempo/Loki is set."
)
ChatUrlFileOption = typer.Option(
    None,
    "--chat-webhook-url-file",
    help="File holding a chat incoming-webhook URL; each diagnosis is posted there.",
)
JsonOption = typer.Option(False, "--json", help="One JSON object per alert, diagnosis included.")


FirstSeen = dict[tuple[str, str], datetime]


def _first_seen(alerts: list[ArchivedAlert]) -> FirstSeen:
    """When each alert (fingerprint and start) was first archived."""
    first: FirstSeen = {}
    for alert in alerts:
        first.setdefault(_diagnosis_key(alert), alert.received_at)
    return first


def _diagnosis(alert: ArchivedAlert, first_seen: FirstSeen | None = None) -> str:
    """The diagnosis line of a latency alert; empty for other alerts and resolutions.

    Without a diagnosis, "pending" while the alert is young enough for one to come
    (``PENDING_FOR_S`` since it was first archived), else it never got one.
    """
    if alert.diagnosis is None and (alert.name not in LATENCY_ALERTS or alert.status != "firing"):
        return ""
    if alert.diagnosis is None:
        since = (first_seen or {}).get(_diagnosis_key(alert), alert.received_at)
        if (datetime.now(UTC) - since).total_seconds() > PENDING_FOR_S:
            return "no diagnosis archived"
    return one_line(alert.diagnosis)


def _line(alert: ArchivedAlert, first_seen: FirstSeen | None = None) -> str:
    labels = alert.labels
    summary = alert.annotations.get("summary", "")
    line = (
        f"{alert.received_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z  {alert.status:<8} "
        f"{labels.get('severity', '-'):<8} {alert.name:<26} "
        f"service={labels.get('service', '-')}  via {alert.channel}  {summary}"
    )
    diagnosis = _diagnosis(alert, first_seen)
    return f"{line}  | {diagnosis}" if diagnosis else line


def _json(alert: ArchivedAlert, first_seen: FirstSeen | None = None) -> str:
    record = asdict(alert)
    record["received_at"] = alert.received_at.isoformat(timespec="milliseconds")
    record["name"] = alert.name
    return json.dumps(record, sort_keys=True)


def _warn_bad(bad: int) -> None:
    if bad:
        typer.secho(f"warning: skipped {bad} unreadable archive line(s)", err=True, fg="yellow")


@alerts_app.command("tail")
def tail_cmd(
    lines: int = typer.Option(20, "--lines", "-n", min=1, help="How many alerts to show."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new alerts."),
    directory: Path = DirOption,
    as_json: bool = JsonOption,
) -> None:
    """Print the most recent archived alert notifications, oldest first.

    A latency alert's line ends with its diagnosis (pending until the investigation ends).
    """
    result = read_archive(directory)
    _warn_bad(result.bad_lines)
    show = _json if as_json else _line
    if not result.alerts and not follow:
        if not as_json:
            typer.echo(f"no alerts archived in {directory}")
        return
    first_seen = _first_seen(result.alerts)
    for alert in result.alerts[-lines:]:
        typer.echo(show(alert, first_seen))
    if not follow:
        return
    seen = len(result.alerts)
    diagnosed = {_diagnosis_key(a) for a in result.alerts if a.diagnosis is not None}
    try:
        while True:
            time.sleep(1.0)
            alerts = read_archive(directory).alerts
            first_seen = _first_seen(alerts)
            # A diagnosis lands after its alert was printed: print the alert again, once.
            late = {_diagnosis_key(a): a for a in alerts[:seen] if a.diagnosis is not None}
            for key, alert in late.items():
                if key not in diagnosed:
                    typer.echo(show(alert, first_seen))
            for alert in alerts[seen:]:
                typer.echo(show(alert, first_seen))
            diagnosed = {_diagnosis_key(a) for a in alerts if a.diagnosis is not None}
            seen = len(alerts)
    except KeyboardInterrupt:
        return


def _diagnosis_key(alert: ArchivedAlert) -> tuple[str, str]:
    return alert.fingerprint, alert.starts_at


@alerts_app.command("status")
def status_cmd(
    directory: Path = DirOption,
    since: int = typer.Option(
        DEFAULT_RETENTION_DAYS, "--days", min=1, help="Only look at this many recent days."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Show the alerts whose latest notification says they are still firing."""
    result = read_archive(directory, since=datetime.now(UTC) - timedelta(days=since))
    _warn_bad(result.bad_lines)
    firing = current_state(result.alerts)
    first_seen = _first_seen(result.alerts)
    if as_json:
        for alert in firing:
            typer.echo(_json(alert))
        return
    console = Console()
    if not firing:
        total = len(result.alerts)
        console.print(f"nothing firing ({total} notification(s) archived in {directory})")
        return
    table = Table(title=f"{len(firing)} alert(s) firing", title_justify="left")
    for column in ("alert", "severity", "service"):
        table.add_column(column, no_wrap=True)
    for column in ("since", "last notified", "summary", "diagnosis"):
        table.add_column(column)
    for alert in firing:
        table.add_row(
            alert.name,
            alert.labels.get("severity", "-"),
            alert.labels.get("service", "-"),
            alert.starts_at[:19].replace("T", " "),
            f"{alert.received_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
            alert.annotations.get("summary", ""),
            _diagnosis(alert, first_seen),
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
    prometheus: str = typer.Option(local_url("prometheus"), help="Prometheus, for diagnoses."),
    telemetry_dir: Path = TelemetryDirOption,
    tempo: str | None = typer.Option(None, help="Tempo base URL for the traces."),
    loki: str | None = typer.Option(None, help="Loki base URL for the logs."),
    grafana: str | None = typer.Option(
        None, help="Grafana base URL, for Explore links (none: the message lists trace ids)."
    ),
    report_base_url: str | None = typer.Option(
        None, help="URL the reports are linked under (default: this receiver's /reports)."
    ),
    budget: float = typer.Option(
        DEFAULT_BUDGET_S, "--diagnosis-budget", min=1, help="Seconds per diagnosis."
    ),
    chat_url_file: Path | None = ChatUrlFileOption,
    diagnose: bool = typer.Option(
        True, "--diagnosis/--no-diagnosis", help="Diagnose firing order-latency alerts."
    ),
) -> None:
    """Run the webhook receiver Alertmanager sends to (POST /alerts/<channel>).

    Firing order-latency alerts are archived at once, then diagnosed in the background
    (``trading-otel investigate`` over the alert's window); the diagnosis is appended to
    the archive and its HTML report written to ``<dir>/reports``.
    """
    try:
        chat_url = read_secret_url(chat_url_file)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--chat-webhook-url-file") from exc
    diagnosis = (
        DiagnosisConfig(
            prometheus=prometheus,
            telemetry_dir=telemetry_dir,
            tempo=tempo,
            loki=loki,
            grafana=grafana,
            reports_dir=directory / REPORTS_DIR,
            budget_s=budget,
            report_base_url=report_base_url,
            chat_webhook_url=chat_url,
        )
        if diagnose
        else None
    )
    code = serve(
        directory, port=port, host=host, retention_days=retention_days, diagnosis=diagnosis
    )
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``alerts tail``, ``alerts status`` and ``alerts receiver`` to the top-level app."""
    app.add_typer(alerts_app, name="alerts")
