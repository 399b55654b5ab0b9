"""Parsing of the collector's file export, Tempo's trace API and Loki's query_range.

The payloads in tests/fixtures/investigate/ are built by generate.py there: the same
two orders in the file exporter's dialect and in Tempo's and Loki's response shapes.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from trading_otel_tools.investigate import otlp
from trading_otel_tools.investigate.analysis import analyze
from trading_otel_tools.investigate.sources import (
    FileLogSource,
    FileTraceSource,
    SourceError,
    loki_query,
    parse_loki_response,
    parse_tempo_trace,
    sort_logs,
    telemetry_files,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "investigate"
SLOW = "5b8efff798038103d269b633813fc60c"
FAST = "0af7651916cd43dd8448eb211c80319c"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def _key(trace: Any) -> set[tuple[object, ...]]:
    return {(s.span_id, s.parent_span_id, s.name, s.kind, s.start_ns, s.end_ns, s.service)
            for s in trace.spans}  # fmt: skip


@pytest.fixture
def rotated_dir(tmp_path: Path) -> Path:
    """The fixture export split as the file exporter rotates it: live file, backup, gzip."""
    # One request per span, so the export can be spread over three files.
    lines = [
        json.dumps({"resourceSpans": [{**rs, "scopeSpans": [{**ss, "spans": [span]}]}]}) + "\n"
        for line in (FIXTURES / "traces.jsonl").read_text().splitlines()
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]
    third = len(lines) // 3
    (tmp_path / "traces.jsonl").write_text("".join(lines[:third]) + '{"resourceSpans": [{"reso')
    backup = tmp_path / "traces-2026-11-18T11-06-40.000.jsonl"
    backup.write_text("".join(lines[third : 2 * third]))
    with gzip.open(tmp_path / "traces-2026-11-18T11-00-00.000.jsonl.gz", "wt") as fh:
        fh.write("".join(lines[2 * third :]))
    (tmp_path / "traces.unrelated.txt").write_text("not json")
    shutil.copy(FIXTURES / "logs.jsonl", tmp_path / "logs.jsonl")
    return tmp_path


def test_file_source_reads_rotated_and_compressed_files(rotated_dir: Path) -> None:
    assert len(telemetry_files(rotated_dir, "traces")) == 3
    found = FileTraceSource(rotated_dir).fetch([SLOW, FAST, "f" * 32])
    assert set(found) == {SLOW, FAST}
    slow = found[SLOW]
    assert len(slow.spans) == 6
    assert {s.service for s in slow.spans} == {"execution-gateway", "broker-sim"}
    root = next(s for s in slow.spans if not s.parent_span_id)
    assert (root.name, root.kind, root.status_code) == ("POST /api/v1/orders", "SERVER", 1)
    assert root.duration_ns == 820_500_000
    db = next(s for s in slow.spans if s.name == "SELECT trading")
    assert db.kind == "CLIENT" and db.attributes["db.system"] == "postgresql"


def test_file_source_without_files_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"no trace files \(traces\*\.jsonl\) in .*--tempo"):
        FileTraceSource(tmp_path / "missing").fetch([SLOW])


@pytest.mark.parametrize("name", ["tempo_v1.json", "tempo_v2.json"])
def test_tempo_payloads_decode_to_the_same_spans_as_the_file_export(name: str) -> None:
    payload = _load(name)
    # Tempo answers with base64 ids and enum names; the reader must normalise both.
    first = otlp.resource_spans(payload)[0]["scopeSpans"][0]["spans"][0]
    assert first["traceId"].endswith("==") and first["kind"].startswith("SPAN_KIND_")
    tempo = parse_tempo_trace(SLOW, payload, "tempo")
    from_file = FileTraceSource(FIXTURES).fetch([SLOW])[SLOW]
    assert _key(tempo) == _key(from_file)


def test_tempo_legacy_instrumentation_library_key() -> None:
    payload = _load("tempo_v1.json")
    for batch in payload["batches"]:
        batch["instrumentationLibrarySpans"] = batch.pop("scopeSpans")
    assert len(parse_tempo_trace(SLOW, payload, "tempo").spans) == 6


def test_tempo_trace_analysis_names_the_broker_call() -> None:
    a = analyze(parse_tempo_trace(SLOW, _load("tempo_v2.json"), "tempo"))
    assert a.top is not None and a.top.label == "broker.submit"
    assert a.top.critical_ns == 814_000_000  # client 5.5-819.5 ms, remote server folded in


def test_unknown_payload_shape_is_a_clear_error() -> None:
    with pytest.raises(otlp.OtlpFormatError, match="no 'resourceSpans', 'batches'"):
        parse_tempo_trace(SLOW, {"data": []}, "tempo")


@pytest.mark.parametrize(
    ("raw", "size", "expected"),
    [
        ("5B8EFFF798038103D269B633813FC60C", 16, SLOW),
        ("W47/95gDgQPSabYzgT/GDA==", 16, SLOW),
        ("APDg0MCwEAM=", 8, "00f0e0d0c0b01003"),
        ("f0e0d0c0b01003", 8, "00f0e0d0c0b01003"),  # leading zeros dropped by a writer
        ("", 8, ""),
    ],
)
def test_normalize_id(raw: str, size: int, expected: str) -> None:
    assert otlp.normalize_id(raw, size) == expected


def test_normalize_id_rejects_garbage() -> None:
    with pytest.raises(otlp.OtlpFormatError, match="cannot decode id 'not-an-id!'"):
        otlp.normalize_id("not-an-id!", 16)


def test_any_value_variants() -> None:
    assert otlp.attributes([
        {"key": "i", "value": {"intValue": "42"}}, {"key": "d", "value": {"doubleValue": 1.5}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "x"}]}}},
        {"key": "k", "value": {"kvlistValue": {"values": [
            {"key": "n", "value": {"intValue": 1}}]}}},
        {"key": "e", "value": {}},
    ]) == {"i": 42, "d": 1.5, "b": True, "a": ["x"], "k": {"n": 1}, "e": None}  # fmt: skip


@pytest.mark.parametrize("name", ["loki_categorized.json", "loki_plain.json"])
def test_loki_response_decodes_structured_metadata(name: str) -> None:
    entries = sort_logs(parse_loki_response(_load(name)))
    assert [(e.severity_text, e.service, e.body) for e in entries] == [
        ("WARNING", "broker-sim", "injected latency 800 ms"),
        ("WARNING", "execution-gateway", "slow broker answer: 812 ms"),
        ("INFO", "execution-gateway", "order filled"),
    ]
    assert {e.trace_id for e in entries} == {SLOW}
    assert entries[0].span_id == "00f0e0d0c0b01006"
    assert entries[0].attributes["fault"] == "latency"


def test_loki_error_response() -> None:
    with pytest.raises(SourceError, match="Loki query failed: parse error"):
        parse_loki_response({"status": "error", "error": "parse error at line 1"})
    with pytest.raises(SourceError, match="expected a 'streams' result"):
        parse_loki_response({"status": "success", "data": {"resultType": "matrix", "result": []}})


def test_loki_query_selects_every_service_of_the_trace() -> None:
    assert loki_query(["execution-gateway"], SLOW) == (
        '{service_name="execution-gateway"} | trace_id="' + SLOW + '"'
    )
    assert loki_query(["execution-gateway", "broker-sim", "broker-sim"], SLOW) == (
        '{service_name=~"broker-sim|execution-gateway"} | trace_id="' + SLOW + '"'
    )
    assert loki_query(["a.b"], SLOW).startswith('{service_name="a.b"}')
    assert loki_query(["a.b", "c"], SLOW).startswith('{service_name=~"a\\\\.b|c"}')
    # Several traces (an alert's diagnosis): every service of them, any of the ids.
    other = "f" * 32
    assert loki_query(["broker-sim", "execution-gateway"], [SLOW, other]) == (
        '{service_name=~"broker-sim|execution-gateway"} | trace_id=~"' + SLOW + "|" + other + '"'
    )
    assert loki_query(["x"], [SLOW]) == '{service_name="x"} | trace_id="' + SLOW + '"'


def test_file_log_source_matches_by_trace_and_puts_warnings_first(rotated_dir: Path) -> None:
    trace = FileTraceSource(rotated_dir).fetch([SLOW, FAST])
    logs = FileLogSource(rotated_dir).fetch([trace[SLOW], trace[FAST]])
    assert [e.body for e in logs[SLOW]] == [
        "injected latency 800 ms", "slow broker answer: 812 ms", "order filled",
    ]  # fmt: skip
    assert [e.body for e in logs[FAST]] == ["order filled"]
    assert logs[SLOW][0].severity_number == 13 and logs[SLOW][0].is_warning_or_worse


def test_file_source_reads_lines_with_base64_ids(tmp_path: Path) -> None:
    # The fast path skips lines by their hex traceId fields; a line written with base64
    # ids (another writer) has none, so it must still be parsed.
    line = json.dumps({"resourceSpans": _load("tempo_v1.json")["batches"]})
    (tmp_path / "traces.jsonl").write_text(line + "\n")
    found = FileTraceSource(tmp_path).fetch([SLOW])
    assert len(found[SLOW].spans) == 6
