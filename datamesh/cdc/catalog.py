"""Read-only questions to the source database: settings, tables, publications, slots.

Every connection the connector opens pins the settings that shape PostgreSQL's text output
(:data:`SESSION_OPTIONS`), so pgoutput's values and the snapshot's ``COPY`` text are byte for
byte the same format and :mod:`datamesh.cdc.pgtext` only has to parse one form of each type.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import psycopg2
import psycopg2.extensions

from datamesh.cdc.errors import SourceUnavailable
from datamesh.cdc.pgoutput import Column
from datamesh.cdc.schemas import TableShape

SESSION_OPTIONS = (
    "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres -c bytea_output=hex "
    "-c extra_float_digits=3 -c client_encoding=UTF8"
)


class TableInfo(NamedTuple):
    """A table as the catalog describes it now."""

    oid: int
    replica_identity: str  # pg_class.relreplident: d, n, f, i
    kind: str  # pg_class.relkind
    shape: TableShape
    identity_columns: tuple[str, ...] = ()  # logged of an old row: DEFAULT's PK, the index's


class SlotInfo(NamedTuple):
    """A row of ``pg_replication_slots``."""

    plugin: str | None
    database: str | None
    active_pid: int | None
    confirmed_flush_lsn: int
    wal_status: str | None


def connect(dsn: str, application_name: str, **kwargs: Any) -> Any:
    """A connection with the pinned session settings; unreachable -> :class:`SourceUnavailable`."""
    full = psycopg2.extensions.make_dsn(
        dsn, options=SESSION_OPTIONS, application_name=application_name, connect_timeout=10
    )
    try:
        return psycopg2.connect(full, **kwargs)
    except psycopg2.OperationalError as exc:
        raise SourceUnavailable(
            f"cannot connect to PostgreSQL: {str(exc).strip()}",
            fix="check --dsn/--database and that the server is up; the connector retries",
        ) from exc


def parse_lsn(text: str | None) -> int:
    """``16/B374D848`` -> 64-bit integer (0 for None)."""
    if not text:
        return 0
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(lsn: int) -> str:
    """64-bit integer -> ``16/B374D848``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def one(cur: Any, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """The first row of a query (None when empty)."""
    cur.execute(sql, params)
    return cur.fetchone()


def wal_level(cur: Any) -> str:
    """The server's ``wal_level``."""
    return str(one(cur, "SHOW wal_level")[0])


def describe_table(cur: Any, qualified: str) -> TableInfo | None:
    """Columns (as pgoutput sends them), primary key and identity of ``schema.table``."""
    schema, table = qualified.split(".", 1)
    row = one(
        cur,
        "SELECT c.oid, c.relreplident, c.relkind FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    )
    if row is None:
        return None
    oid, identity, kind = row
    # pgoutput skips dropped and generated columns (PostgreSQL 15 pgoutput.c)
    cur.execute(
        "SELECT attname, atttypid, atttypmod FROM pg_attribute WHERE attrelid = %s "
        "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
        (oid,),
    )
    columns = tuple(Column(False, n, int(t), int(m)) for n, t, m in cur.fetchall())
    key = _index_columns(cur, oid, "indisprimary")
    logged = {"d": key, "i": _index_columns(cur, oid, "indisreplident") if identity == "i" else ()}
    shape = TableShape(schema, table, columns, key)
    return TableInfo(int(oid), str(identity), str(kind), shape, logged.get(identity, ()))


def _index_columns(cur: Any, oid: int, flag: str) -> tuple[str, ...]:
    """Columns of the table's index marked ``flag`` (indisprimary, indisreplident), in order."""
    assert flag in ("indisprimary", "indisreplident")
    cur.execute(
        "SELECT a.attname FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, ord), "
        f"pg_attribute a WHERE i.indrelid = %s AND i.{flag} "
        "AND a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord",
        (oid,),
    )
    return tuple(r[0] for r in cur.fetchall())


def publication_tables(cur: Any, publication: str) -> set[str] | None:
    """``schema.table`` names in ``publication``; None when it does not exist."""
    if one(cur, "SELECT 1 FROM pg_publication WHERE pubname = %s", (publication,)) is None:
        return None
    cur.execute(
        "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s",
        (publication,),
    )
    return {f"{s}.{t}" for s, t in cur.fetchall()}


def slot_info(cur: Any, slot: str) -> SlotInfo | None:
    """The replication slot ``slot``, or None."""
    row = one(
        cur,
        "SELECT plugin, database, active_pid, confirmed_flush_lsn::text, wal_status "
        "FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    )
    if row is None:
        return None
    return SlotInfo(row[0], row[1], row[2], parse_lsn(row[3]), row[4])


def slot_lag_bytes(cur: Any, slot: str) -> int | None:
    """WAL bytes between the server's current position and what the slot confirmed."""
    row = one(
        cur,
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
        "FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    )
    return None if row is None or row[0] is None else int(row[0])
