"""``up``, ``down`` and ``status`` over the ordered component list."""

from __future__ import annotations

import contextlib
import logging
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby

from trading_otel_tools import home
from trading_otel_tools.procs import ManagedProcess, ServerError, port_in_use
from trading_otel_tools.stack.components import COMPONENTS, REQUIRED, Component
from trading_otel_tools.stack.config import StackConfig
from trading_otel_tools.stack.state import Entry, StateFile, start_ticks

_log = logging.getLogger("otel.stack")
Report = Callable[[str], None]


#: Handles of the processes started by this Python process. Kept alive on purpose: the
#: stack outlives ``up()``, and a dropped handle would warn that its child still runs;
#: ``down()`` in the same process uses them to reap the children it stopped.
_HANDLES: dict[int, ManagedProcess] = {}


class StackError(RuntimeError):
    """The stack could not be started (port taken, server failed, prerequisite missing)."""


@dataclass(frozen=True)
class ComponentStatus:
    """One line of ``trading-otel status``."""

    name: str
    state: str  # "ready" | "starting" | "stopped" | "skipped"
    pid: int | None
    ports: tuple[int, ...]
    detail: str = ""


def ensure_system_packages(report: Report) -> None:
    """Install the Debian packages on first use (the script is a no-op when all are there)."""
    script = home.checkout().scripts / "install-system-deps.sh"
    if not script.is_file():
        return
    res = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    if res.stdout.strip():
        report(res.stdout.strip())
    if res.returncode != 0:
        raise StackError(f"installing system packages failed:\n{res.stderr or res.stdout}")


def selected(config: StackConfig, components: Sequence[Component] = COMPONENTS) -> list[Component]:
    """The components this config asks for, in stack order."""
    if config.only is None:
        return list(components)
    known = {c.name for c in components}
    unknown = set(config.only) - known
    if unknown:
        raise StackError(f"unknown component(s) {sorted(unknown)}; known: {sorted(known)}")
    return [c for c in components if c.name in config.only]


def up(
    config: StackConfig,
    *,
    install: bool = True,
    report: Report = _log.info,
    components: Sequence[Component] = COMPONENTS,
) -> list[ComponentStatus]:
    """Start every selected component that is not already running; wait until ready.

    Raises:
        StackError: A port is taken by a process we did not start, a required server is
            missing, or a component failed to start (its log tail is in the message).
            Components started by this call are stopped again before raising.
    """
    if install:
        ensure_system_packages(report)
    state = StateFile(config.state_path)
    running = {n: e for n, e in state.load().items() if e.ours()}
    plan: list[Component] = []
    skipped: dict[str, str] = {}
    for comp in selected(config, components):
        if comp.name in running:
            report(f"{comp.name}: already running (pid {running[comp.name].pid})")
            continue
        why = comp.missing()
        if why is not None:
            if comp.name in REQUIRED or config.only is not None:
                raise StackError(f"{comp.name} cannot start: {why}")
            skipped[comp.name] = why
            report(f"{comp.name}: skipped ({why})")
            continue
        plan.append(comp)
    taken = [(c.name, p) for c in plan for p in c.ports(config) if port_in_use(p)]
    if taken:
        detail = ", ".join(f"{port} ({name})" for name, port in taken)
        raise StackError(
            f"port(s) already in use by processes this stack did not start: {detail}. "
            "Stop them, or run `trading-otel status` to see what is ours."
        )
    names = frozenset(running) | frozenset(c.name for c in plan)
    started: list[Entry] = []
    try:
        for _, wave in groupby(plan, key=lambda c: c.wave):
            batch = list(wave)
            with ThreadPoolExecutor(max_workers=len(batch)) as pool:
                futures = [(c, pool.submit(_start, c, config, names)) for c in batch]
                errors = []
                for comp, fut in futures:
                    try:
                        entry = fut.result()
                    except ServerError as exc:
                        errors.append(f"{comp.name}: {exc}")
                        continue
                    started.append(entry)
                    state.put(entry)
                    report(f"{comp.name}: ready (pid {entry.pid}, ports {list(entry.ports)})")
                if errors:
                    raise StackError("\n".join(errors))
    except BaseException:
        for entry in reversed(started):
            entry.stop()
            _reap(entry.pid)
            state.remove(entry.name)
        raise
    return status(config, components, skipped=skipped)


def _start(comp: Component, config: StackConfig, names: frozenset[str]) -> Entry:
    proc = comp.launch(config, names)
    pid = proc.pid
    if pid is not None:
        _HANDLES[pid] = proc
    ticks = start_ticks(pid) if pid is not None else None
    if pid is None or ticks is None:
        raise ServerError(f"{comp.name} exited right after becoming ready")
    return Entry(comp.name, pid, ticks, tuple(comp.ports(config)), str(proc.log_path),
                 comp.stop_signal)  # fmt: skip


def down(
    config: StackConfig, *, report: Report = _log.info, components: Sequence[Component] = COMPONENTS
) -> list[str]:
    """Stop, in reverse start order, every process the state file says we started.

    A pid that no longer names the process we started is left alone and forgotten.
    Returns the names of the components that were stopped.
    """
    state = StateFile(config.state_path)
    entries = state.load()
    order = [c.name for c in components]
    stopped = []
    for name in sorted(entries, key=lambda n: order.index(n) if n in order else -1, reverse=True):
        entry = entries[name]
        if entry.ours():
            outcome = entry.stop()
            stopped.append(name)
            _reap(entry.pid)
        else:
            outcome = f"pid {entry.pid} is no longer ours; left alone"
        report(f"{name}: {outcome}")
        state.remove(name)
    return stopped


def _reap(pid: int) -> None:
    handle = _HANDLES.pop(pid, None)
    if handle is not None and handle.proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            handle.proc.wait(5)


def status(
    config: StackConfig,
    components: Sequence[Component] = COMPONENTS,
    *,
    skipped: dict[str, str] | None = None,
) -> list[ComponentStatus]:
    """The state of every component: ready, starting (running, probe failing) or stopped."""
    entries = StateFile(config.state_path).load()
    out = []
    for comp in components:
        entry = entries.get(comp.name)
        ports = tuple(comp.ports(config))
        if skipped and comp.name in skipped:
            out.append(ComponentStatus(comp.name, "skipped", None, ports, skipped[comp.name]))
        elif entry is None or not entry.ours():
            busy = [p for p in ports if port_in_use(p)]
            detail = f"port(s) {busy} in use by another process" if busy else ""
            out.append(ComponentStatus(comp.name, "stopped", None, ports, detail))
        else:
            ready = comp.ready(config)
            out.append(ComponentStatus(comp.name, "ready" if ready else "starting", entry.pid,
                                       entry.ports, entry.log))  # fmt: skip
    return out
