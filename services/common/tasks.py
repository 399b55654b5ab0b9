"""Stopping background tasks without ever hanging a shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

_log = logging.getLogger("services.tasks")


async def cancel_and_wait(task: asyncio.Task[Any] | None, timeout_s: float = 2.0) -> None:
    """Cancel ``task`` and wait up to ``timeout_s`` for it to finish.

    Awaiting a cancelled task directly can block forever when a client library swallows
    the cancellation (redis-py inside a blocking read); a shutdown must not.
    """
    if task is None or task.done():
        return
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        _log.warning("background task %s did not stop within %.1fs", task.get_name(), timeout_s)
    elif not task.cancelled() and task.exception() is not None:
        _log.warning("background task %s failed: %r", task.get_name(), task.exception())
