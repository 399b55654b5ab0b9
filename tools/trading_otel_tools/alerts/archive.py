"""The alert archive: every Alertmanager notification, one JSON line each, one file a day.

Layout: ``<dir>/<YYYY-MM-DD>.jsonl`` (UTC date of receipt). Files are only ever appended to;
a whole day's file is deleted once it is older than the retention (90 days by default),
and so is a diagnosis report (``<dir>/reports/*.html``) written before that day.
Each line is the Alertmanager webhook payload (version 4) plus ``received_at`` and
``channel`` (the receiver route the notification came through: paging, chat, ticket...).

A latency alert's diagnosis (``alerts/diagnosis.py``) arrives after the alert: it is its own
line, ``{"kind": "diagnosis", "received_at", "fingerprint", "starts_at", "diagnosis"}``,
appended when the investigation ends. The notification line is never rewritten; the reader
joins each diagnosis to the alerts with the same fingerprint and start.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_RETENTION_DAYS = 90
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
_CHANNEL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DIAGNOSIS_KIND = "diagnosis"
#: The diagnoses' HTML reports, under the archive directory; pruned with the day files.
REPORTS_DIR = "reports"


class InvalidNotification(ValueError):
    """The payload is not an Alertmanager webhook notification."""


def validate_notification(payload: object) -> dict[str, Any]:
    """Check the shape of an Alertmanager webhook payload and return it as a dict.

    Raises:
        InvalidNotification: naming what is wrong.
    """
    if not isinstance(payload, dict):
        raise InvalidNotification("expected a JSON object")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise InvalidNotification("missing 'alerts' list")
    for i, alert in enumerate(alerts):
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            raise InvalidNotification(f"alerts[{i}] has no 'labels' object")
    if payload.get("status") not in ("firing", "resolved"):
        raise InvalidNotification(
            f"status must be firing or resolved, got {payload.get('status')!r}"
        )
    return payload


class AlertArchive:
    """Append-only daily JSONL files with retention.

    Args:
        directory: Where the ``<date>.jsonl`` files live (created if missing).
        retention_days: Day files older than this are deleted on write and on :meth:`prune`.
        clock: Returns the current UTC time (injected by tests).
    """

    def __init__(
        self,
        directory: Path,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if retention_days < 1:
            raise ValueError(f"retention_days must be at least 1, got {retention_days}")
        self.directory = directory
        self.retention_days = retention_days
        self._clock = clock
        self._lock = threading.Lock()
        self._pruned_for: date | None = None

    def path_for(self, day: date) -> Path:
        return self.directory / f"{day.isoformat()}.jsonl"

    def append(self, payload: object, channel: str = "default") -> Path:
        """Archive one notification; returns the file it went to.

        Raises:
            InvalidNotification: when the payload is not a webhook notification.
            ValueError: when ``channel`` is not a short plain name.
        """
        if not _CHANNEL.match(channel):
            raise ValueError(f"invalid channel name {channel!r}")
        body = validate_notification(payload)
        now = self._clock()
        record = {"received_at": now.isoformat(timespec="milliseconds"), "channel": channel}
        record.update(body)
        return self._write(now, record)

    def append_diagnosis(
        self, fingerprint: str, starts_at: str, diagnosis: Mapping[str, Any]
    ) -> Path:
        """Archive the diagnosis of the alert ``fingerprint`` that started at ``starts_at``."""
        now = self._clock()
        record = {
            "kind": DIAGNOSIS_KIND,
            "received_at": now.isoformat(timespec="milliseconds"),
            "fingerprint": fingerprint,
            "starts_at": starts_at,
            "diagnosis": dict(diagnosis),
        }
        return self._write(now, record)

    def _write(self, now: datetime, record: Mapping[str, Any]) -> Path:
        line = (json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n").encode()
        path = self.path_for(now.date())
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self._pruned_for != now.date():
                self._prune(now)
                self._pruned_for = now.date()
            # O_APPEND with a single write: a line is never interleaved or rewritten.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return path

    def prune(self) -> list[Path]:
        """Delete day files past the retention; returns what was deleted."""
        with self._lock:
            return self._prune(self._clock())

    def _prune(self, now: datetime) -> list[Path]:
        cutoff = now.date() - timedelta(days=self.retention_days)
        removed = []
        for path, day in day_files(self.directory):
            if day < cutoff:
                path.unlink(missing_ok=True)
                removed.append(path)
        # The diagnoses' HTML reports go with the day files: one written before the cutoff
        # day (UTC) belongs to a deleted day file.
        oldest = datetime.combine(cutoff, datetime.min.time(), UTC).timestamp()
        reports = self.directory / REPORTS_DIR
        for path in sorted(reports.glob("*.html")) if reports.is_dir() else []:
            try:
                if path.stat().st_mtime < oldest:
                    path.unlink(missing_ok=True)
                    removed.append(path)
            except OSError:
                continue
        return removed


def day_files(directory: Path) -> list[tuple[Path, date]]:
    """The archive's day files, oldest first (other files are ignored)."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        m = _DAY_FILE.match(path.name)
        if m:
            try:
                found.append((path, date.fromisoformat(m.group(1))))
            except ValueError:
                continue
    return sorted(found, key=lambda item: item[1])


@dataclass(frozen=True)
class ArchivedAlert:
    """One alert inside one archived notification."""

    received_at: datetime
    channel: str
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    ends_at: str
    fingerprint: str
    diagnosis: Mapping[str, Any] | None = None
    """The latest diagnosis archived for this alert (fingerprint and start), if any."""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "?")

    @property
    def key(self) -> str:
        """Identity across notifications: Alertmanager's fingerprint, else the labels."""
        return self.fingerprint or json.dumps(dict(sorted(self.labels.items())))


@dataclass(frozen=True)
class ReadResult:
    alerts: list[ArchivedAlert]
    bad_lines: int
    """Lines that were not valid archive records (reported, never fatal)."""


def read_archive(directory: Path, since: datetime | None = None) -> ReadResult:
    """Every archived alert in receipt order, optionally only those received after ``since``."""
    alerts: list[ArchivedAlert] = []
    diagnoses: dict[tuple[str, str], Mapping[str, Any]] = {}
    bad = 0
    for path, day in day_files(directory):
        if since is not None and day < since.date():
            continue
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if record.get("kind") == DIAGNOSIS_KIND:
                        key = (str(record["fingerprint"]), str(record["starts_at"]))
                        diagnoses[key] = dict(record["diagnosis"])
                        continue
                    parsed = list(_parse_record(record))
                except (ValueError, KeyError, TypeError, AttributeError):
                    bad += 1
                    continue
                alerts.extend(a for a in parsed if since is None or a.received_at >= since)
    if diagnoses:
        alerts = [
            replace(a, diagnosis=diagnoses[k])
            if (k := (a.fingerprint, a.starts_at)) in diagnoses
            else a
            for a in alerts
        ]
    return ReadResult(alerts, bad)


def _parse_record(record: dict[str, Any]) -> Iterator[ArchivedAlert]:
    received = datetime.fromisoformat(record["received_at"])
    channel = str(record.get("channel", ""))
    for alert in record["alerts"]:
        yield ArchivedAlert(
            received_at=received,
            channel=channel,
            status=str(alert.get("status", record.get("status", ""))),
            labels={str(k): str(v) for k, v in alert["labels"].items()},
            annotations={str(k): str(v) for k, v in (alert.get("annotations") or {}).items()},
            starts_at=str(alert.get("startsAt", "")),
            ends_at=str(alert.get("endsAt", "")),
            fingerprint=str(alert.get("fingerprint", "")),
        )


def current_state(alerts: list[ArchivedAlert]) -> list[ArchivedAlert]:
    """The latest notification per alert that is still firing, most recent first.

    The same alert is usually archived once per channel it was routed to; the latest
    notification wins whatever the channel.
    """
    latest: dict[str, ArchivedAlert] = {}
    for alert in alerts:
        latest[alert.key] = alert
    firing = [a for a in latest.values() if a.status == "firing"]
    return sorted(firing, key=lambda a: a.received_at, reverse=True)
