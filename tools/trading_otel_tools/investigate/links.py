"""Grafana Explore links, using the provisioned datasource uids (prometheus, tempo, loki)."""

from __future__ import annotations

import json
from urllib.parse import quote


def _explore(
    grafana: str, datasource: str, query: dict[str, object], start: float, end: float
) -> str:
    pane = {
        "datasource": datasource,
        "queries": [{"refId": "A", "datasource": {"type": datasource, "uid": datasource}, **query}],
        "range": {"from": str(int(start * 1000)), "to": str(int(end * 1000))},
    }
    panes = json.dumps({"investigate": pane}, separators=(",", ":"))
    return f"{grafana.rstrip('/')}/explore?schemaVersion=1&orgId=1&panes={quote(panes, safe='')}"


def trace_link(grafana: str, trace_id: str, start: float, end: float) -> str:
    """Open one trace in Explore with the ``tempo`` datasource."""
    return _explore(grafana, "tempo", {"queryType": "traceql", "query": trace_id}, start, end)


def logs_link(grafana: str, logql: str, start: float, end: float) -> str:
    """Run a LogQL query in Explore with the ``loki`` datasource."""
    return _explore(grafana, "loki", {"expr": logql, "queryType": "range"}, start, end)


def metric_link(grafana: str, promql: str, start: float, end: float) -> str:
    """Chart a PromQL query (exemplars on) in Explore with the ``prometheus`` datasource."""
    return _explore(
        grafana, "prometheus", {"expr": promql, "exemplar": True, "range": True}, start, end
    )
