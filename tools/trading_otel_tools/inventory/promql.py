"""Check a PromQL expression against the inventory: every name and label key must exist.

Parsing is done by ``promql-parser`` (the Rust parser of the GreptimeDB project), so an
expression that Prometheus would reject is reported, and names are found in the syntax
tree rather than guessed by regular expressions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trading_otel_tools.inventory.model import SCRAPE_LABELS, SeriesName

try:
    import promql_parser as _pp
except ImportError:  # pragma: no cover - exercised only without the dev extra
    _pp = None  # type: ignore[assignment]


def _parser() -> Any:
    if _pp is None:
        raise RuntimeError(
            "checking PromQL needs the promql-parser package: pip install 'trading-otel[dev]'"
        )
    return _pp


@dataclass
class Parts:
    """What one expression uses: selected names, name regexes, label keys."""

    #: (metric name or None, name regex or None, label keys matched on that selector)
    selectors: list[tuple[str | None, str | None, frozenset[str]]] = field(default_factory=list)
    #: Label keys named in by/without/on/ignoring/group_left/group_right.
    grouping: set[str] = field(default_factory=set)
    #: Label keys an expression creates (label_replace / label_join destinations).
    created: set[str] = field(default_factory=set)


def parse(expr: str) -> Parts:
    """Split ``expr`` into the names and label keys it uses.

    Raises:
        ValueError: ``expr`` is not valid PromQL (the parser's message is kept).
    """
    pp = _parser()
    try:
        tree = pp.parse(expr)
    except Exception as exc:  # the binding raises a plain Exception subclass
        raise ValueError(f"invalid PromQL: {exc}") from exc
    parts = Parts()

    def visit(node: Any) -> None:
        if isinstance(node, pp.VectorSelector):
            name = node.name or None
            regex = None
            keys = set()
            for m in list(node.matchers.matchers) + [
                m for group in node.matchers.or_matchers for m in group
            ]:
                if m.name == "__name__":
                    if str(m.op).endswith("Equal"):
                        name = m.value
                    else:
                        regex = m.value
                else:
                    keys.add(m.name)
            parts.selectors.append((name, regex, frozenset(keys)))
        elif isinstance(node, pp.AggregateExpr) and node.modifier is not None:
            parts.grouping.update(node.modifier.labels)
        elif isinstance(node, pp.BinaryExpr) and node.modifier is not None:
            if node.modifier.matching is not None:
                parts.grouping.update(node.modifier.matching.labels)
            parts.grouping.update(node.modifier.group_labels or [])
        elif isinstance(node, pp.Call) and node.func.name in ("label_replace", "label_join"):
            dst = node.args[1]
            if isinstance(dst, pp.StringLiteral):
                parts.created.add(dst.val)

    pp.walk(tree, pre_visit=visit)
    return parts


def check(
    expr: str,
    known: Mapping[str, SeriesName],
    *,
    derived: Mapping[str, set[str]] | None = None,
) -> list[str]:
    """Problems of ``expr`` against known series: unknown names, label keys, grouping keys.

    Args:
        expr: A PromQL expression (Grafana macros already filled).
        known: Name -> recorded series (label keys), from the inventory.
        derived: Names produced by our own recording rules -> their label keys. They count
            as known even when the recording found no sample of them.

    Returns:
        One line per problem; empty when every name and label key exists.
    """
    try:
        parts = parse(expr)
    except ValueError as exc:
        return [str(exc)]
    derived = derived or {}
    problems: list[str] = []
    reachable: set[str] = set(parts.created) | SCRAPE_LABELS
    for name, regex, keys in parts.selectors:
        if name is not None:
            if name in known:
                labels = known[name].labels | SCRAPE_LABELS
            elif name in derived:
                labels = derived[name] | SCRAPE_LABELS
            else:
                problems.append(f"unknown metric {name}")
                continue
        elif regex is not None:
            pattern = re.compile(regex)
            hits = [n for n in list(known) + list(derived) if pattern.fullmatch(n)]
            if not hits:
                problems.append(f"no metric matches __name__=~{regex!r}")
                continue
            labels = set(SCRAPE_LABELS)
            for n in hits:
                labels |= known[n].labels if n in known else derived[n]
        else:
            problems.append("selector without a metric name")
            continue
        reachable |= labels
        problems.extend(f"{name or regex}: unknown label {key}" for key in sorted(keys - labels))
    problems.extend(f"unknown grouping label {key}" for key in sorted(parts.grouping - reachable))
    return problems


def recording_labels(
    rules: Mapping[str, str], known: Mapping[str, SeriesName]
) -> dict[str, set[str]]:
    """Label keys of each recording rule's output, from the series its expression reads.

    Rules may read other rules' outputs; they are resolved in as many passes as needed.
    """
    out: dict[str, set[str]] = {}
    for _ in range(len(rules) + 1):
        changed = False
        for record, expr in rules.items():
            parts = parse(expr)
            labels: set[str] = set(parts.created)
            for name, _regex, _keys in parts.selectors:
                if name is None:
                    continue
                if name in known:
                    labels |= known[name].labels
                elif name in out:
                    labels |= out[name]
            if parts.grouping and not _has_without(expr):
                labels &= parts.grouping | parts.created
            if out.get(record) != labels:
                out[record] = labels
                changed = True
        if not changed:
            break
    return out


def _has_without(expr: str) -> bool:
    return re.search(r"\b(without|ignoring)\s*\(", expr) is not None
