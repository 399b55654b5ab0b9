"""``trading-otel investigate``: from an order latency spike to the slow span and its logs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trading_otel_tools.investigate import (
    ExemplarStorageError,
    InvestigateOptions,
    PrometheusError,
    SourceError,
    investigate,
    render_html,
    render_json,
    render_text,
)
from trading_otel_tools.investigate.core import now
from trading_otel_tools.investigate.timeparse import parse_duration, parse_instant
from trading_otel_tools.ports import local_url


def _time_range(since: str, start: str | None, end: str | None) -> tuple[float, float]:
    try:
        end_ts = parse_instant(end) if end else now()
        if start:
            return parse_instant(start), end_ts
        return end_ts - parse_duration(since), end_ts
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def investigate_command(
    since: Annotated[
        str, typer.Option(help="Look back this far from now (or from --end).")
    ] = "15m",
    start: Annotated[
        str | None, typer.Option(help="Range start: RFC 3339 or unix seconds (overrides --since).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Range end: RFC 3339 or unix seconds.")] = None,
    slo: Annotated[str, typer.Option(help="Latency objective, e.g. 250ms or 0.5s.")] = "250ms",
    quantile: Annotated[float, typer.Option(help="Quantile compared with the SLO.")] = 0.99,
    prometheus: Annotated[str, typer.Option(help="Prometheus base URL.")] = local_url("prometheus"),
    tempo: Annotated[
        str | None, typer.Option(help="Tempo base URL; default: the local trace files.")
    ] = None,
    loki: Annotated[
        str | None, typer.Option(help="Loki base URL; default: the local log files.")
    ] = None,
    telemetry_dir: Annotated[
        Path, typer.Option(help="Where the local collector writes traces*.jsonl and logs*.jsonl.")
    ] = Path("var/telemetry"),
    grafana: Annotated[
        str | None, typer.Option(help="Grafana base URL, for Explore links.")
    ] = None,
    rate_window: Annotated[str, typer.Option(help="Range of rate() in the quantile query.")] = "1m",
    max_traces: Annotated[int, typer.Option(help="Slow (and baseline) traces to fetch.")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML report to this file.")
    ] = None,
) -> None:
    """Find order latency spikes, follow their exemplars to traces, name the slow span."""
    lo, hi = _time_range(since, start, end)
    try:
        slo_s = parse_duration(slo)
        parse_duration(rate_window)
        options = InvestigateOptions(
            start=lo, end=hi, slo=slo_s, quantile=quantile, prometheus=prometheus, tempo=tempo,
            loki=loki, telemetry_dir=telemetry_dir, grafana=grafana, rate_window=rate_window,
            max_traces=max_traces,
        )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    err = Console(stderr=True)
    try:
        with err.status("Investigating...") as status:
            report = investigate(options, progress=lambda msg: status.update(msg))
    except (PrometheusError, ExemplarStorageError, SourceError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(report), encoding="utf-8")
        err.print(f"HTML report written to {html}", highlight=False)
    typer.echo(render_json(report) if json_out else render_text(report), nl=False)


def register(app: typer.Typer) -> None:
    """Add ``investigate`` to the top-level app."""
    app.command("investigate")(investigate_command)
