"""The ``--where`` filter of an on-demand snapshot: exactly one boolean SQL expression.

The filter is pasted into the snapshot's chunk queries, so anything but one expression is
refused before a request is recorded: first by parsing it (sqlglot, PostgreSQL dialect) — a
``;``, a statement (DDL, DML, ``SELECT``), a comment (it would swallow the rest of the chunk
query) or unbalanced parentheses — then by PostgreSQL itself, which plans
``SELECT 1 FROM <table> WHERE (<filter>)`` inside a READ ONLY transaction that is rolled back:
unknown columns and non-boolean expressions are refused there, and even a statement that slipped
past the parser could not write.
"""

from __future__ import annotations

from typing import Any

import sqlglot
from psycopg2 import sql
from sqlglot import TokenType, exp
from sqlglot.errors import SqlglotError

from datamesh.cdc.errors import SnapshotFilterRefused

CHECK_TIMEOUT_MS = 5_000


def parse_where(where: str, table: str) -> exp.Condition:
    """The one expression ``where`` holds; :class:`SnapshotFilterRefused` for anything else."""
    try:
        tokens = sqlglot.tokenize(where, read="postgres")
        trees = [t for t in sqlglot.parse(where, read="postgres") if t is not None]
    except SqlglotError as exc:
        raise SnapshotFilterRefused(where, table, _first_line(exc)) from None
    if any(t.token_type == TokenType.SEMICOLON for t in tokens):
        raise SnapshotFilterRefused(where, table, "`;` ends a statement: a second one is not run")
    if any(t.comments for t in tokens):
        raise SnapshotFilterRefused(where, table, "comments are not allowed")
    if not trees:
        raise SnapshotFilterRefused(where, table, "the filter is empty")
    tree = trees[0]
    if not isinstance(tree, exp.Condition):
        what = tokens[0].text.upper()  # the statement's keyword (sqlglot's key may differ)
        raise SnapshotFilterRefused(where, table, f"a {what} statement is not an expression")
    if isinstance(tree, exp.Literal):
        raise SnapshotFilterRefused(where, table, f"{tree.sql()} is not a boolean")
    return tree


def check_where(cur: Any, table: str, where: str) -> None:
    """Parse ``where``, then have PostgreSQL plan it on ``table`` in a READ ONLY transaction.

    ``cur`` must be on an autocommit connection (the transaction is opened and rolled back
    here, whatever happens).
    """
    parse_where(where, table)
    plan_where(cur, table, where)


def plan_where(cur: Any, table: str, where: str) -> None:
    """PostgreSQL's verdict on ``where`` (already parsed): planned, never run, in a READ ONLY
    transaction rolled back at the end."""
    schema, name = table.split(".", 1)
    query = sql.SQL("EXPLAIN SELECT 1 FROM {}.{} WHERE ({})").format(
        sql.Identifier(schema), sql.Identifier(name), sql.SQL(where)
    )
    cur.execute("BEGIN READ ONLY")
    try:
        cur.execute(f"SET LOCAL statement_timeout = {CHECK_TIMEOUT_MS}")
        cur.execute(query)
    except Exception as exc:  # any SQL error: the filter is bad input
        problem = f"not a valid filter: {_first_line(exc)}"
        raise SnapshotFilterRefused(where, table, problem) from exc
    finally:
        cur.execute("ROLLBACK")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
