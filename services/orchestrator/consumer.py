"""Consume order events from the Redis stream, each in a span LINKED to the order's trace.

The gateway answers before anyone downstream handles the event, so the consumer span is
not a child of the order (that would stretch the order's trace over unrelated work): it
starts its own trace and carries a span link to the order's span, per the messaging
semantic conventions.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import redis.asyncio as aioredis
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Link, SpanKind

from services.common.tasks import cancel_and_wait
from services.common.telemetry import tracer

_log = logging.getLogger("services.orchestrator.consumer")
STREAM = "orders:events"
GROUP = "orchestrator"


class OrderEventConsumer:
    """Reads ``orders:events`` with a consumer group; acknowledges each event it handled."""

    def __init__(self, client: aioredis.Redis, consumer: str = "orchestrator-1") -> None:
        self.client = client
        self.consumer = consumer
        self.handled: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
        except aioredis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def poll(self, block_ms: int = 500) -> int:
        """Read and handle one batch; returns how many events were handled."""
        # The blocking read itself is an idle wait, not work: no span for it.
        with suppress_instrumentation():
            batches: Any = await self.client.xreadgroup(
                GROUP, self.consumer, {STREAM: ">"}, count=100, block=block_ms
            )
        n = 0
        for _stream, messages in batches or []:
            for message_id, fields in messages:
                await self.handle(message_id, fields)
                n += 1
        return n

    async def handle(self, message_id: str, fields: dict[str, Any]) -> None:
        producer = trace.get_current_span(propagate.extract(fields)).get_span_context()
        links = [Link(producer)] if producer.is_valid else []
        with tracer().start_as_current_span(
            f"{STREAM} process",
            kind=SpanKind.CONSUMER,
            links=links,
            context=trace.set_span_in_context(trace.INVALID_SPAN),
        ) as span:
            span.set_attributes({
                "messaging.system": "redis",
                "messaging.destination.name": STREAM,
                "messaging.operation.type": "process",
                "messaging.message.id": message_id,
                "messaging.consumer.group.name": GROUP,
                "trading.order.id": fields.get("id", ""),
                "trading.order.outcome": fields.get("status", ""),
            })  # fmt: skip
            status = fields.get("status", "unknown")
            self.handled[status] += 1
            _log.info("order event %s: order %s %s", message_id, fields.get("id"), status)
            await self.client.xack(STREAM, GROUP, message_id)

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.ensure_group()
                while not self._stopping:
                    await self.poll()
            except Exception as exc:  # Redis away: retry, never die
                _log.warning("order-event consumer: %s; retrying in 1 s", exc)
                await asyncio.sleep(1)

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name="order-event-consumer")

    async def stop(self) -> None:
        """Stop after the current read (at most ~0.5 s); cancel only as a last resort.

        Cancelling a task inside redis-py's blocking XREADGROUP can leave it waiting on
        the connection forever, so the loop is asked to finish instead.
        """
        if self._task is None:
            return
        self._stopping = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=3)
        except TimeoutError:
            await cancel_and_wait(self._task)
