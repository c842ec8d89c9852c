"""Apply the generator's changes to the demo's PostgreSQL databases (psycopg2), and read back
what they hold (:class:`datamesh.demo.changes.Live`) when it starts."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection

from datamesh.demo import database_dsn
from datamesh.demo.changes import SCHEMA_CHANGES, AddColumn, Change, Live, Now

DATABASES = ("studio", "content")


def connect(server_dsn: str) -> dict[str, connection]:
    """One connection per demo database."""
    return {db: psycopg2.connect(database_dsn(server_dsn, db)) for db in DATABASES}


def statements(change: Change) -> list[tuple[str, tuple[object, ...]]]:
    """The SQL of ``change`` with its ``%s`` parameters: the cascade's deletes first, then the
    change itself (an insert whose id exists, or an update or delete of a row that went away
    meanwhile, changes nothing)."""
    out = [_delete(table, child) for table, child in change.cascade]
    if change.op == "delete":
        return [*out, _delete(change.table, change.id)]
    table = f"public.{_ident(change.table)}"
    columns = [_ident(c) for c in change.values]
    values = ["now()" if isinstance(v, Now) else "%s" for v in change.values.values()]
    params = tuple(v for v in change.values.values() if not isinstance(v, Now))
    if change.op == "insert":
        query = (
            f"INSERT INTO {table} (id, {', '.join(columns)}) VALUES (%s, {', '.join(values)}) "
            "ON CONFLICT (id) DO NOTHING"
        )
        return [*out, (query, (change.id, *params))]
    sets = ", ".join(f"{c} = {v}" for c, v in zip(columns, values, strict=True))
    return [*out, (f"UPDATE {table} SET {sets} WHERE id = %s", (*params, change.id))]


def _ident(name: str) -> str:
    """A quoted SQL identifier (the demo's own table and column names)."""
    return '"' + name.replace('"', '""') + '"'


def _delete(table: str, row: int) -> tuple[str, tuple[object, ...]]:
    return f"DELETE FROM public.{_ident(table)} WHERE id = %s", (row,)


def apply(conns: dict[str, connection], changes: Sequence[Change]) -> None:
    """Write ``changes`` in one transaction per database (all or nothing per database)."""
    for database in DATABASES:
        mine = [c for c in changes if c.database == database]
        if not mine:
            continue
        conn = conns[database]
        with conn, conn.cursor() as cur:  # commits, or rolls back on an error
            for change in mine:
                for query, params in statements(change):
                    cur.execute(query, params)


def add_column(conns: dict[str, connection], change: AddColumn) -> None:
    """``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` (nullable: a compatible change)."""
    conn = conns[change.database]
    with conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                sql.Identifier("public", change.table),
                sql.Identifier(change.column),
                sql.SQL(change.sql_type),  # one of SCHEMA_CHANGES' types, never user input
            )
        )


def load_live(conns: dict[str, connection]) -> Live:
    """What the demo tables hold now, and which schema changes they already have."""
    live = Live()
    with conns["studio"].cursor() as cur:
        cur.execute("SELECT id, status FROM public.movies")
        live.movies = {int(i): str(s) for i, s in cur.fetchall()}
        cur.execute("SELECT id, movie_id FROM public.productions")
        live.productions = {int(i): int(m) for i, m in cur.fetchall()}
        cur.execute("SELECT id, movie_id FROM public.talent")
        live.talent = {int(i): int(m) for i, m in cur.fetchall()}
    conns["studio"].rollback()  # end the read-only transaction the SELECTs opened
    with conns["content"].cursor() as cur:
        cur.execute("SELECT id, movie_id FROM public.artwork")
        live.artwork = {int(i): int(m) for i, m in cur.fetchall()}
    conns["content"].rollback()
    ids = [*live.movies, *live.productions, *live.talent, *live.artwork]
    live.next_id = max(ids, default=0) + 1
    live.columns = frozenset(c.name for c in SCHEMA_CHANGES if _has_column(conns, c))
    return live


def _has_column(conns: dict[str, connection], change: AddColumn) -> bool:
    conn = conns[change.database]
    with conn.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s AND column_name = %s",
            (change.table, change.column),
        )
        found = cur.fetchone() is not None
    conn.rollback()
    return found
