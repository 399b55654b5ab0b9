"""Where traces and logs come from: the local collector's files, or Tempo and Loki.

The local collector's file exporter writes one OTLP JSON request per line to
``traces*.jsonl`` / ``logs*.jsonl`` and may rotate them into timestamped backups
(optionally gzip-compressed); every matching file is read. A bad line never stops the
reading: see :class:`LineProblems`.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, cast

import httpx

from trading_otel_tools.investigate import otlp
from trading_otel_tools.investigate.model import LogEntry, Span, Trace


class SourceError(RuntimeError):
    """A trace or log backend could not be read."""


class TraceSource(Protocol):
    """Something that can look traces up by id."""

    description: str

    def fetch(self, trace_ids: Sequence[str]) -> dict[str, Trace]:
        """Return the traces found, keyed by hex id; missing ids are simply absent."""
        ...


class LogSource(Protocol):
    """Something that can return the log records of given traces."""

    description: str

    def fetch(self, traces: Sequence[Trace]) -> dict[str, list[LogEntry]]:
        """Return the log records of each trace, keyed by trace id."""
        ...


def telemetry_files(directory: Path, prefix: str) -> list[Path]:
    """All export files for ``prefix`` (``traces`` or ``logs``), rotated backups included."""
    if not directory.is_dir():
        return []
    found = [
        p
        for p in directory.iterdir()
        if p.is_file()
        and p.name.startswith(prefix)
        and any(p.name.endswith(s) for s in (".jsonl", ".json", ".jsonl.gz", ".json.gz"))
    ]
    return sorted(found, key=lambda p: p.name)


_TRACE_ID = re.compile(rb'"traceId"\s*:\s*"([0-9a-f]{32})"')


def _open_binary(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


@dataclass
class LineProblems:
    """Lines of the export files that were not plain UTF-8 JSON objects, counted per file.

    ``repaired``: the line was not valid UTF-8 (an old collector without
    ``transform/utf8`` wrote a bad value as is); each bad byte was read as U+FFFD and the
    line's records were kept. ``skipped``: the line could not be read even so (not JSON,
    or not an object) and was left out. A torn last line, still being written, is neither.
    """

    repaired: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, path: Path) -> None:
        counts = self.repaired if kind == "repaired" else self.skipped
        counts[str(path)] = counts.get(str(path), 0) + 1

    def note(self) -> str | None:
        """One sentence for the report, or ``None`` when every line was read cleanly."""
        parts = []
        for what, counts in (
            ("not valid UTF-8 (bad bytes read as U+FFFD, records kept)", self.repaired),
            ("unreadable and skipped", self.skipped),
        ):
            if counts:
                files = ", ".join(f"{p} ({n})" for p, n in sorted(counts.items()))
                parts.append(f"{sum(counts.values())} line(s) {what}: {files}")
        return "; ".join(parts) or None


def _parse_line(line: bytes) -> tuple[Any, str | None]:
    """The JSON value of one line and what was wrong with it (``repaired``/``skipped``)."""
    try:
        text, problem = line.decode("utf-8"), None
    except UnicodeDecodeError:
        text, problem = line.decode("utf-8", "replace"), "repaired"
    try:
        obj = json.loads(text)
    except ValueError:  # JSONDecodeError, or a lone surrogate escape json cannot decode
        return None, "skipped"
    if not isinstance(obj, dict):
        return None, "skipped"
    return obj, problem


def iter_json_lines(
    paths: Iterable[Path],
    needles: Iterable[str] | None = None,
    problems: LineProblems | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield each JSON object of JSON-lines files; a bad line costs only itself.

    With ``needles`` (hex trace ids), lines whose ``traceId`` fields hold none of them are
    skipped before parsing: the file exporter writes ids in hex, so one regex pass over
    the raw line finds them. A line that is not valid UTF-8 is read with U+FFFD for each
    bad byte; a line that is not a JSON object is skipped. Both are counted in
    ``problems``. A torn last line (no newline yet: being written) is skipped uncounted.
    """
    wanted = None if needles is None else {n.encode() for n in needles}
    for path in paths:
        with _open_binary(path) as fh:
            for raw in fh:
                if wanted is not None:
                    ids = _TRACE_ID.findall(raw)
                    # No hex id found (another encoding): parse the line to be sure.
                    if ids and wanted.isdisjoint(ids):
                        continue
                line = raw.strip()
                if not line:
                    continue
                obj, problem = _parse_line(line)
                if problem is not None and problems is not None and raw.endswith(b"\n"):
                    problems.add(problem, path)
                if obj is not None:
                    yield obj


class FileTraceSource:
    """Traces from the local collector's file exporter output."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.description = f"{directory}/traces*.jsonl"
        self.problems = LineProblems()

    def fetch(self, trace_ids: Sequence[str]) -> dict[str, Trace]:
        wanted = set(trace_ids)
        files = telemetry_files(self.directory, "traces")
        if not files:
            raise SourceError(
                f"no trace files (traces*.jsonl) in {self.directory}; is the local collector "
                "running with its file exporter, or pass --tempo URL"
            )
        spans: dict[str, dict[str, Span]] = defaultdict(dict)
        for payload in iter_json_lines(files, wanted, self.problems):
            for span in otlp.iter_spans(payload):
                if span.trace_id in wanted:
                    # A span may be exported twice (retries); keep one copy per span id.
                    spans[span.trace_id][span.span_id] = span
        return {
            tid: Trace(
                tid, tuple(sorted(by_id.values(), key=lambda s: s.start_ns)), self.description
            )
            for tid, by_id in spans.items()
        }


class TempoTraceSource:
    """Traces from Tempo's HTTP API, ``GET /api/traces/<id>``."""

    def __init__(self, base_url: str, client: httpx.Client) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.description = f"Tempo {self.base_url}"

    def fetch(self, trace_ids: Sequence[str]) -> dict[str, Trace]:
        found: dict[str, Trace] = {}
        for tid in trace_ids:
            url = f"{self.base_url}/api/traces/{tid}"
            try:
                resp = self.client.get(url, headers={"Accept": "application/json"})
            except httpx.HTTPError as exc:
                raise SourceError(f"cannot reach Tempo at {self.base_url}: {exc}") from exc
            if resp.status_code == 404:
                continue
            if resp.status_code != 200:
                raise SourceError(f"Tempo answered {resp.status_code} for {url}: {resp.text[:200]}")
            trace = parse_tempo_trace(tid, resp.json(), self.description)
            if trace.spans:
                found[tid] = trace
        return found


def parse_tempo_trace(trace_id: str, payload: dict[str, Any], source: str) -> Trace:
    """Decode a Tempo ``/api/traces/<id>`` (v1 or v2) response body."""
    spans = sorted(otlp.iter_spans(payload), key=lambda s: s.start_ns)
    return Trace(trace_id, tuple(s for s in spans if s.trace_id == trace_id), source)


class FileLogSource:
    """Log records from the local collector's file exporter output."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.description = f"{directory}/logs*.jsonl"
        self.problems = LineProblems()

    def fetch(self, traces: Sequence[Trace]) -> dict[str, list[LogEntry]]:
        wanted = {t.trace_id for t in traces}
        out: dict[str, list[LogEntry]] = {t: [] for t in wanted}
        files = telemetry_files(self.directory, "logs")
        for payload in iter_json_lines(files, wanted, self.problems):
            for entry in otlp.iter_logs(payload):
                if entry.trace_id in wanted:
                    out[entry.trace_id].append(entry)
        return {tid: sort_logs(entries) for tid, entries in out.items()}


def sort_logs(entries: Iterable[LogEntry]) -> list[LogEntry]:
    """Warnings and errors first (worst first), then the rest, each group by time."""
    return sorted(
        entries,
        key=lambda e: (
            not e.is_warning_or_worse,
            -e.severity_number if e.is_warning_or_worse else 0,
            e.time_ns,
        ),
    )


def loki_query(services: Iterable[str], trace_ids: str | Sequence[str]) -> str:
    """The LogQL query for the logs of one trace, ``{service_name="..."} | trace_id="..."``,
    or of several (``trace_id=~"a|b"``; ``services`` then spans all of them)."""
    names = sorted(set(services))
    if len(names) == 1:
        selector = f'service_name="{names[0]}"'
    else:
        selector = 'service_name=~"' + "|".join(_regex_escape(n) for n in names) + '"'
    ids = [trace_ids] if isinstance(trace_ids, str) else list(trace_ids)
    match = f'trace_id="{ids[0]}"' if len(ids) == 1 else 'trace_id=~"' + "|".join(ids) + '"'
    return "{" + selector + "} | " + match


def _regex_escape(name: str) -> str:
    return "".join("\\\\" + c if c in r".^$*+?()[]{}|\\" else c for c in name)


class LokiLogSource:
    """Log records from Loki, ``GET /loki/api/v1/query_range`` with a trace id filter."""

    def __init__(self, base_url: str, client: httpx.Client) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.description = f"Loki {self.base_url}"

    def fetch(self, traces: Sequence[Trace]) -> dict[str, list[LogEntry]]:
        out: dict[str, list[LogEntry]] = {}
        for trace in traces:
            if not trace.spans:
                continue
            start = min(s.start_ns for s in trace.spans) - 60_000_000_000
            end = max(s.end_ns for s in trace.spans) + 60_000_000_000
            params = {
                "query": loki_query((s.service for s in trace.spans), trace.trace_id),
                "start": str(start),
                "end": str(end),
                "limit": "500",
                "direction": "forward",
            }
            try:
                resp = self.client.get(
                    f"{self.base_url}/loki/api/v1/query_range",
                    params=params,
                    headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"},
                )
            except httpx.HTTPError as exc:
                raise SourceError(f"cannot reach Loki at {self.base_url}: {exc}") from exc
            if resp.status_code != 200:
                raise SourceError(f"Loki answered {resp.status_code}: {resp.text[:200]}")
            out[trace.trace_id] = sort_logs(parse_loki_response(resp.json(), trace.trace_id))
        return out


def parse_loki_response(payload: dict[str, Any], trace_id: str = "") -> list[LogEntry]:
    """Decode a Loki ``query_range`` streams response into log entries.

    Structured metadata (where Loki's OTLP endpoint puts ``trace_id``, ``span_id`` and
    ``severity_text``) is read from the optional third element of each value, and
    otherwise from the stream labels, where Loki merges it when not asked to categorize.
    """
    data = payload.get("data")
    if payload.get("status") not in (None, "success") or not isinstance(data, dict):
        raise SourceError(f"Loki query failed: {payload.get('error') or payload}")
    if data.get("resultType") not in (None, "streams"):
        raise SourceError(f"expected a 'streams' result from Loki, got {data.get('resultType')!r}")
    entries: list[LogEntry] = []
    for stream in data.get("result") or []:
        labels = {str(k): str(v) for k, v in (stream.get("stream") or {}).items()}
        for value in stream.get("values") or []:
            meta = dict(labels)
            if len(value) > 2 and isinstance(value[2], dict):
                for group in ("structuredMetadata", "parsed"):
                    meta.update({str(k): str(v) for k, v in (value[2].get(group) or {}).items()})
            sev_text = (
                meta.get("severity_text") or meta.get("level") or meta.get("detected_level", "")
            )
            sev_num = meta.get("severity_number", "")
            entries.append(
                LogEntry(
                    time_ns=int(value[0]),
                    severity_text=sev_text.upper(),
                    severity_number=int(sev_num) if sev_num.isdigit() else 0,
                    body=str(value[1]),
                    service=meta.get("service_name", "unknown_service"),
                    trace_id=otlp.normalize_id(meta.get("trace_id", trace_id), 16),
                    span_id=otlp.normalize_id(meta.get("span_id", ""), 8),
                    attributes={
                        k: v
                        for k, v in meta.items()
                        if k
                        not in {
                            "service_name",
                            "trace_id",
                            "span_id",
                            "severity_text",
                            "severity_number",
                        }
                    },
                )
            )
    return entries
