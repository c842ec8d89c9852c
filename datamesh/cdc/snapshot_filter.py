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

import psycopg2
import psycopg2.errorcodes
import psycopg2.errors
import sqlglot
from psycopg2 import sql
from sqlglot import TokenType, exp
from sqlglot.errors import SqlglotError

from datamesh.cdc.errors import SnapshotFilterRefused, SourceUnavailable
from datamesh.errors import MeshError, TerminalError

CHECK_TIMEOUT_MS = 5_000
# PostgreSQL's verdicts (SQLSTATE prefixes) that are about the filter: a syntax error or unknown
# column (class 42), a bad literal or cast (22), something not supported in it (0A), a write
# attempted inside the READ ONLY transaction (25006).
_FILTER_FAULTS = ("42", "22", "0A", "25006")
_NO_PRIVILEGE = (
    psycopg2.errorcodes.INSUFFICIENT_PRIVILEGE
)  # 42501: the user's rights, not the filter
_TIMED_OUT = psycopg2.errorcodes.QUERY_CANCELED  # 57014: statement_timeout
_CONNECTION = "08"


def _sqlstates() -> dict[type, str]:
    """Error class -> SQLSTATE: psycopg2 raises one class per state, so the class names the
    state of an error whose ``pgcode`` is unset."""
    found: dict[type, str] = {}
    for name, code in vars(psycopg2.errorcodes).items():
        if name.isupper() and isinstance(code, str) and len(code) == 5:
            try:
                found[psycopg2.errors.lookup(code)] = code
            except KeyError:
                continue
    return found


_SQLSTATE = _sqlstates()


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
    except psycopg2.Error as exc:
        raise check_failure(exc, table, where) from exc
    finally:
        if not cur.connection.closed:
            cur.execute("ROLLBACK")


def check_failure(exc: psycopg2.Error, table: str, where: str) -> MeshError:
    """What a PostgreSQL error while planning ``where`` means: the filter's fault
    (:class:`SnapshotFilterRefused`), the connector user's rights, planning that ran out of
    time, a lost connection (:class:`SourceUnavailable`, transient) — or something else, said as
    it is rather than blamed on the filter."""
    first = _first_line(exc)
    state = exc.pgcode or _SQLSTATE.get(type(exc), "")
    if state == _NO_PRIVILEGE:
        return TerminalError(
            f"could not check --where on {table}: the connector's user may not read it ({first})",
            fix=f"GRANT SELECT ON {table} TO the connector's user",
        )
    if state.startswith(_FILTER_FAULTS):
        return SnapshotFilterRefused(where, table, f"not a valid filter: {first}")
    if state == _TIMED_OUT:
        return SnapshotFilterRefused(
            where, table, f"PostgreSQL did not plan it within {CHECK_TIMEOUT_MS} ms ({first})"
        )
    lost = isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and not state
    if lost or state.startswith(_CONNECTION):
        return SourceUnavailable(
            f"could not check --where on {table}: the connection to PostgreSQL failed ({first})",
            fix="check that PostgreSQL is up and reachable, then request the snapshot again",
        )
    return TerminalError(
        f"could not check --where on {table}: PostgreSQL answered {type(exc).__name__} "
        f"{state} ({first})",
        fix="read PostgreSQL's message; the filter itself may be fine",
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
