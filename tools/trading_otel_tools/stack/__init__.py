"""The local stack: Postgres, Redis, collector, Prometheus, alerting and the services.

Python API (the CLI commands ``up``, ``down``, ``status``, ``load`` and ``fault`` are thin
wrappers over these)::

    from trading_otel_tools.stack import StackConfig, up, down, status
    config = StackConfig.default()          # var/ under the checkout, documented ports
    up(config)                              # start what is not running, wait until ready
    run_load(config, rate=50, duration=30)  # see trading_otel_tools.stack.load
    down(config)                            # stop only what up() started
"""

from __future__ import annotations

from trading_otel_tools.stack.components import COMPONENTS, Component
from trading_otel_tools.stack.config import StackConfig
from trading_otel_tools.stack.faults import clear_fault, inject_fault, list_faults
from trading_otel_tools.stack.load import LoadReport, run_load, wait_until_filled
from trading_otel_tools.stack.manager import ComponentStatus, StackError, down, status, up

__all__ = [
    "COMPONENTS",
    "Component",
    "ComponentStatus",
    "LoadReport",
    "StackConfig",
    "StackError",
    "clear_fault",
    "down",
    "inject_fault",
    "list_faults",
    "run_load",
    "status",
    "up",
    "wait_until_filled",
]
