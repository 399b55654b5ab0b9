"""The alert archive, its webhook receiver and `trading-otel alerts tail|status`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trading_otel_tools.alerts import (
    AlertArchive,
    ArchiveReceiver,
    InvalidNotification,
    current_state,
    read_archive,
)
from trading_otel_tools.cli import app

T0 = datetime(2026, 3, 2, 14, 30, 5, tzinfo=UTC)


def notification(
    status: str = "firing", name: str = "CircuitBreakerTripped", fp: str = "a1"
) -> dict[str, Any]:
    return {
        "version": "4",
        "status": status,
        "receiver": "paging",
        "groupLabels": {"alertname": name, "service": "execution-gateway"},
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": name,
                    "severity": "critical",
                    "service": "execution-gateway",
                },
                "annotations": {"summary": f"{name} summary"},
                "startsAt": "2026-03-02T14:29:55Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": fp,
            }
        ],
    }


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_append_writes_one_line_per_notification_in_a_daily_file(alert_dir: Path) -> None:
    clock = Clock(T0)
    archive = AlertArchive(alert_dir, clock=clock)
    first = archive.append(notification(), channel="paging")
    archive.append(notification("resolved"), channel="paging")
    clock.now = T0 + timedelta(days=1)
    second = archive.append(notification(fp="b2"), channel="chat")
    assert first.name == "2026-03-02.jsonl"
    assert second.name == "2026-03-03.jsonl"
    lines = first.read_text().splitlines()
    assert len(lines) == 2
    record = json.loads(lines[0])
    assert record["channel"] == "paging"
    assert record["received_at"] == "2026-03-02T14:30:05.000+00:00"
    assert record["alerts"][0]["labels"]["alertname"] == "CircuitBreakerTripped"


def test_append_never_rewrites_existing_lines(alert_dir: Path) -> None:
    archive = AlertArchive(alert_dir, clock=Clock(T0))
    path = archive.append(notification(fp="x"))
    before = path.read_bytes()
    archive.append(notification(fp="y"))
    assert path.read_bytes().startswith(before)


def test_retention_deletes_only_day_files_older_than_90_days(alert_dir: Path) -> None:
    for day in ("2025-12-01", "2025-12-02", "2025-12-03"):
        (alert_dir / f"{day}.jsonl").write_text("")
    (alert_dir / "notes.txt").write_text("not ours")
    # 2026-03-02 minus 90 days is 2025-12-02: that day is still kept.
    archive = AlertArchive(alert_dir, clock=Clock(T0))
    removed = archive.prune()
    assert [p.name for p in removed] == ["2025-12-01.jsonl"]
    names = sorted(p.name for p in alert_dir.iterdir())
    assert names == ["2025-12-02.jsonl", "2025-12-03.jsonl", "notes.txt"]


def test_append_prunes_once_per_day(alert_dir: Path) -> None:
    (alert_dir / "2025-01-01.jsonl").write_text("")
    AlertArchive(alert_dir, clock=Clock(T0)).append(notification())
    assert not (alert_dir / "2025-01-01.jsonl").exists()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "JSON object"),
        ({"status": "firing"}, "'alerts'"),
        ({"status": "firing", "alerts": [{"annotations": {}}]}, "labels"),
        ({"status": "weird", "alerts": []}, "firing or resolved"),
    ],
)
def test_invalid_notifications_are_refused(alert_dir: Path, payload: Any, message: str) -> None:
    with pytest.raises(InvalidNotification, match=message):
        AlertArchive(alert_dir).append(payload)
    assert list(alert_dir.iterdir()) == []


def test_bad_channel_and_retention_are_refused(alert_dir: Path) -> None:
    with pytest.raises(ValueError, match="channel"):
        AlertArchive(alert_dir).append(notification(), channel="../etc")
    with pytest.raises(ValueError, match="retention_days"):
        AlertArchive(alert_dir, retention_days=0)


def test_read_and_current_state(alert_dir: Path) -> None:
    clock = Clock(T0)
    archive = AlertArchive(alert_dir, clock=clock)
    archive.append(notification(fp="a1"), channel="paging")
    clock.now += timedelta(seconds=5)
    archive.append(notification(name="HighOrderRejectionRate", fp="b2"), channel="chat")
    clock.now += timedelta(seconds=5)
    archive.append(notification("resolved", fp="a1"), channel="paging")
    with (alert_dir / "2026-03-02.jsonl").open("a") as fh:
        fh.write("{broken\n")
    result = read_archive(alert_dir)
    assert [(a.name, a.status) for a in result.alerts] == [
        ("CircuitBreakerTripped", "firing"),
        ("HighOrderRejectionRate", "firing"),
        ("CircuitBreakerTripped", "resolved"),
    ]
    assert result.bad_lines == 1
    assert [a.name for a in current_state(result.alerts)] == ["HighOrderRejectionRate"]
    later = read_archive(alert_dir, since=T0 + timedelta(seconds=7))
    assert [a.status for a in later.alerts] == ["resolved"]


def test_missing_directory_reads_as_empty(tmp_path: Path) -> None:
    result = read_archive(tmp_path / "nope")
    assert result.alerts == [] and result.bad_lines == 0


@pytest.fixture
def receiver(alert_dir: Path) -> Iterator[ArchiveReceiver]:
    rec = ArchiveReceiver(alert_dir).start()
    yield rec
    rec.stop()


def _post(url: str, body: bytes) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_receiver_archives_posted_notifications(receiver: ArchiveReceiver, alert_dir: Path) -> None:
    status, _ = _post(f"{receiver.url}/alerts/paging", json.dumps(notification()).encode())
    assert status == 200
    alerts = read_archive(alert_dir).alerts
    assert [(a.name, a.channel) for a in alerts] == [("CircuitBreakerTripped", "paging")]


def test_receiver_rejects_bad_requests(receiver: ArchiveReceiver, alert_dir: Path) -> None:
    assert _post(f"{receiver.url}/alerts/paging", b"{not json")[0] == 400
    assert _post(f"{receiver.url}/alerts/paging", b'{"alerts": 3}')[0] == 400
    assert _post(f"{receiver.url}/elsewhere", b"{}")[0] == 404
    assert list(alert_dir.iterdir()) == []
    with urllib.request.urlopen(f"{receiver.url}/-/healthy", timeout=5) as resp:
        assert resp.status == 200


def test_cli_tail_and_status(alert_dir: Path) -> None:
    clock = Clock(datetime.now(UTC))
    archive = AlertArchive(alert_dir, clock=clock)
    archive.append(notification(fp="a1"), channel="paging")
    archive.append(notification(name="HighOrderRejectionRate", fp="b2"), channel="chat")
    archive.append(notification("resolved", name="HighOrderRejectionRate", fp="b2"), channel="chat")
    runner = CliRunner()
    tail = runner.invoke(app, ["alerts", "tail", "--dir", str(alert_dir), "-n", "2"])
    assert tail.exit_code == 0, tail.output
    lines = tail.output.splitlines()
    assert len(lines) == 2
    assert "firing" in lines[0] and "HighOrderRejectionRate" in lines[0] and "via chat" in lines[0]
    assert "resolved" in lines[1]
    status = runner.invoke(app, ["alerts", "status", "--dir", str(alert_dir)])
    assert status.exit_code == 0, status.output
    assert "1 alert(s) firing" in status.output
    assert "CircuitBreakerTripped" in status.output
    assert "HighOrderRejectionRate" not in status.output


def test_cli_on_an_empty_archive(alert_dir: Path) -> None:
    runner = CliRunner()
    tail = runner.invoke(app, ["alerts", "tail", "--dir", str(alert_dir)])
    assert tail.exit_code == 0 and "no alerts archived" in tail.output
    status = runner.invoke(app, ["alerts", "status", "--dir", str(alert_dir)])
    assert status.exit_code == 0 and "nothing firing" in status.output
