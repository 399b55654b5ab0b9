"""Worst-case alert latency of each deployment mode, computed from the shipped configs.

From a condition turning true inside a service to the notification leaving Alertmanager,
for an alert with no ``for:``, each stage below holds the change back by at most its
interval, and in the worst case every one of them does:

1. SDK metric export: the service pushes its metrics every ``OTEL_METRIC_EXPORT_INTERVAL``.
2. Collector ``batch`` processors on the metrics path, one per collector the data crosses
   (agent and gateway on Kubernetes): a batch leaves at its ``timeout`` at the latest.
3. The Prometheus scrape of the collector's exporter (job ``otel-collector-exporter``).
4. Rule evaluation: the alert's group runs every ``evaluation_interval`` (or its own
   ``interval``), plus any ``query_offset``. An alert with no ``for:`` fires on the first
   evaluation that sees it.
5. Alertmanager's ``group_wait`` on the route (receiver) the alert takes.

Not counted: network and processing time (milliseconds), retries after a failure, and the
time a scrape takes (one that reaches ``scrape_timeout`` fails and brings nothing). On top
come each alert's ``for:``, one more evaluation for an alert that reads a recording rule,
and ``group_interval`` instead of ``group_wait`` for an alert joining a group that has
already notified.

``python -m trading_otel_tools.alerts.latency`` prints the figures; ``--markdown`` prints the
block of docs/alerting.md, and ``--update docs/alerting.md`` rewrites it there (make docs).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trading_otel_tools.alerts.deployments import MODES, Deployment
from trading_otel_tools.alerts.stages import (
    Route,
    Stage,
    collector_stages,
    evaluation,
    export_stage,
    query_offset,
    routes,
    rule_groups,
    scrape_stage,
)

#: The alert budget the desk asked for.
BUDGET_S = 60.0
BEGIN = "<!-- generated: alert-latency (do not edit; make docs) -->"
END = "<!-- end generated: alert-latency -->"


@dataclass(frozen=True)
class ModeLatency:
    """The worst case of one deployment mode: the shared stages, then one wait per route."""

    mode: str
    pipeline: tuple[Stage, ...]
    routes: tuple[Route, ...]
    no_for: tuple[str, ...]
    """Alerts with no ``for:``; the table is their worst case."""
    recording_readers: tuple[str, ...]
    """Alerts that read a recording rule: one more evaluation on top (all have a ``for:``
    unless the pipeline already holds that stage)."""

    @property
    def pipeline_s(self) -> float:
        return sum(stage.seconds for stage in self.pipeline)

    def total(self, route: Route) -> float:
        return self.pipeline_s + route.group_wait.seconds

    @property
    def worst(self) -> Route:
        return max(self.routes, key=self.total)

    @property
    def worst_s(self) -> float:
        return self.total(self.worst)


# --- the whole path ------------------------------------------------------------------


def _reads(expr: str, name: str) -> bool:
    return re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", expr) is not None


def mode_latency(dep: Deployment) -> ModeLatency:
    """Every stage of ``dep``, read from its files."""
    batches, exporter = collector_stages(dep)
    rule_eval, recording, alerts = evaluation(dep)
    records = {
        str(r["record"]) for _, g in rule_groups(dep) for r in g.get("rules") or [] if "record" in r
    }
    readers = tuple(a["alert"] for a in alerts if any(_reads(a["expr"], r) for r in records))
    no_for = tuple(a["alert"] for a in alerts if "for" not in a)
    pipeline = [export_stage(dep), *batches, scrape_stage(dep, exporter), rule_eval]
    if (offset := query_offset(dep)) is not None:
        pipeline.append(offset)
    if recording is not None and set(no_for) & set(readers):
        pipeline.append(recording)  # then a no-`for:` alert waits for the recording group
    severities = list(dict.fromkeys(str(a["labels"]["severity"]) for a in alerts))
    return ModeLatency(dep.mode, tuple(pipeline), tuple(routes(dep, severities)), no_for, readers)


def compute(modes: Sequence[str] | None = None) -> list[ModeLatency]:
    """The latency of each shipped mode (all by default), from the files in this checkout."""
    return [mode_latency(MODES[m]()) for m in modes or MODES]


# --- output --------------------------------------------------------------------------


def _s(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _md_where(where: str) -> str:
    path, _, rest = where.partition(":")
    return f"`{path}`:{rest}" if rest else where


def _worst_routes(r: ModeLatency) -> str:
    worst = [rt for rt in r.routes if r.total(rt) == r.worst_s]
    if len(worst) == len(r.routes):
        return "every route"
    return ", ".join(f"{rt.severity} → {rt.receiver}" for rt in worst)


def render_markdown(results: Sequence[ModeLatency]) -> str:
    """The generated block of docs/alerting.md, markers included."""
    lines = [BEGIN, "", "| mode | worst case | on the route |", "|---|---|---|"]
    for r in results:
        lines.append(f"| {r.mode} | **{_s(r.worst_s)}** | {_worst_routes(r)} |")
    for r in results:
        lines += ["", f"**{r.mode}**", "", "| stage | worst case | set in |", "|---|---|---|"]
        lines += [f"| {s.what} | {_s(s.seconds)} | {_md_where(s.where)} |" for s in r.pipeline]
        lines += [f"| up to the alert firing | {_s(r.pipeline_s)} | |", ""]
        lines += [
            "| severity → receiver | group_wait | worst case | group_wait set in "
            "| group_interval |",
            "|---|---|---|---|---|",
        ]
        for rt in r.routes:
            wait, where = _s(rt.group_wait.seconds), _md_where(rt.group_wait.where)
            lines.append(
                f"| {rt.severity} → {rt.receiver} | {wait} | **{_s(r.total(rt))}** | {where} "
                f"| {_s(rt.group_interval_s)} |"
            )
    first = results[0]
    lines += [
        "",
        f"Alerts with no `for:`: {', '.join(first.no_for) or 'none'}. Every other alert "
        "adds its `for:` on top.",
    ]
    if first.recording_readers and not set(first.no_for) & set(first.recording_readers):
        lines += [
            "",
            f"Alerts that read a recording rule ({', '.join(first.recording_readers)}) wait up "
            "to one more evaluation interval on top of that.",
        ]
    return "\n".join([*lines, "", END])


def render_text(results: Sequence[ModeLatency]) -> str:
    """A plain summary for the terminal."""
    out = []
    for r in results:
        out.append(
            f"{r.mode}: worst case {_s(r.worst_s)} ({r.worst.severity} -> "
            f"{r.worst.receiver}); budget {_s(BUDGET_S)}"
        )
        out += [f"  {_s(s.seconds):>8}  {s.what}  [{s.where}]" for s in r.pipeline]
        for rt in r.routes:
            out.append(
                f"  {_s(rt.group_wait.seconds):>8}  group_wait {rt.severity} -> "
                f"{rt.receiver}: total {_s(r.total(rt))}"
            )
    return "\n".join(out)


def replace_block(text: str, block: str) -> str:
    """``text`` with the part between the markers (included) replaced by ``block``."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers {BEGIN!r} ... {END!r} are missing")
    return text[:start] + block + text[end + len(END) :]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trading_otel_tools.alerts.latency", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--markdown", action="store_true", help="print the docs block")
    parser.add_argument("--update", type=Path, metavar="DOC", help="rewrite the block in DOC")
    args = parser.parse_args(argv)
    results = compute()
    if args.update is not None:
        doc: Path = args.update
        doc.write_text(replace_block(doc.read_text(), render_markdown(results)))
    elif args.markdown:
        print(render_markdown(results))
    else:
        print(render_text(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
