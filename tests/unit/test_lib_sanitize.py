"""SQL, exception messages and Redis keys lose their values before reaching a span."""

from __future__ import annotations

import pytest

from otel._internal.sanitize import (
    MASK,
    SENSITIVE_QUERY_PARAMS,
    redact_pairs,
    redact_query,
    redact_url,
    redis_key_shape,
    sanitize_message,
    sanitize_sql,
    sensitive_params,
    set_sensitive_params,
)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT * FROM orders WHERE account_id = 'ACC-42' AND qty > 100",
            "SELECT * FROM orders WHERE account_id = ? AND qty > ?",
        ),
        (
            "UPDATE p SET price = 101.25, q = -3 WHERE id = $1",
            "UPDATE p SET price = ?, q = -? WHERE id = $1",
        ),
        ("INSERT INTO t (a, b) VALUES ('it''s', 1e-3)", "INSERT INTO t (a, b) VALUES (?, ?)"),
        ("SELECT E'\\x41', X'1F', 0xFF", "SELECT ?, ?, ?"),
        ("SELECT $$secret text$$, $q$more$q$", "SELECT ?, ?"),
        ('SELECT "col 1", t2.c3 FROM t2', 'SELECT "col 1", t2.c3 FROM t2'),
        ("SELECT 1 -- note 42\nFROM t /* id 7 */", "SELECT ? -- note 42\nFROM t /* id 7 */"),
        ("SELECT * FROM t WHERE a = $1 AND b = $2", "SELECT * FROM t WHERE a = $1 AND b = $2"),
    ],
)
def test_sql_literals_become_placeholders(sql: str, expected: str) -> None:
    assert sanitize_sql(sql) == expected


@pytest.mark.parametrize(
    ("message", "leak"),
    [
        ('invalid input syntax for type integer: "ACC-42"', "ACC-42"),
        ("Key (account_id)=(ACC-42) already exists.", "ACC-42"),
        ("value 12345 out of range", "12345"),
        ("bad price '101.5'", "101.5"),
    ],
)
def test_exception_message_values_are_removed(message: str, leak: str) -> None:
    cleaned = sanitize_message(message)
    assert leak not in cleaned
    assert "?" in cleaned


def test_long_messages_are_cut() -> None:
    assert len(sanitize_message("x" * 5000)) == 300


@pytest.mark.parametrize(
    ("key", "shape"),
    [
        ("position:ACC123:AAPL", "position:?:AAPL"),
        (b"quote:MSFT", "quote:MSFT"),
        ("session:3f2a9c1e-77aa-4b7e-9a6c-0123456789ab", "session:?"),
        ("orders", "orders"),
        (42, "?"),
    ],
)
def test_redis_key_shape_keeps_structure_not_ids(key: object, shape: str) -> None:
    assert redis_key_shape(key) == shape


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("api_key=k1&qty=5&Token=t1", "api_key=REDACTED&qty=5&Token=REDACTED"),
        ("API%5FKEY=k&api_key=a&api_key=b", "API%5FKEY=REDACTED&api_key=REDACTED&api_key=REDACTED"),
        ("symbol=AAPL&side=buy", "symbol=AAPL&side=buy"),
        ("monkey=1&keyring=2&token", "monkey=1&keyring=2&token"),
        ("pass%77ord=x&q=%41", "pass%77ord=REDACTED&q=%41"),
    ],
)  # fmt: skip
def test_redact_query_keeps_names_and_everything_else_verbatim(query: str, expected: str) -> None:
    assert redact_query(query) == expected


def test_redact_query_returns_the_same_object_when_nothing_is_sensitive() -> None:
    query = "symbol=AAPL&side=buy&qty=5"
    assert redact_query(query) is query


def test_redact_url_masks_the_query_only() -> None:
    url = "https://user@broker.example:8443/v1/orders?sig=abc&qty=5#frag"
    assert redact_url(url) == "https://user@broker.example:8443/v1/orders?sig=REDACTED&qty=5#frag"
    assert redact_url("https://broker.example/v1/orders") == "https://broker.example/v1/orders"


def test_configured_names_are_added_and_undone() -> None:
    assert redact_query("account_ref=A1") == "account_ref=A1"
    undo = set_sensitive_params([" Account_Ref ", ""])
    try:
        assert "account_ref" in sensitive_params()
        assert redact_query("ACCOUNT_REF=A1&token=t") == f"ACCOUNT_REF={MASK}&token={MASK}"
        assert redact_pairs("ref account_ref=A1") == f"ref account_ref={MASK}"
    finally:
        undo()
    assert sensitive_params() == SENSITIVE_QUERY_PARAMS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /q?api_key=K1&x=1 failed", f"GET /q?api_key={MASK}&x=1 failed"),
        ('{"token": "T1", "n": 1}', f'{{"token": "{MASK}", "n": 1}}'),
        ("X-Api-Key: K2", f"X-Api-Key: {MASK}"),
        ("client_secret='S3'", f"client_secret='{MASK}'"),
        ("monkey=1 keyring=2 signal: buy", "monkey=1 keyring=2 signal: buy"),
    ],
)
def test_redact_pairs_in_free_text(text: str, expected: str) -> None:
    assert redact_pairs(text) == expected


def test_exception_message_keeps_the_name_of_a_masked_pair() -> None:
    cleaned = sanitize_message("upstream said: invalid api_key=CANARY42 for account 7")
    assert "CANARY42" not in cleaned and "api_key=REDACTED" in cleaned
