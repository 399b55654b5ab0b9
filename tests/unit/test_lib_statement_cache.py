"""asyncpg statements: the cached (operation, sanitised text) equals the uncached one."""

from __future__ import annotations

import pytest

from otel._internal import instrumentation
from otel._internal.instrumentation import (
    STATEMENT_CACHE_MAX_LEN,
    STATEMENT_CACHE_SIZE,
    _cached_statement,
    statement_parts,
)
from otel._internal.sanitize import sanitize_sql

#: (statement, the operation it must give). The text must be sanitize_sql's, uncached.
STATEMENTS = [
    ("SELECT * FROM orders WHERE account_id = 'ACC-42' AND qty > 100", "SELECT"),
    ("UPDATE p SET price = 101.25, q = -3 WHERE id = $1", "UPDATE"),
    ("  /* app:gateway */ /* 7 */ insert INTO t (a) VALUES ('x')", "INSERT"),
    ("BEGIN;", "BEGIN"),
    ("\nSELECT\n  coalesce((SELECT quantity FROM positions WHERE symbol = $1), 0)", "SELECT"),
    ("SELECT $$secret text$$, $q$more$q$", "SELECT"),
    ("", "QUERY"),
    ("-- only a comment", "QUERY"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH"),
]


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    _cached_statement.cache_clear()


@pytest.mark.parametrize(("sql", "operation"), STATEMENTS)
def test_cached_parts_equal_the_uncached_path(sql: str, operation: str) -> None:
    expected = (operation, sanitize_sql(sql))
    assert statement_parts(sql) == expected  # miss
    assert statement_parts(sql) == expected  # hit
    assert _cached_statement.cache_info().hits == 1


def test_literals_are_separate_keys_with_the_same_text() -> None:
    parts = {statement_parts(f"SELECT px FROM orders WHERE id = {n} AND a = 'ACC-{n}'")
             for n in range(50)}  # fmt: skip
    assert parts == {("SELECT", "SELECT px FROM orders WHERE id = ? AND a = ?")}
    info = _cached_statement.cache_info()
    assert (info.misses, info.hits, info.currsize) == (50, 0, 50)


def test_the_cache_is_bounded() -> None:
    for n in range(STATEMENT_CACHE_SIZE * 2):
        assert statement_parts(f"SELECT {n}") == ("SELECT", "SELECT ?")
    assert _cached_statement.cache_info().currsize == STATEMENT_CACHE_SIZE


def test_long_statements_are_not_kept() -> None:
    sql = "INSERT INTO t VALUES " + ", ".join(
        f"({n}, 'v{n}')" for n in range(STATEMENT_CACHE_MAX_LEN)
    )
    assert len(sql) > STATEMENT_CACHE_MAX_LEN
    assert statement_parts(sql) == ("INSERT", sanitize_sql(sql))
    assert _cached_statement.cache_info().currsize == 0


def test_connection_attributes_are_shared_per_database_and_address() -> None:
    class Params:
        database = "trading"

    class Conn:
        _params = Params()
        _addr = ("127.0.0.1", 5432)

    instrumentation._connections.clear()
    first = instrumentation._connection_entry(Conn())
    second = instrumentation._connection_entry(Conn())
    assert first is second
    assert first == ("trading", instrumentation._connection_attributes(Conn()))
    assert first[1] == {
        "db.system.name": "postgresql",
        "db.namespace": "trading",
        "server.address": "127.0.0.1",
        "server.port": 5432,
    }
    assert instrumentation._connection_entry(None) == ("", {"db.system.name": "postgresql"})


@pytest.mark.parametrize(
    ("sql", "operation"),
    [("BEGIN;", "BEGIN"), ("COMMIT;", "COMMIT"), ("select 1;", "SELECT"), ("-- only", "QUERY"),
     ("", "QUERY"), ("/* c */ ROLLBACK", "ROLLBACK")],
)  # fmt: skip
def test_the_operation_is_the_first_word_without_its_semicolon(sql: str, operation: str) -> None:
    assert statement_parts(sql)[0] == operation
