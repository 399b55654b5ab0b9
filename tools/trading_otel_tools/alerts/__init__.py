"""Alerting plumbing: the webhook archive receiver and the archive reader."""

from __future__ import annotations

from trading_otel_tools.alerts.archive import (
    DEFAULT_RETENTION_DAYS,
    AlertArchive,
    ArchivedAlert,
    InvalidNotification,
    current_state,
    read_archive,
)
from trading_otel_tools.alerts.receiver import ArchiveReceiver

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "AlertArchive",
    "ArchiveReceiver",
    "ArchivedAlert",
    "InvalidNotification",
    "current_state",
    "read_archive",
]
