"""The Loki derived field and Tempo's tracesToLogsV2 query match the log records our
pipeline really emits.

The record is produced by our library (a Python log call inside a span) and encoded by
the SDK's own OTLP encoder: that request is what the collector receives and forwards to
Loki's /otlp endpoint unchanged. Loki cannot run here, so its documented OTLP mapping is
applied by hand: the resource attribute service.name becomes the index label
service_name, and the record's trace id becomes structured metadata trace_id (hex).
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.instrumentation.logging.handler import LoggingHandler

from tests.fixtures.lib import MemoryTelemetry, memory_telemetry
from tests.unit.test_deploy_grafana import datasources


@pytest.fixture
def emitted() -> Iterator[tuple[dict[str, Any], str, str]]:
    """(OTLP logs request as JSON, service name, trace id hex) for one log in a span."""
    mt: MemoryTelemetry = memory_telemetry()
    assert mt.telemetry.logger_provider is not None
    handler = LoggingHandler(logger_provider=mt.telemetry.logger_provider)
    logger = logging.getLogger("tests.deploy.order")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        tracer = mt.telemetry.tracer_provider.get_tracer("tests.deploy")
        with tracer.start_as_current_span("order.place") as span:
            logger.warning("order o-1 rejected by risk")
        request = MessageToDict(encode_logs(mt.logs.get_finished_logs()))
        service = str(mt.telemetry.resource.attributes["service.name"])
        yield request, service, format(span.get_span_context().trace_id, "032x")
    finally:
        logger.removeHandler(handler)
        mt.telemetry.shutdown(5)


def loki_entries(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Loki's view of an OTLP logs request: stream labels + structured metadata."""
    entries = []
    for rl in request["resourceLogs"]:
        attrs = {a["key"]: a["value"].get("stringValue") for a in rl["resource"]["attributes"]}
        labels = {"service_name": attrs["service.name"]}
        for sl in rl["scopeLogs"]:
            for rec in sl["logRecords"]:
                metadata = {}
                if rec.get("traceId"):
                    # OTLP/JSON from protobuf carries bytes as base64; Loki stores hex.
                    metadata["trace_id"] = base64.b64decode(rec["traceId"]).hex()
                    metadata["span_id"] = base64.b64decode(rec["spanId"]).hex()
                entries.append({"labels": labels, "metadata": metadata, "line": rec["body"]})
    return entries


_QUERY = re.compile(r'^\{(\w+)="([^"]*)"\}\s*\|\s*(\w+)="([^"]*)"$')


def run_query(query: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluate the one LogQL shape we ship: {label="v"} | metadata="v"."""
    m = _QUERY.match(query)
    assert m, f"unexpected LogQL shape: {query}"
    label, value, key, wanted = m.groups()
    return [
        e
        for e in entries
        if e["labels"].get(label) == value and {**e["labels"], **e["metadata"]}.get(key) == wanted
    ]


def test_traces_to_logs_query_finds_the_record(emitted: tuple[dict[str, Any], str, str]) -> None:
    request, service, trace_id = emitted
    entries = loki_entries(request)
    assert len(entries) == 1
    template = datasources()["tempo"]["jsonData"]["tracesToLogsV2"]["query"]
    # `$$` is the provisioning escape for a literal `$`; Grafana then fills the macros.
    query = (
        template.replace("$$", "$")
        .replace('${__span.tags["service.name"]}', service)
        .replace("${__trace.traceId}", trace_id)
    )
    assert "$" not in query, f"unfilled macro in {query}"
    assert run_query(query, entries) == entries
    other = query.replace(trace_id, "0" * 32)
    assert run_query(other, entries) == []


def test_loki_derived_field_yields_the_tempo_trace_id(
    emitted: tuple[dict[str, Any], str, str],
) -> None:
    request, _, trace_id = emitted
    (entry,) = loki_entries(request)
    (field,) = datasources()["loki"]["jsonData"]["derivedFields"]
    assert field["matcherType"] == "label"
    value = entry["metadata"][field["matcherRegex"]]
    # Tempo looks traces up by the 32-hex-digit id, which is what the link passes on.
    assert value == trace_id and re.fullmatch(r"[0-9a-f]{32}", value)
    assert field["url"].replace("$$", "$") == "${__value.raw}"
