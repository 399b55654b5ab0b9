"""API-key authentication of the services' HTTP APIs: ``Authorization: Bearer <key>``.

The keys a service accepts come from ``TRADING_OTEL_API_KEYS`` (comma-separated). With
none configured the check is off and the service says so once at startup. A refused
request answers 401 and counts ``trading_auth_failures_total{reason}``: ``missing`` (no
credentials) or ``invalid`` (wrong scheme or unknown key). The presented key goes nowhere:
not into a span, a log record or a metric; only its SHA-256 is compared, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import Depends, HTTPException, Request

from services.common.telemetry import meters

_log = logging.getLogger("services.auth")

KEYS_VAR = "TRADING_OTEL_API_KEYS"
CLIENT_KEY_VAR = "TRADING_OTEL_API_KEY"
#: Shorter keys are refused at startup: a short key can be guessed.
MIN_KEY_LENGTH = 16


def parse_keys(raw: str) -> tuple[str, ...]:
    """The keys in ``raw`` (comma-separated; blanks around them ignored).

    Raises:
        ValueError: A key is shorter than :data:`MIN_KEY_LENGTH` or holds characters a
            header cannot carry. The message names the variable and the key's position,
            never the key.
    """
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for i, key in enumerate(keys, 1):
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"{KEYS_VAR}: key #{i} is shorter than {MIN_KEY_LENGTH} characters")
        if not all(33 <= ord(c) <= 126 and c != "," for c in key):
            raise ValueError(f"{KEYS_VAR}: key #{i} holds spaces or non-ASCII characters")
    return keys


def client_key(environ: Mapping[str, str]) -> str | None:
    """The key a client of the gateway presents: ``TRADING_OTEL_API_KEY``, else the first
    of ``TRADING_OTEL_API_KEYS``, else None (send no credentials)."""
    own = environ.get(CLIENT_KEY_VAR, "").strip()
    if own:
        return own
    first = next((k.strip() for k in environ.get(KEYS_VAR, "").split(",") if k.strip()), "")
    return first or None


def bearer(key: str | None) -> dict[str, str]:
    """The request headers that present ``key`` (none without a key)."""
    return {"Authorization": f"Bearer {key}"} if key else {}


class ApiKeyAuth:
    """A FastAPI dependency that lets a request through only with one of ``keys``."""

    def __init__(self, keys: tuple[str, ...], service: str) -> None:
        self._digests = tuple(hashlib.sha256(k.encode()).digest() for k in keys)
        self.service = service

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def dependencies(self) -> list[Any]:
        """The route dependencies that enforce the keys: none at all when no key is set,
        so an open API adds no per-request work to the order path."""
        return [Depends(self)] if self.enabled else []

    def warn_if_open(self) -> None:
        """Log once, at startup, that the API accepts anyone (no key configured)."""
        if not self.enabled:
            _log.warning("%s: %s is not set; its API accepts unauthenticated requests",
                         self.service, KEYS_VAR)  # fmt: skip

    def reason(self, authorization: str | None) -> str | None:
        """Why an ``Authorization`` header value is refused, or None when it is accepted."""
        if not self.enabled:
            return None
        if authorization is None or not authorization.strip():
            return "missing"
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return "invalid"
        digest = hashlib.sha256(presented.strip().encode()).digest()
        matched = False
        for known in self._digests:  # no early exit: the time taken names no key
            matched |= hmac.compare_digest(digest, known)
        return None if matched else "invalid"

    async def __call__(self, request: Request) -> None:
        why = self.reason(request.headers.get("authorization"))
        if why is None:
            return
        meters().auth_failures.add(1, reason=why)
        client = request.client.host if request.client else "unknown"
        _log.info("refused %s %s from %s: %s API key", request.method, request.url.path,
                  client, why)  # fmt: skip
        raise HTTPException(
            401, f"{why} API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": 'Bearer realm="trading-otel"'},
        )  # fmt: skip
