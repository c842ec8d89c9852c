"""Tables joining or leaving a connector's publication, and what must hold before a snapshot.

pgoutput decides whether a change is published with the catalog *as of that change* (logical
decoding reads the catalog through a historic snapshot; PostgreSQL 15 ``pgoutput.c``
``get_rel_sync_entry``): after ``ALTER PUBLICATION ... ADD TABLE`` commits, the changes that
follow it in the log are streamed, and none of those before it — not even the ones of a
transaction that was still open at the ALTER and commits after it. A DBLog snapshot covers what
the stream lacks only if it starts after all of those: :func:`wait_for_writers` waits until
every transaction open after the ALTER has ended, so the first chunk's ``SELECT`` sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg2 import sql

from datamesh.cdc.catalog import one, publication_tables
from datamesh.errors import TransientError
from datamesh.polling import poll

WRITERS_TIMEOUT_S = 60.0


def _table(name: str) -> sql.Composed:
    schema, table = name.split(".", 1)
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def _alter(cur: Any, publication: str, verb: str, tables: Sequence[str]) -> None:
    cur.execute(
        sql.SQL("ALTER PUBLICATION {} {} TABLE {}").format(
            sql.Identifier(publication),
            sql.SQL(verb),
            sql.SQL(", ").join(_table(t) for t in tables),
        )
    )


def add_tables(cur: Any, publication: str, tables: Sequence[str]) -> list[str]:
    """Add the ``tables`` not yet in ``publication`` (one ALTER); returns those added."""
    present = publication_tables(cur, publication) or set()
    missing = [t for t in tables if t not in present]
    if missing:
        _alter(cur, publication, "ADD", missing)
    return missing


def drop_tables(cur: Any, publication: str, tables: Sequence[str]) -> list[str]:
    """Drop the ``tables`` still in ``publication`` (one ALTER); returns those dropped."""
    present = publication_tables(cur, publication) or set()
    there = [t for t in tables if t in present]
    if there:
        _alter(cur, publication, "DROP", there)
    return there


def wait_for_writers(cur: Any, timeout_s: float = WRITERS_TIMEOUT_S) -> None:
    """Return once every transaction that holds an xid now has committed or aborted.

    ``cur`` must be autocommit (its own statements hold no xid). A transaction left open longer
    than ``timeout_s`` raises :class:`TransientError` naming its backends: apply again once it
    ended.
    """
    cur.execute("SELECT pg_snapshot_xip(pg_current_snapshot())::text")
    xids = [row[0] for row in cur.fetchall()]
    if not xids:
        return
    query = "SELECT count(*) FROM unnest(%s::xid8[]) x WHERE pg_xact_status(x) = 'in progress'"
    if poll(lambda: one(cur, query, (xids,))[0] == 0, timeout_s, interval_s=0.05):
        return
    cur.execute(
        "SELECT pid, state, now() - xact_start FROM pg_stat_activity "
        "WHERE backend_xid::text = ANY(%s)",
        (xids,),
    )
    open_ = ", ".join(f"pid {p} ({s}, open {age})" for p, s, age in cur.fetchall())
    raise TransientError(
        f"transactions open since a table joined the publication did not end within "
        f"{timeout_s:.0f}s: {open_ or ', '.join(xids)}; the snapshot must start after them",
        fix="commit or end those transactions (pg_terminate_backend), then apply again",
    )
