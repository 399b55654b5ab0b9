"""The state file: which processes this stack started, and how to recognise them later.

A pid alone is not proof: after a reboot or a crash it may belong to someone else. Each
entry also stores the process's start time (field 22 of ``/proc/<pid>/stat``); a process
is ours only when both match, and we never signal one that is not.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path


def start_ticks(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


@dataclass(frozen=True)
class Entry:
    """One process we started."""

    name: str
    pid: int
    start_ticks: int
    ports: tuple[int, ...]
    log: str
    stop_signal: int

    def ours(self) -> bool:
        """True while the pid still names the very process we started."""
        return start_ticks(self.pid) == self.start_ticks

    def stop(self, timeout_s: float = 15.0) -> str:
        """Stop the process group we started; returns what happened, for the report."""
        if not self.ours():
            return "not running"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, self.stop_signal)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.ours() or _zombie(self.pid):
                return "stopped"
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        return f"killed (no clean exit within {timeout_s:.0f}s)"


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class StateFile:
    """JSON list of :class:`Entry`, rewritten atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Entry]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ValueError(f"stack state file {self.path} is unreadable: {exc}") from exc
        out = {}
        for item in raw.get("processes", []):
            item["ports"] = tuple(item["ports"])
            entry = Entry(**item)
            out[entry.name] = entry
        return out

    def save(self, entries: dict[str, Entry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"processes": [asdict(e) for e in entries.values()]}, indent=2))
        tmp.replace(self.path)

    def put(self, entry: Entry) -> None:
        entries = self.load()
        entries[entry.name] = entry
        self.save(entries)

    def remove(self, name: str) -> None:
        entries = self.load()
        if entries.pop(name, None) is not None:
            self.save(entries)
