"""What both FastAPI server paths share: ASGI types, the logger, ``url.query`` and flushing.

The lean path (:mod:`otel._internal.server_telemetry`) and the middleware path
(:mod:`otel._internal.server_middleware`) both import this module and never each other's
state at run time: ``server_telemetry.install`` tells the middleware path what to serve.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from otel._internal import sanitize

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: Exports what is buffered (``otel._internal.bootstrap.flush``); None: nothing to flush.
Flush = Callable[[], object] | None

SCOPE_NAME = "otel.server"
log = logging.getLogger("otel.server")

#: ``k=v&k=v`` with characters that parse_qsl/urlencode give back unchanged.
_PLAIN_QUERY = re.compile(
    rb"[A-Za-z0-9._~+-]+=[A-Za-z0-9._~+-]*(?:&[A-Za-z0-9._~+-]+=[A-Za-z0-9._~+-]*)*"
)


def query(raw: bytes) -> str:
    """``url.query`` as FastAPI encodes it (parse, mask, re-encode), with our wider list of
    sensitive names (``sanitize.SENSITIVE_QUERY_PARAMS`` plus the configured ones)."""
    if _PLAIN_QUERY.fullmatch(raw):
        # Nothing to decode or re-encode (no '%', no blank pairs), so the round trip
        # through parse_qsl/urlencode would return the same text: skip it (~15 us)
        # unless a key needs masking, which one case-insensitive search tells.
        return sanitize.redact_query(raw.decode("ascii"))
    names = sanitize.sensitive_params()
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return urlencode([(k, sanitize.MASK if k.lower() in names else v) for k, v in pairs])


def flushing(send: Send, flush: Flush) -> Send:
    """``send`` that runs ``flush`` before passing on ``lifespan.shutdown.complete``."""
    if flush is None:
        return send
    export = flush

    async def flushing_send(message: Message) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            from anyio.to_thread import run_sync

            await run_sync(export)
        await send(message)

    return flushing_send
