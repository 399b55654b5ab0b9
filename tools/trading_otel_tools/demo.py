"""``trading-otel demo``: the main job, end to end, on this machine.

Install what is missing → start the local stack → order load with a broker latency spike
in the middle → wait until Prometheus has scraped the whole run → ``investigate`` that
window → wait for the fired latency alert and its diagnosis in the alert archive → say
where to look. Every step reports progress through ``say``.

The demo's stack runs the *demo rule profile*: the shipped rules with every ``for:`` cut to
:data:`DEMO_RULES_FOR` (``var/stack/rules-demo``, regenerated on each run), so the SLO
fast-burn alert fires within the run instead of minutes after it. Only a stack the demo
itself starts gets the profile; one already running keeps its rules.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import httpx

from trading_otel_tools.alerts import ArchivedAlert, read_archive
from trading_otel_tools.alerts.diagnosis import LATENCY_ALERTS
from trading_otel_tools.alerts.profile import write_profile
from trading_otel_tools.alerts.rules import ActiveAlert, RulesError, active_alerts
from trading_otel_tools.collector.build import BuildError, build, is_current
from trading_otel_tools.investigate import (
    InvestigateOptions,
    Report,
    investigate,
    render_html,
    render_json,
)
from trading_otel_tools.stack import StackConfig, run_load, up
from trading_otel_tools.stack.load import LoadReport, Spike

Say = Callable[[str], None]

LATENCY_QUERY = (
    "histogram_quantile(0.99, sum by (le) (rate(trading_order_latency_seconds_bucket[1m])))"
)
#: Every alert's ``for:`` in the demo rule profile (see the module docstring).
DEMO_RULES_FOR = "5s"
#: The alert the demo waits for, and how long after the load it may take to be diagnosed.
DEMO_ALERT = "OrderLatencySLOFastBurn"
#: The time of the newest order-latency sample Prometheus holds.
SCRAPE_QUERY = "max(timestamp(trading_order_latency_seconds_count))"


class DemoError(RuntimeError):
    """A demo step failed; the message says which and why."""


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs. The defaults take about three minutes once installs are cached."""

    rate: float = 15.0
    duration_s: float = 90.0
    spike_ms: float = 600.0
    spike_at_s: float = 35.0
    spike_for_s: float = 25.0
    spike_fraction: float = 0.6
    slo_s: float = 0.25
    scrape_wait_s: float = 45.0
    diagnosis_wait_s: float = 30.0

    def validate(self) -> None:
        """Raise ValueError naming the first option that makes no sense."""
        if self.rate <= 0:
            raise ValueError(f"--rate must be > 0, got {self.rate}")
        if self.duration_s < 30:
            raise ValueError(f"--duration must be at least 30 s, got {self.duration_s}")
        if not 0 < self.spike_fraction <= 1:
            raise ValueError(f"--spike-fraction must be in (0, 1], got {self.spike_fraction}")
        if self.spike_at_s + self.spike_for_s > self.duration_s:
            raise ValueError("the spike must end before the load does")


@dataclass
class DemoResult:
    """What the demo produced, for the CLI and for tests."""

    load: LoadReport
    report: Report
    load_start: float
    load_end: float
    html_path: Path
    json_path: Path
    wall_s: float
    alerts: list[ActiveAlert]
    alerts_error: str = ""
    diagnosed: ArchivedAlert | None = None
    """The run's fired latency alert as archived, with its diagnosis when it came in time."""


def ensure_collector(say: Say) -> None:
    """Build the collector distribution unless the cached binary matches the manifest."""
    if is_current():
        say("collector: cached build matches collector/manifest.yaml")
        return
    say("collector: building bin/otelcol-trading with ocb (first build takes minutes)")
    last = [0.0]

    def progress(line: str, elapsed: float) -> None:
        if elapsed - last[0] >= 15:
            last[0] = elapsed
            say(f"collector: still building ({elapsed:.0f}s) {line[:80]}")

    try:
        result = build(progress=progress)
    except BuildError as exc:
        raise DemoError(f"collector build failed: {exc}") from exc
    say(f"collector: built in {result.seconds:.0f}s")


def wait_for_scrape(prom_url: str, after: float, timeout_s: float, say: Say) -> None:
    """Wait until Prometheus holds an order-latency sample newer than ``after``."""
    deadline = time.monotonic() + timeout_s
    query = SCRAPE_QUERY
    last_err = ""
    while time.monotonic() < deadline:
        try:
            resp = httpx.get(f"{prom_url}/api/v1/query", params={"query": query}, timeout=5)
            result = resp.json().get("data", {}).get("result", [])
            if result and float(result[0]["value"][1]) >= after:
                return
            last_err = "no sample after the load ended yet"
        except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
            last_err = str(exc)
        time.sleep(2)
    say(f"prometheus: gave up waiting for the last scrape ({last_err}); investigating anyway")


def demo_config(config: StackConfig) -> StackConfig:
    """``config`` running the demo rule profile (written under its ``var_dir``)."""
    rules = write_profile(config.var_dir / "stack" / "rules-demo", max_for=DEMO_RULES_FOR)
    return replace(config, rules_dir=rules)


def archived_latency_alert(archive_dir: Path, since: float) -> ArchivedAlert | None:
    """The latest latency alert firing in the archive since ``since``: the fast-burn first."""
    after = datetime.fromtimestamp(since, UTC)
    alerts = [a for a in read_archive(archive_dir, since=after).alerts
              if a.name in LATENCY_ALERTS and a.status == "firing"]  # fmt: skip
    if not alerts:
        return None
    preferred = [a for a in alerts if a.name == DEMO_ALERT] or alerts
    diagnosed = [a for a in preferred if a.diagnosis is not None]
    return (diagnosed or preferred)[-1]


def wait_for_diagnosis(archive_dir: Path, since: float, timeout_s: float, say: Say
                       ) -> ArchivedAlert | None:  # fmt: skip
    """Wait until a latency alert archived since ``since`` carries its diagnosis."""
    deadline = time.monotonic() + timeout_s
    said = False
    while True:
        alert = archived_latency_alert(archive_dir, since)
        if alert is not None and alert.diagnosis is not None:
            return alert
        if time.monotonic() >= deadline:
            return alert
        if alert is not None and not said:
            say(f"alerts: {alert.name} archived, waiting for its diagnosis")
            said = True
        time.sleep(1)


def run_demo(config: StackConfig, opts: DemoOptions, say: Say, *, install: bool = True,
             on_tick: Callable[[float], None] | None = None) -> DemoResult:  # fmt: skip
    """Run the whole demo. Leaves the stack running; ``trading-otel down`` stops it."""
    opts.validate()
    wall = time.monotonic()
    config = demo_config(config)
    ensure_collector(say)
    say("stack: starting Postgres, Redis, collector, alerting, Prometheus and the services")
    up(config, install=install, report=lambda m: say(f"stack: {m}"))
    say(
        f"load: {opts.rate:g} orders/s for {opts.duration_s:g}s; broker spike of "
        f"{opts.spike_ms:g} ms on {opts.spike_fraction:.0%} of orders from "
        f"t={opts.spike_at_s:g}s for {opts.spike_for_s:g}s"
    )
    spike = Spike(opts.spike_ms, opts.spike_at_s, opts.spike_for_s, opts.spike_fraction)
    load_start = time.time()
    load = run_load(config, rate=opts.rate, duration_s=opts.duration_s, spike=spike,
                    on_tick=on_tick)  # fmt: skip
    load_end = time.time()
    if load.sent and load.errors == load.sent:
        raise DemoError(f"every order failed; see the service logs under {config.log_dir}")
    prom = config.url("prometheus")
    say("prometheus: waiting for the final scrape of the run")
    wait_for_scrape(prom, load_end, opts.scrape_wait_s, say)
    options = InvestigateOptions(start=load_start - 30, end=time.time(), slo=opts.slo_s,
                                 prometheus=prom, telemetry_dir=config.telemetry_dir)  # fmt: skip
    report = investigate(options, progress=lambda m: say(f"investigate: {m}"))
    out = config.var_dir / "reports"
    out.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out / "demo-investigation.html", out / "demo-investigation.json"
    html_path.write_text(render_html(report), encoding="utf-8")
    json_path.write_text(render_json(report), encoding="utf-8")
    alerts: list[ActiveAlert] = []
    alerts_error = ""
    try:
        alerts = active_alerts(prom)
    except RulesError as exc:
        alerts_error = str(exc)
    say("alerts: waiting for the fired latency alert and its diagnosis in the archive")
    diagnosed = wait_for_diagnosis(config.var_dir / "alerts", load_start, opts.diagnosis_wait_s,
                                   say)  # fmt: skip
    return DemoResult(load, report, load_start, load_end, html_path, json_path,
                      time.monotonic() - wall, alerts, alerts_error, diagnosed)  # fmt: skip


def alert_lines(result: DemoResult) -> list[str]:
    """The alerts Prometheus holds at the end of the run, pending ones with their firing time."""
    if result.alerts_error:
        return [f"could not read alert state: {result.alerts_error}"]
    if not result.alerts:
        return ["no alert pending or firing"]
    lines = [alert.describe() for alert in result.alerts]
    lines.append("firing alerts reach the archive through Alertmanager: trading-otel alerts tail")
    return lines


def diagnosis_lines(result: DemoResult) -> list[str]:
    """The run's fired latency alert with its diagnosis: the text a chat channel receives."""
    alert = result.diagnosed
    if alert is None:
        return ["no latency alert reached the archive during the run (trading-otel alerts tail)"]
    head = (f"{alert.name} ({alert.labels.get('severity', '-')}, "
            f"{alert.labels.get('service', '-')}) fired at {alert.starts_at[:19]}Z, "
            f"archived via {alert.channel}")  # fmt: skip
    d = alert.diagnosis
    if d is None:
        return [head, "its diagnosis is still running: trading-otel alerts tail shows it"]
    lines = [head, f"diagnosis {d.get('status')} {d.get('fired_to_diagnosis_s')} s after it "
             "fired; the message a chat channel receives:", ""]  # fmt: skip
    lines += ["  " + line for line in str(d.get("message", "")).splitlines()]
    report = d.get("report") or {}
    if report.get("path"):
        lines += ["", f"diagnosis report: {report['path']}"]
        if report.get("url"):
            lines.append(f"             or: {report['url']}")
    return lines


def where_to_look(config: StackConfig, result: DemoResult) -> list[str]:
    """The closing pointers: graph URL, alert archive, telemetry files, how to stop."""
    span = max(5, int((time.time() - result.load_start) / 60) + 2)
    graph = f"{config.url('prometheus')}/graph?" + urllib.parse.urlencode(
        {"g0.expr": LATENCY_QUERY, "g0.tab": "0", "g0.range_input": f"{span}m"}
    )
    return [
        f"latency graph:  {graph}",
        f"alert archive:  {config.var_dir / 'alerts'}  (trading-otel alerts tail)",
        f"traces, logs:   {config.telemetry_dir}",
        f"report:         {result.html_path}  and  {result.json_path}",
        f"service logs:   {config.log_dir}",
        "stop the stack: trading-otel down",
    ]
