"""SQL, exception messages and Redis keys lose their values before reaching a span."""

from __future__ import annotations

import pytest

from otel._internal.sanitize import redis_key_shape, sanitize_message, sanitize_sql


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
