"""Batch processors whose full queue costs the request thread nothing but a count.

When the collector is dead or black-holed, the SDK's batch queue fills and every new
span or log record is dropped with a ``logger.warning`` call. The SDK filters the
repeats out, but only after ``logging`` has built the record and walked the stack for
its caller: about 10 µs on the request thread for every item, so a dead collector cost
the order path more than a live one.

These subclasses look at the queue before handing the item over. When it is full, the
item is counted and dropped (the newest, where the SDK would evict the oldest), and one
warning per :data:`WARN_EVERY_S` gives the count. Everything else is the SDK's processor.

The queue is a private part of the SDK's ``BatchProcessor``. It is looked up once, when
the processor is built; if it is not where 1.45 keeps it, the processor is the SDK's own,
per-item warnings included.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_log = logging.getLogger("otel.exporters")
#: At most one "dropped" warning per signal in this many seconds.
WARN_EVERY_S = 10.0


class DropGate:
    """Says whether a batch queue is full, and counts and reports what it turns away."""

    def __init__(self, processor: Any, what: str, variable: str) -> None:
        batch = getattr(processor, "_batch_processor", None)
        queue = getattr(batch, "_queue", None)
        size = getattr(batch, "_max_queue_size", None)
        self.usable = isinstance(queue, deque) and isinstance(size, int) and size > 0
        self._queue: deque[Any] = queue if isinstance(queue, deque) else deque()
        self._size = size if isinstance(size, int) else 0
        self._what = what
        self._variable = variable
        self._lock = threading.Lock()
        self.dropped = 0
        self._unreported = 0
        self._next_warning = 0.0

    def full(self) -> bool:
        """True (and the item counted as dropped) when the queue holds no more room."""
        if len(self._queue) < self._size:
            return False
        with self._lock:
            self.dropped += 1
            self._unreported += 1
            now = time.monotonic()
            if now < self._next_warning:
                return True
            count, self._unreported = self._unreported, 0
            self._next_warning = now + WARN_EVERY_S
        _log.warning(
            "%d %s dropped: the export queue is full (%s=%d); is the collector reachable?",
            count,
            self._what,
            self._variable,
            self._size,
        )
        return True


class SpanBatcher(BatchSpanProcessor):
    """``BatchSpanProcessor`` that turns spans away from a full queue for a count only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = DropGate(self, "spans", "OTEL_BSP_MAX_QUEUE_SIZE")

    def on_end(self, span: ReadableSpan) -> None:
        sampled = span.context is not None and span.context.trace_flags.sampled
        if sampled and self.gate.usable and self.gate.full():
            return
        super().on_end(span)


class LogBatcher(BatchLogRecordProcessor):
    """``BatchLogRecordProcessor`` that turns records away from a full queue for a count."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = DropGate(self, "log records", "OTEL_BLRP_MAX_QUEUE_SIZE")

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        if self.gate.usable and self.gate.full():
            return
        super().on_emit(log_record)
