"""Strip values out of SQL, exception messages and Redis keys before they reach a span.

Upstream's asyncpg instrumentation records the raw statement (contrib #1755), so a
literal account id or price in a query would land in every trace backend.
"""

from __future__ import annotations

import re

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

    The message is also cut to ``limit`` characters, since a driver may echo a whole
    statement or payload back.
    """
    cleaned = _MESSAGE_VALUES.sub("?", message)
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
