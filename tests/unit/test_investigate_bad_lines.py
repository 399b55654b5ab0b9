"""The file export readers never crash on a bad line: it costs only itself, and is counted.

A line may be invalid UTF-8 (a collector without ``transform/utf8`` wrote a bad value as
is, with every good record of its batch on the same line) or not JSON at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.collector_payloads import read_export, read_lines
from trading_otel_tools.investigate.sources import (
    FileLogSource,
    FileTraceSource,
    LineProblems,
    iter_json_lines,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "investigate"
SLOW = "5b8efff798038103d269b633813fc60c"
FAST = "0af7651916cd43dd8448eb211c80319c"
BAD_BYTES = b"caf\xc3 \xff\xfe \xed\xa0\x80"  # truncated, stray and surrogate sequences


def _split_by_trace(line: str) -> dict[str, bytes]:
    """One export line per trace id (the fixture holds both traces in one request)."""
    doc = json.loads(line)
    out: dict[str, bytes] = {}
    for tid in (SLOW, FAST):
        rss = []
        for rs in doc["resourceSpans"]:
            sss = [
                {**ss, "spans": [s for s in ss["spans"] if s["traceId"] == tid]}
                for ss in rs["scopeSpans"]
            ]
            sss = [ss for ss in sss if ss["spans"]]
            if sss:
                rss.append({**rs, "scopeSpans": sss})
        out[tid] = json.dumps({"resourceSpans": rss}).encode()
    return out


def _with_bad_value(line: bytes) -> bytes:
    """The line with raw invalid UTF-8 in a span attribute, as the exporter wrote it."""
    placeholder = b'"PLACEHOLDER-BAD-VALUE"'
    doc = json.loads(line)
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append(
        {"key": "bad", "value": {"stringValue": "PLACEHOLDER-BAD-VALUE"}}
    )
    return json.dumps(doc).encode().replace(placeholder, b'"' + BAD_BYTES + b'"')


def _bad_dir(tmp_path: Path) -> Path:
    """traces.jsonl: good FAST line, SLOW line with invalid UTF-8, a non-JSON line, a line
    that is JSON but no object, a good FAST line again, and a torn last line."""
    lines = _split_by_trace((FIXTURES / "traces.jsonl").read_text().splitlines()[0])
    bad = _with_bad_value(lines[SLOW])
    with pytest.raises(UnicodeDecodeError):
        bad.decode("utf-8")
    (tmp_path / "traces.jsonl").write_bytes(
        lines[FAST] + b"\n"
        + bad + b"\n"
        + b"\xff\xfe not json at all\n"
        + b'["a list"]\n'
        + lines[FAST] + b"\n"
        + b'{"resourceSpans": [{"reso'
    )  # fmt: skip
    (tmp_path / "logs.jsonl").write_bytes(b"}{ garbage\n" + (FIXTURES / "logs.jsonl").read_bytes())
    return tmp_path


def test_iter_json_lines_keeps_every_good_line_and_counts_the_bad(tmp_path: Path) -> None:
    directory = _bad_dir(tmp_path)
    problems = LineProblems()
    docs = list(iter_json_lines([directory / "traces.jsonl"], problems=problems))
    # Both good lines, and the invalid-UTF-8 line read with U+FFFD in place of each bad byte.
    assert len(docs) == 3
    path = str(directory / "traces.jsonl")
    assert problems.repaired == {path: 1}
    # The non-JSON line and the list; the torn last line is being written, not bad.
    assert problems.skipped == {path: 2}
    note = problems.note()
    assert note is not None
    assert f"1 line(s) not valid UTF-8 (bad bytes read as U+FFFD, records kept): {path} (1)" in note
    assert f"2 line(s) unreadable and skipped: {path} (2)" in note


def test_clean_files_have_no_note(tmp_path: Path) -> None:
    problems = LineProblems()
    assert len(list(iter_json_lines([FIXTURES / "traces.jsonl"], problems=problems))) > 0
    assert problems.note() is None


def test_file_sources_find_the_trace_beside_bad_lines_and_count_them(tmp_path: Path) -> None:
    directory = _bad_dir(tmp_path)
    traces = FileTraceSource(directory)
    found = traces.fetch([SLOW, FAST])
    assert set(found) == {SLOW, FAST}
    assert len(found[SLOW].spans) == 6
    bad = next(s for s in found[SLOW].spans if "bad" in s.attributes)
    assert bad.attributes["bad"] == "caf\ufffd \ufffd\ufffd \ufffd\ufffd\ufffd"
    # Lines of other traces are passed over unparsed; the two bad lines without a hex
    # trace id are parsed (they might hold one in another encoding) and counted.
    assert sum(traces.problems.repaired.values()) == 1
    assert sum(traces.problems.skipped.values()) == 2
    logs = FileLogSource(directory)
    entries = logs.fetch([found[SLOW]])
    assert [e.body for e in entries[SLOW]][-1] == "order filled"
    assert logs.problems.skipped == {str(directory / "logs.jsonl"): 1}


def test_fixture_reader_skips_and_counts_bad_lines(tmp_path: Path) -> None:
    directory = _bad_dir(tmp_path)
    export = read_export(directory / "traces.jsonl")
    # The test reader does not repair: a test must see exactly what the collector wrote.
    assert len(export.docs) == 2
    assert export.skipped == 3
    assert read_lines(directory / "traces.jsonl") == export.docs
    assert read_export(tmp_path / "missing.jsonl").docs == []
