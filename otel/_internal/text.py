"""Text that cannot be encoded as UTF-8 (lone surrogates) becomes U+FFFD, on copies.

Python strings may hold lone surrogates (``surrogateescape`` decoding of a bad byte
makes one), which UTF-8 cannot encode. Protobuf, our wire encoder and the Prometheus
text format all refuse them: the SDK's exporters drop the whole batch, or, for an
attribute, its encoder leaves the attribute out and logs the raw key.

This module cleans single values and attribute maps. Exporters encode as usual; only when
that fails (:mod:`otel._internal.encode_retry`) is the batch copied
(:mod:`otel._internal.clean_batches`) with each bad code point replaced by one U+FFFD,
and encoded again, so a normal batch costs nothing extra.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes

#: An error handler for ``str.encode``: one U+FFFD per code point UTF-8 cannot encode.
FFFD = "trading_otel.fffd"


def _fffd(error: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    # Bytes, not "\ufffd": the UTF-8 encoder takes only ASCII text from a handler.
    return "\ufffd".encode() * (error.end - error.start), error.end


codecs.register_error(FFFD, _fffd)
_PLAIN = frozenset({int, float, bool, bytes, type(None)})


def clean_text(text: str) -> str:
    """``text`` with each code point UTF-8 cannot encode replaced by U+FFFD.

    Returns ``text`` itself (the same object) when there is nothing to replace.
    """
    if text.isascii():  # O(1): CPython keeps a flag
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", FFFD).decode("utf-8")
    return text


def clean_value(value: Any) -> Any:
    """An attribute value or log body with its text cleaned; ``value`` itself if clean."""
    kind = type(value)
    if kind is str:
        return clean_text(value)
    if kind is list or kind is tuple:
        items = [clean_value(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return kind(items)
    if isinstance(value, Mapping):
        cleaned = clean_mapping(value)
        return value if cleaned is value else dict(cleaned)
    return value


def clean_mapping(attrs: Mapping[str, Any], dropped: int = 0) -> Mapping[str, Any]:
    """Attributes with keys and values cleaned: ``attrs`` itself, or a copy.

    A copy keeps ``dropped``, the count of attributes the SDK dropped. Two keys that
    differ only in bad code points become one key (the last value wins).
    """
    for key, value in attrs.items():  # the usual case, inline: nothing but ASCII
        if type(key) is not str or not key.isascii():
            break
        kind = type(value)
        if kind is str:
            if not value.isascii():
                break
        elif kind not in _PLAIN:
            break
    else:
        return attrs
    out: dict[str, Any] | None = None
    for i, (key, value) in enumerate(attrs.items()):
        k = clean_text(key) if type(key) is str else key
        v = clean_value(value)
        if out is None and (k is not key or v is not value):
            out = dict(list(attrs.items())[:i])
        if out is not None:
            out[k] = v
    if out is None:
        return attrs
    if not dropped:
        return out
    bounded = BoundedAttributes(attributes=out, immutable=True)
    bounded.dropped = dropped
    return bounded


def clean_attrs(attrs: Mapping[str, Any] | None, dropped: int = 0) -> Mapping[str, Any] | None:
    """:func:`clean_mapping` that passes None and empty mappings through."""
    return clean_mapping(attrs, dropped) if attrs else attrs


def require_clean(attrs: Mapping[str, Any] | None, *texts: str | None) -> None:
    """Raise ``ValueError`` if ``attrs`` or ``texts`` hold text UTF-8 cannot encode.

    For callers of the SDK's encoder, which would leave such an attribute out silently.
    """
    if (attrs and clean_mapping(attrs) is not attrs) or any(
        t and clean_text(t) is not t for t in texts
    ):
        raise ValueError("text that is not valid UTF-8")
