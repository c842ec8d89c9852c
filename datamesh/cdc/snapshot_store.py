"""Snapshot requests, progress, watermark writes and chunk reads in the source database.

State lives in the source database itself (schema ``mesh_cdc``), next to the data it
describes, so a snapshot survives a crash of the connector and can be requested on demand by
anyone with a connection (``python -m datamesh.cdc snapshot ...`` inserts a request):

- ``mesh_cdc.watermarks(slot_name, mark)``: one row per connector, in its publication;
- ``mesh_cdc.snapshots(slot_name, table_name, where_clause, last_key, rows_done,
  total_estimate, status, requested_at, updated_at)``: ``pending`` -> ``running`` -> ``done``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from psycopg2 import sql

from datamesh.cdc.catalog import describe_table, one
from datamesh.cdc.errors import SourceConfigError
from datamesh.cdc.pgoutput import Row
from datamesh.cdc.schemas import TableShape

SCHEMA = "mesh_cdc"
WATERMARK_TABLE = f"{SCHEMA}.watermarks"
STATE_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {WATERMARK_TABLE} (slot_name text PRIMARY KEY, mark text NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMA}.snapshots (
    slot_name text NOT NULL, table_name text NOT NULL, where_clause text, last_key text[],
    rows_done bigint NOT NULL DEFAULT 0, total_estimate bigint, status text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (slot_name, table_name));
CREATE TABLE IF NOT EXISTS {SCHEMA}.connectors (
    slot_name text PRIMARY KEY, connector text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp());
"""
_COPY_ESCAPES = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}
_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)


class SnapshotRequest(NamedTuple):
    """A snapshot to run (or resume) for one table; ``requested_at`` identifies the request."""

    table: str
    where: str | None
    last_key: tuple[str, ...] | None
    rows_done: int
    total_estimate: int | None
    requested_at: object


def request_snapshot(cur: Any, slot: str, table: str, where: str | None = None) -> None:
    """Ask for a (new) snapshot of ``table``; replaces any earlier request for it."""
    cur.execute(
        f"INSERT INTO {SCHEMA}.snapshots (slot_name, table_name, where_clause, status) "
        "VALUES (%s, %s, %s, 'pending') ON CONFLICT (slot_name, table_name) DO UPDATE SET "
        "where_clause = EXCLUDED.where_clause, last_key = NULL, rows_done = 0, "
        "total_estimate = NULL, status = 'pending', requested_at = clock_timestamp(), "
        "updated_at = clock_timestamp()",
        (slot, table, where),
    )


def next_request(cur: Any, slot: str, tables: Sequence[str]) -> SnapshotRequest | None:
    """The oldest unfinished request of ``slot`` for one of the captured ``tables`` (a request
    for a table the connector does not capture waits until it does)."""
    row = one(
        cur,
        f"SELECT table_name, where_clause, last_key, rows_done, total_estimate, requested_at "
        f"FROM {SCHEMA}.snapshots WHERE slot_name = %s AND status IN ('pending', 'running') "
        "AND table_name = ANY(%s) ORDER BY requested_at LIMIT 1",
        (slot, list(tables)),
    )
    if row is None:
        return None
    last_key = tuple(row[2]) if row[2] is not None else None
    return SnapshotRequest(row[0], row[1], last_key, int(row[3]), row[4], row[5])


def forget_request(cur: Any, slot: str, table: str) -> None:
    """Remove ``table``'s snapshot request and progress (it left the connector)."""
    cur.execute(
        f"DELETE FROM {SCHEMA}.snapshots WHERE slot_name = %s AND table_name = %s", (slot, table)
    )


def save_progress(
    cur: Any,
    slot: str,
    request: SnapshotRequest,
    last_key: tuple[str, ...] | None,
    rows_done: int,
    total: int | None,
    done: bool,
) -> bool:
    """Persist progress of ``request``; False when a newer request replaced it meanwhile."""
    cur.execute(
        f"UPDATE {SCHEMA}.snapshots SET last_key = %s, rows_done = %s, total_estimate = %s, "
        "status = %s, updated_at = clock_timestamp() "
        "WHERE slot_name = %s AND table_name = %s AND requested_at = %s",
        (
            list(last_key) if last_key else None,
            rows_done,
            total,
            "done" if done else "running",
            slot,
            request.table,
            request.requested_at,
        ),
    )
    return bool(cur.rowcount)


def progress(cur: Any, slot: str) -> dict[str, dict[str, Any]]:
    """Persisted progress of every snapshot of ``slot`` (for the status file)."""
    cur.execute(
        f"SELECT table_name, status, rows_done, total_estimate, where_clause "
        f"FROM {SCHEMA}.snapshots WHERE slot_name = %s ORDER BY table_name",
        (slot,),
    )
    return {
        t: {"status": s, "rows_done": int(d), "total_estimate": e, "where": w}
        for t, s, d, e, w in cur.fetchall()
    }


def write_watermark(cur: Any, slot: str, mark: str) -> None:
    """One committed UPDATE of the connector's watermark row: it shows up in the stream."""
    cur.execute(f"UPDATE {WATERMARK_TABLE} SET mark = %s WHERE slot_name = %s", (mark, slot))


def _table_sql(table: str) -> sql.Composed:
    schema, name = table.split(".", 1)
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def estimate_rows(cur: Any, table: str, where: str | None) -> int:
    """Rows the snapshot will read: an exact count for a key range, else the planner's count."""
    if not where:
        row = one(
            cur,
            "SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
            tuple(table.split(".", 1)),
        )
        if row is not None and row[0] > 0:  # -1: never analyzed; 0 may just be stale
            return int(row[0])
    query = sql.SQL("SELECT count(*) FROM {} WHERE ({})").format(
        _table_sql(table), sql.SQL(where or "true")
    )
    cur.execute("BEGIN READ ONLY")  # the --where filter runs here: it cannot write
    try:
        return int(one(cur, query)[0])
    finally:
        cur.execute("COMMIT")


def read_chunk(
    cur: Any, table: str, where: str | None, after: tuple[str, ...] | None, limit: int
) -> tuple[TableShape, list[Row]]:
    """Rows after key ``after`` (in key order, at most ``limit``), as pgoutput-style text.

    ``COPY ... TO STDOUT`` runs each value through the type's output function, like pgoutput,
    so chunk rows and logged rows compare and encode identically. The ACCESS SHARE lock
    (what any SELECT takes; it blocks no writer) holds the table's shape still while reading.
    """
    cur.execute("BEGIN READ ONLY")  # the --where filter runs here: it cannot write
    try:
        cur.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(_table_sql(table)))
        info = describe_table(cur, table)
        if info is None:
            raise SourceConfigError(f"table {table} was dropped", fix="remove it from --tables")
        shape = info.shape
        buf = io.BytesIO()
        cur.copy_expert(_chunk_query(shape, where, after, limit).as_string(cur), buf)
    finally:
        cur.execute("COMMIT")
    return shape, _parse_copy(buf.getvalue())


def _chunk_query(
    shape: TableShape, where: str | None, after: tuple[str, ...] | None, limit: int
) -> sql.Composed:
    keys = sql.SQL(", ").join(sql.Identifier(k) for k in shape.key)
    conditions: list[sql.Composable] = [sql.SQL("({})").format(sql.SQL(where))] if where else []
    if after is not None:  # untyped literals take each key column's type: row comparison
        values = sql.SQL(", ").join(sql.Literal(v) for v in after)
        conditions.append(sql.SQL("({}) > ({})").format(keys, values))
    return sql.SQL("COPY (SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {}) TO STDOUT").format(
        sql.SQL(", ").join(sql.Identifier(c.name) for c in shape.columns),
        _table_sql(shape.qualified),
        sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true"),
        keys,
        sql.Literal(limit),
    )


def _parse_copy(data: bytes) -> list[Row]:
    """COPY text format: tab-separated, ``\\N`` for NULL, backslash escapes."""
    rows: list[Row] = []
    for line in data.split(b"\n")[:-1]:
        rows.append(
            tuple(
                None if f == b"\\N" else (_ESCAPE.sub(_unescape, f) if b"\\" in f else f)
                for f in line.split(b"\t")
            )
        )
    return rows


def _unescape(match: re.Match[bytes]) -> bytes:
    ch = match.group(1)
    return _COPY_ESCAPES.get(ch, ch)
