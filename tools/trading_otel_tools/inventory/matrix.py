"""The fault matrix: for each shipped alert, what makes it fire on the local stack.

This table is the test plan a trading desk writes for its monitoring. ``run`` executes it
against the real stack; ``docs/alerting.md`` prints it (``make docs``). Each alert has
either a real trigger (a ``trading-otel fault`` or an action on a process of the stack),
or a documented threshold override when one machine cannot honestly produce the
condition, so its expression still runs against real series.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trading_otel_tools.inventory.model import BASELINE as BASELINE_PHASE

__all__ = ["ACTIONS", "BASELINE_PHASE", "STEPS", "TRIGGERS", "Step", "Trigger", "markdown", "step"]

#: Actions the runner knows, besides ``trading-otel fault`` names.
ACTIONS: dict[str, str] = {
    "pause:orchestrator": "`trading-otel fault pause orchestrator` (SIGSTOP: its scrape "
    "times out and no trading cycle runs)",
    "pause:collector": "`trading-otel fault pause collector` (SIGSTOP: its scrapes time out, "
    "nothing is exported)",
    "unload:model": "`POST /api/v1/model/unload` on the signal service (back with reload)",
    "bad-auth": "orders sent with a wrong API key, 2 per second",
    "stop:downstream": "stop the gateway collector's Tempo/Loki stand-in (connection refused)",
    "reject:downstream": "the Tempo and Loki stand-ins refuse every push with a permanent "
    "error (gRPC INVALID_ARGUMENT, HTTP 400), as a backend rejecting bad or too-old data does",
    "none": "nothing: healthy load only; the threshold override shows the expression works",
}


@dataclass(frozen=True)
class Step:
    """One injection; every alert whose trigger names it is checked while it runs.

    Attributes:
        name: ``fault:<cli name>`` or an :data:`ACTIONS` key.
        params: Fault parameters (``trading-otel fault NAME --param k=v``).
        hold_s: How long the fault lasts at most (it is cleared as soon as every alert of
            the step has fired).
        background: Runs beside the other steps (long steps that disturb nothing else).
        setup: What the runner does before the injection, e.g. ``buy-position``.
        after: What the runner does when the step ends, e.g. ``reset-breaker``.
        expect: Further expressions the step waits for (bounded by ``hold_s``), so that
            the names a fault produces later than its alerts reach the inventory.
        fault_s: The fault's own duration. ``redis-down`` pauses every Redis client,
            the runner's too, so it cannot be cleared early: it ends by itself.
    """

    name: str
    params: dict[str, float] = field(default_factory=dict)
    hold_s: float = 90.0
    background: bool = False
    after: str = ""
    fault_s: float | None = None
    expect: tuple[str, ...] = ()
    setup: str = ""

    @property
    def lasts_s(self) -> float:
        """How long the injected fault lasts unless cleared earlier."""
        return self.fault_s if self.fault_s is not None else self.hold_s + 30.0

    @property
    def fault(self) -> str | None:
        return self.name.removeprefix("fault:") if self.name.startswith("fault:") else None

    def describe(self) -> str:
        if self.fault is not None:
            shown = " ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in self.params.items())
            return f"`trading-otel fault {self.fault}{' ' + shown if shown else ''}`"
        return ACTIONS[self.name]


@dataclass(frozen=True)
class Trigger:
    """How one alert is made to fire.

    Attributes:
        alert: The alert name in ``deploy/prometheus/rules/alerts.yml``.
        step: The :class:`Step` that produces the condition.
        override: ``(old, new)`` text replaced in the expression before it is evaluated,
            for conditions one machine cannot honestly produce (e.g. a nearly full disk):
            the real series are still evaluated, against a reachable threshold.
        why: Why an override is needed, or a note on the trigger.
        timeout_s: How long after the injection the expression may take to turn true.
    """

    alert: str
    step: str
    override: tuple[str, str] | None = None
    why: str = ""
    timeout_s: float = 90.0


#: Steps in the order they run (background steps start first and run beside the rest).
STEPS: tuple[Step, ...] = (
    Step("pause:orchestrator", hold_s=170.0, background=True),
    Step("bad-auth", hold_s=90.0, background=True),
    Step("fault:broker-spike", {"delay_ms": 1500.0, "fraction": 1.0}, hold_s=60.0),
    Step("fault:broker-reject", {"rate": 0.6}, hold_s=60.0),
    Step("fault:broker-disconnect", hold_s=60.0, after="reset-breaker"),
    Step("fault:feed-stall", hold_s=75.0),
    # A paused Redis blocks every client, ours too: the pause ends by itself.
    Step("fault:redis-down", hold_s=45.0, fault_s=45.0),
    Step("fault:pg-down", hold_s=45.0),
    Step("unload:model", hold_s=30.0, after="reload-model"),
    Step("fault:price-shock", {"pct": 15.0}, hold_s=45.0, setup="buy-position", after="flatten"),
    Step("none", hold_s=10.0),
    # Both queues (traces and logs) must overflow, so the drop counters of each exist.
    Step(
        "stop:downstream",
        hold_s=90.0,
        expect=(
            "otelcol_exporter_enqueue_failed_spans",
            "otelcol_exporter_enqueue_failed_log_records",
        ),
    ),
    # No alert of its own (export is already failing): it produces the send_failed_*
    # counters. Tempo's exporter retries with a growing backoff, so its first refused
    # retry can come half a minute after the step starts.
    Step(
        "reject:downstream",
        hold_s=75.0,
        expect=(
            "otelcol_exporter_send_failed_spans",
            "otelcol_exporter_send_failed_log_records",
        ),
    ),
    Step("pause:collector", hold_s=40.0),
)

#: The position the price-shock step buys first, so that a fall in price is a loss.
SHOCK_POSITION = ("TSLA", 3000.0)

TRIGGERS: tuple[Trigger, ...] = (
    Trigger("ServiceDown", "pause:orchestrator", timeout_s=60.0,
            why="the liveness scrape of a paused process times out, so `up` is 0"),
    Trigger("HeartbeatLapsed", "pause:orchestrator", timeout_s=170.0,
            why="no cycle completes while the orchestrator is paused; the last heartbeat "
            "ages past 120 s"),
    Trigger("FailedAuthAttempts", "bad-auth", why="each refused request counts in "
            "trading_auth_failures_total{reason}; the matrix stack runs with an API key"),
    Trigger("OrderLatencyHigh", "fault:broker-spike"),
    Trigger("OrderLatencySLOFastBurn", "fault:broker-spike"),
    Trigger("OrderLatencySLOSlowBurn", "fault:broker-spike", why="on a young stack its "
            "long-window branch fires: the 3-day window holds only the run"),
    Trigger("HighAPILatency", "fault:broker-spike"),
    Trigger("HighOrderRejectionRate", "fault:broker-reject"),
    Trigger("BrokerDisconnected", "fault:broker-disconnect"),
    Trigger("CircuitBreakerTripped", "fault:broker-disconnect"),
    Trigger("MarketDataStale", "fault:feed-stall", timeout_s=75.0),
    Trigger("RedisDown", "fault:redis-down", timeout_s=45.0),
    Trigger("HighAPIErrorRate", "fault:redis-down", timeout_s=45.0, why="the gateway "
            "answers 503 while Redis does not; broker-disconnect does not do it: its 502s "
            "stop as soon as the breaker opens and rejects with 200"),
    Trigger("DatabaseDown", "fault:pg-down", timeout_s=45.0, why="Postgres and its "
            "backends are paused: the services' readiness probes time out"),
    Trigger("ModelStale", "unload:model", timeout_s=30.0),
    Trigger("DailyLossLimitExceeded", "fault:price-shock", why=f"the step first buys "
            f"{SHOCK_POSITION[1]:g} {SHOCK_POSITION[0]}; quotes 15 % lower turn that into a "
            "loss beyond the 50 000 USD limit, through the real P&L gauge"),
    Trigger("UnusualPnLMove", "fault:price-shock", ("offset 15m", "offset 1m"),
            why="its 15-minute look-back needs a stack older than the whole matrix run; "
            "the real P&L series is compared with its value 1 minute earlier instead"),
    Trigger("PositionLimitBreached", "fault:price-shock",
            ('trading_risk_limit{limit="position_quantity"})',
             'trading_risk_limit{limit="position_quantity"}) * 0.2'),
            why="the gateway refuses any order that would cross the limit, so a breach "
            "needs a booking outside the order path; the real position (the step's "
            "3000 TSLA) is compared with 20 % of the real limit"),
    Trigger("HighMemoryUsage", "none", ("> 0.90", "> 0"), why="a test machine cannot be "
            "driven to 90 % memory without harming the run; the real "
            "system_memory_usage_bytes series are evaluated against a threshold of 0"),
    Trigger("HighCPUUsage", "none", ("> 0.90", "> 0"), why="sustained 90 % CPU on a "
            "shared 2-core machine would starve the stack under test; the real "
            "system_cpu_time_seconds_total series are evaluated against a threshold of 0"),
    Trigger("LowDiskSpace", "none", ("< 0.10", "< 1.01"), why="filling the disk to 90 % "
            "is destructive; the real system_filesystem_usage_bytes series are evaluated "
            "against a threshold every filesystem meets"),
    Trigger("TelemetryQueueNearFull", "stop:downstream", why="the gateway runs with "
            "TRADING_OTEL_EXPORT_QUEUE_SIZE=10 so its sending queues fill in seconds"),
    Trigger("TelemetryExportFailing", "stop:downstream", why="retries hold send_failed "
            "back for 5 minutes, but a full queue drops every new batch (enqueue_failed), "
            "which the alert counts as failed; a downstream that refuses data outright "
            "(the next step) counts as send_failed at once"),
    Trigger("CollectorDown", "pause:collector", timeout_s=40.0),
    Trigger("TailSamplingDroppedTraces", "none", override=("> 0", ">= 0"), why="the shipped "
            "gateway blocks instead of evicting undecided traces, so nothing is dropped too "
            "early; the real counter, scraped from the gateway, is evaluated at >= 0"),
)  # fmt: skip


def step(name: str) -> Step:
    """The step called ``name``.

    Raises:
        KeyError: no such step.
    """
    for s in STEPS:
        if s.name == name:
            return s
    raise KeyError(f"no step {name!r}; known: {[s.name for s in STEPS]}")


def markdown() -> str:
    """The fault matrix as a Markdown table (generated into docs/alerting.md)."""
    rows = [
        "| alert | trigger on the local stack | note |",
        "|---|---|---|",
    ]
    for t in TRIGGERS:
        how = step(t.step).describe()
        if t.override is not None:
            how += f"; threshold override `{t.override[0].strip()}` → `{t.override[1].strip()}`"
        rows.append(f"| {t.alert} | {how} | {t.why} |")
    return "\n".join(rows) + "\n"
