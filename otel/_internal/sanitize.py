"""Strip values out of SQL, URLs, exception messages and Redis keys before export.

Upstream's asyncpg instrumentation records the raw statement (contrib #1755), so a
literal account id or price in a query would land in every trace backend. A client that
puts ``?api_key=...`` in a URL would likewise put its key into ``url.query``: the values
of sensitive parameters are masked with :data:`MASK`, their names kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import unquote_plus, urlsplit, urlunsplit

#: What a masked value becomes. Semantic conventions use it for ``url.query``, and the
#: collector's ``transform/secrets`` writes the same (collector/config/common.yaml).
MASK = "REDACTED"

#: Query parameters whose values never leave the process (compared case-insensitively,
#: after percent-decoding). Ours, plus the semconv and FastAPI lists of signed-URL parts.
SENSITIVE_QUERY_PARAMS = frozenset({
    "api_key", "apikey", "key", "token", "access_token", "secret", "password",
    "signature", "sig",
    "awsaccesskeyid", "x-goog-signature", "x-amz-signature", "x-amz-security-token",
    "x-amz-credential",
})  # fmt: skip


class _Sensitive:
    """The active parameter names and the patterns built from them (swapped as one)."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        # A plain query (no '%') holds a sensitive name only if this finds it.
        self.plain = re.compile(rf"(?:^|&)(?:{alternatives})=", re.IGNORECASE)
        # name=value, name: value, "name": "value" in free text (messages); keeps the
        # name. Prefixed names count too (x-api-key, client_secret, refresh_token).
        self.pairs = re.compile(
            rf"""((?<![\w.%-])(?:[a-z0-9]+[_.-])*(?:{alternatives})["']?\s*[:=]\s*["']?)"""
            r"""[^\s&#"',;}\]]+""",
            re.IGNORECASE,
        )
        # A cheap screen in front of ``pairs``, whose IGNORECASE scan costs ~100 ns a
        # character: on ASCII text (lowercased exactly as IGNORECASE compares it) a pair
        # needs one of these substrings, then a name right before ':' or '='. A configured
        # non-ASCII name could match ASCII text by Unicode case folding: no screen then.
        self.screen = all(n.isascii() for n in names)
        self.needles = tuple(sorted(n for n in names if not any(o != n and o in n for o in names)))
        self.lowered = re.compile(rf"""(?:{alternatives})["']?\s*[:=]""")


_active = _Sensitive(SENSITIVE_QUERY_PARAMS)


def sensitive_params() -> frozenset[str]:
    """The parameter names masked right now (defaults plus configured ones), lowercase."""
    return _active.names


def set_sensitive_params(extra: Iterable[str]) -> Callable[[], None]:
    """Mask ``extra`` parameter names too (``TRADING_OTEL_REDACT_QUERY_PARAMS``).

    Returns:
        A function restoring the previous names.
    """
    global _active
    previous = _active
    _active = _Sensitive(SENSITIVE_QUERY_PARAMS | {n.strip().lower() for n in extra if n.strip()})

    def undo() -> None:
        global _active
        _active = previous

    return undo


def redact_query(query: str) -> str:
    """``query`` with the values of sensitive parameters replaced by :data:`MASK`.

    Everything else is kept byte for byte; names are matched after percent-decoding
    (``api%5Fkey``), every repetition is masked, and a query without a sensitive
    name is returned as it came, after one regex search.

    >>> redact_query("api_key=k1&qty=5&Token=t1")
    'api_key=REDACTED&qty=5&Token=REDACTED'
    """
    active = _active
    if "%" not in query and active.plain.search(query) is None:
        return query
    parts = query.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, sep, _ = part.partition("=")
        if sep and unquote_plus(name).lower() in active.names:
            parts[i] = f"{name}={MASK}"
            changed = True
    return "&".join(parts) if changed else query


def redact_url(url: str) -> str:
    """``url`` with sensitive query values masked (see :func:`redact_query`)."""
    if "?" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_pairs(url)
    query = redact_query(parts.query)
    return url if query == parts.query else urlunsplit(parts._replace(query=query))


def redact_pairs(text: str) -> str:
    """Mask the values of sensitive ``name=value`` / ``name: value`` pairs in free text.

    Text without such a pair is returned as it came (the same object).
    """
    active = _active
    if active.screen and text.isascii():
        low = text.lower()
        for needle in active.needles:
            if needle in low:
                break
        else:
            return text
        if active.lowered.search(low) is None:
            return text
    return active.pairs.sub(rf"\g<1>{MASK}", text)


# One pass over the text; the first alternative that matches at a position wins, so
# quoted identifiers and comments are consumed (and kept) before their contents could
# look like literals.
_SQL_TOKENS = re.compile(
    r"""
      (?P<ident>"(?:[^"]|"")*")                      # "quoted identifier": kept
    | (?P<comment>--[^\n]*|/\*.*?\*/)                 # comments: kept
    | (?P<string>[eEbBxXnN]?'(?:[^'\\]|''|\\.)*')     # 'string', E'..', B'..', X'..'
    | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$)   # $$..$$ / $t$..$t$
    | (?P<param>\$\d+)                                # $1 placeholders: kept
    | (?P<number>(?<![\w.])(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+))
    """,
    re.VERBOSE | re.DOTALL,
)


def _sql_sub(match: re.Match[str]) -> str:
    if match.group("string") is not None or match.group("dollar") is not None:
        return "?"
    if match.group("number") is not None:
        return "?"
    return match.group(0)


def sanitize_sql(statement: str) -> str:
    """Replace every string and numeric literal in ``statement`` with ``?``.

    Placeholders (``$1``), identifiers (also quoted ones) and comments are kept.

    >>> sanitize_sql("SELECT * FROM orders WHERE account = 'ACC-9' AND qty > 10.5")
    'SELECT * FROM orders WHERE account = ? AND qty > ?'
    """
    return _SQL_TOKENS.sub(_sql_sub, statement)


_MESSAGE_VALUES = re.compile(
    r"""
      "(?:[^"\\]|\\.)*"          # Postgres quotes offending values in double quotes
    | '(?:[^'\\]|\\.)*'
    | \(\S[^()]*\)=\([^()]*\)     # DETAIL-style (col)=(value)
    | (?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w])
    """,
    re.VERBOSE,
)


def sanitize_message(message: str, *, limit: int = 300) -> str:
    """An exception message with quoted values and numbers replaced by ``?``.

    Values of sensitive ``name=value`` pairs are masked first, so their names survive.

    The message is also cut to ``limit`` characters, since a driver may echo a whole
    statement or payload back.
    """
    cleaned = _MESSAGE_VALUES.sub("?", redact_pairs(message))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


_VOLATILE = re.compile(r"\d|^[0-9a-fA-F-]{16,}$")


def redis_key_shape(key: object) -> str:
    """The shape of a Redis key: ``position:ACC123:AAPL`` becomes ``position:?:AAPL``.

    Segments (split on ``:``) holding a digit or longer than 24 characters are ids,
    not shape, and become ``?``.
    """
    if isinstance(key, bytes):
        text = key.decode("utf-8", "replace")
    elif isinstance(key, str):
        text = key
    else:
        return "?"
    return ":".join("?" if _VOLATILE.search(p) or len(p) > 24 else p for p in text.split(":"))
