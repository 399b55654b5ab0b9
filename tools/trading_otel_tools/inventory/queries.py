"""Every PromQL expression we ship, with where it comes from.

Sources: alert and recording rules, dashboard targets and template variables, the Tempo
datasource's ``tracesToMetrics`` queries, runbook ``promql`` fences, and the queries the
``investigate`` and ``demo`` commands send. Grafana macros are filled the way Grafana would
(``$__rate_interval`` -> ``1m``, variables -> ``.*``), so each expression can be parsed and
run as is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trading_otel_tools import home

_MACROS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "${__range}": "1h",
    "${__rate_interval}": "1m",
    "${__interval}": "15s",
}
_VARIABLE = re.compile(r"\$\{?[A-Za-z_]\w*(?::\w+)?\}?")
_FENCE = re.compile(r"```promql\n(.*?)```", re.S)
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*([A-Za-z_]\w*)\s*\)\s*$", re.S)


@dataclass(frozen=True)
class Query:
    """One shipped expression.

    Attributes:
        origin: Where it lives, e.g. ``alerts.yml: ServiceDown``.
        expr: The PromQL, runnable as is.
        kind: ``alert`` | ``record`` | ``panel`` | ``variable`` | ``datasource`` |
            ``runbook`` | ``cli``.
        conditional: For panels: the fault or action that fills it (empty: always).
        extra_labels: Label keys the expression needs beyond its selectors
            (``label_values(metric, label)`` needs ``label``).
    """

    origin: str
    expr: str
    kind: str
    conditional: str = ""
    extra_labels: frozenset[str] = frozenset()


def fill_grafana(expr: str) -> str:
    """Fill Grafana's macros and template variables so the query runs in Prometheus."""
    out = expr.replace("$$", "$")
    out = out.replace("{$__tags}", "{}").replace(",$__tags", "").replace("$__tags", "")
    for macro, value in _MACROS.items():
        out = out.replace(macro, value)
    return _VARIABLE.sub(".*", out)


def rules(rules_dir: Path | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(file name, rule)`` for every rule of the shipped rule files."""
    rules_dir = rules_dir or home.checkout().rules_dir
    for path in sorted(rules_dir.glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                yield path.name, rule


def recording_rules(rules_dir: Path | None = None) -> dict[str, str]:
    """Recording rule name -> expression."""
    return {r["record"]: str(r["expr"]) for _, r in rules(rules_dir) if "record" in r}


def _dashboard_panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in doc.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def panel_queries(path: Path) -> Iterator[Query]:
    """The Prometheus targets of one dashboard's panels."""
    doc = json.loads(path.read_text())
    for panel in _dashboard_panels(doc):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if not expr or target.get("hide"):
                continue
            title = panel.get("title", f"panel {panel.get('id')}")
            yield Query(f"{path.name}: {title} [{target.get('refId', 'A')}]",
                        fill_grafana(expr), "panel", str(panel.get("conditional", "")))  # fmt: skip


def variable_queries(path: Path) -> Iterator[Query]:
    """Template variables of one dashboard that query Prometheus."""
    doc = json.loads(path.read_text())
    for var in doc.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        raw = var.get("query")
        text = raw.get("query", "") if isinstance(raw, dict) else str(raw or "")
        match = _LABEL_VALUES.match(text)
        if match:
            yield Query(f"{path.name}: ${var.get('name')}", fill_grafana(match.group(1)),
                        "variable", extra_labels=frozenset({match.group(2)}))  # fmt: skip
        elif text and not text.startswith("label_names"):
            yield Query(f"{path.name}: ${var.get('name')}", fill_grafana(text), "variable")


def shipped_queries() -> list[Query]:
    """Every PromQL expression this repository ships or sends."""
    out: list[Query] = []
    for file, rule in rules():
        kind = "alert" if "alert" in rule else "record"
        out.append(Query(f"{file}: {rule.get('alert') or rule.get('record')}",
                         str(rule["expr"]), kind))  # fmt: skip
    for path in sorted(home.checkout().dashboards.glob("*.json")):
        out.extend(panel_queries(path))
        out.extend(variable_queries(path))
    doc = yaml.safe_load(home.checkout().datasources.read_text())
    for source in doc.get("datasources", []):
        metrics = source.get("jsonData", {}).get("tracesToMetrics", {})
        for q in metrics.get("queries", []):
            out.append(Query(f"datasources.yaml: {source['name']} tracesToMetrics {q['name']}",
                             fill_grafana(q["query"]), "datasource"))  # fmt: skip
    for path in sorted(home.checkout().runbooks.glob("*.md")):
        for block in _FENCE.findall(path.read_text()):
            for line in block.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    out.append(Query(f"runbooks/{path.name}", line.strip(), "runbook"))
    out.extend(cli_queries())
    return out


def cli_queries() -> list[Query]:
    """The queries ``investigate`` and ``demo`` send, built by their own code."""
    from trading_otel_tools.demo import LATENCY_QUERY, SCRAPE_QUERY
    from trading_otel_tools.investigate.core import METRIC
    from trading_otel_tools.investigate.spikes import latency_query

    return [
        Query("investigate: latency", latency_query(METRIC, 0.99, "1m"), "cli"),
        Query("investigate: exemplars", f"{METRIC}_bucket", "cli"),
        Query("demo: latency", LATENCY_QUERY, "cli"),
        Query("demo: last scrape", SCRAPE_QUERY, "cli"),
    ]


def promtool_input_series(tests_dir: Path | None = None) -> list[Query]:
    """The input series of the promtool rule tests, as selectors."""
    tests_dir = tests_dir or home.checkout().promtool_tests
    out = []
    for path in sorted(tests_dir.glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for test in doc.get("tests", []):
            for series in test.get("input_series", []):
                out.append(Query(f"{path.name}: {test.get('name', '?')}",
                                 str(series["series"]), "promtool"))  # fmt: skip
    return out
