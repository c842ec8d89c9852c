"""The PostgreSQL table of a ``postgres_sink``: created from its input's Avro row, grown by adding.

Pure parts: :func:`pg_type` (Avro → PostgreSQL column type), :func:`table_columns`,
:func:`create_table_sql`, :func:`plan_columns` (which columns an existing table lacks; a type
clash or a table without the sink's key is refused with :class:`SinkTableMismatch`). Thin part:
:func:`ensure_table` creates the database, the schema and the table when missing, and adds the
missing columns — nothing else is ever changed, and a refusal changes nothing.

Avro → PostgreSQL: int→integer, long→bigint, string→text, boolean, float→real, double→double
precision, bytes/fixed→bytea, decimal(p,s)→numeric(p,s), date, timestamp-micros/millis→timestamp,
time-micros/millis→time; anything else (enum, uuid, arrays, records, maps) → text. Key columns
are NOT NULL and the PRIMARY KEY, which the Flink JDBC sink upserts on (``ON CONFLICT``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg2
from psycopg2.extensions import make_dsn

from datamesh import heartbeat
from datamesh.errors import TerminalError, TransientError

Column = tuple[str, str]  # (name, PostgreSQL type as format_type() prints it)

TIMESTAMP = "timestamp without time zone"
TIME = "time without time zone"
_PRIMITIVE = {
    "int": "integer",
    "long": "bigint",
    "string": "text",
    "boolean": "boolean",
    "float": "real",
    "double": "double precision",
    "bytes": "bytea",
}
_LOGICAL = {
    "date": "date",
    "timestamp-millis": TIMESTAMP,
    "timestamp-micros": TIMESTAMP,
    "local-timestamp-millis": TIMESTAMP,
    "local-timestamp-micros": TIMESTAMP,
    "time-millis": TIME,
    "time-micros": TIME,
}
# (existing, wanted): the existing column already holds every value of the wanted type.
_WIDER = {("bigint", "integer"), ("double precision", "real")}


class SinkTableMismatch(TerminalError):
    """An existing sink table cannot take the input's rows; nothing was changed or deployed."""

    def __init__(self, table: str, column: str, problem: str, fix: str) -> None:
        self.table = table
        self.column = column
        self.problem = problem
        super().__init__(f'PostgreSQL table {table}: column "{column}": {problem}', fix=fix)


def pg_type(avro_type: Any) -> str:
    """The PostgreSQL column type of an Avro field type (nullability is the caller's)."""
    if isinstance(avro_type, list):
        rest = [t for t in avro_type if t != "null"]
        return pg_type(rest[0]) if len(rest) == 1 else "text"
    if isinstance(avro_type, str):
        return _PRIMITIVE.get(avro_type, "text")
    logical = avro_type.get("logicalType")
    if logical == "decimal":
        return f"numeric({avro_type['precision']},{avro_type.get('scale', 0)})"
    if logical in _LOGICAL:
        return _LOGICAL[logical]
    if logical is None and avro_type.get("type") == "fixed":
        return "bytea"
    if logical is None and isinstance(avro_type.get("type"), str):
        return _PRIMITIVE.get(avro_type["type"], "text")
    return "text"


def table_columns(row_schema: Mapping[str, Any]) -> tuple[Column, ...]:
    """(name, PostgreSQL type) of every field of an Avro record, in field order."""
    return tuple((f["name"], pg_type(f["type"])) for f in row_schema["fields"])


def ident(name: str) -> str:
    """A PostgreSQL identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    """``"schema"."table"``."""
    return f"{ident(schema)}.{ident(table)}"


def create_table_sql(schema: str, table: str, columns: Sequence[Column], key: Sequence[str]) -> str:
    """``CREATE TABLE IF NOT EXISTS``: key columns NOT NULL and the PRIMARY KEY."""
    lines = [f"  {ident(n)} {t}{' NOT NULL' if n in key else ''}" for n, t in columns]
    lines.append(f"  PRIMARY KEY ({', '.join(map(ident, key))})")
    body = ",\n".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {qualified(schema, table)} (\n{body}\n)"


def add_column_sql(schema: str, table: str, column: Column) -> str:
    """``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` of one (nullable) column."""
    name, typ = column
    return f"ALTER TABLE {qualified(schema, table)} ADD COLUMN IF NOT EXISTS {ident(name)} {typ}"


def plan_columns(
    table: str,
    existing: Mapping[str, str],
    existing_key: Sequence[str],
    wanted: Sequence[Column],
    key: Sequence[str],
) -> list[Column]:
    """The columns to add to an existing table so it takes rows of ``wanted``.

    Raises :class:`SinkTableMismatch` when the table's primary key is not ``key`` (the upsert
    needs exactly that unique constraint) or a column exists with another type. Columns the
    table has beyond ``wanted`` are left alone (they stay NULL for new rows).
    """
    if tuple(existing_key) != tuple(key):
        missing = next((k for k in key if k not in existing), key[0])
        raise SinkTableMismatch(
            table,
            missing,
            f"the table's primary key is ({', '.join(existing_key) or 'none'}), the sink "
            f"upserts on ({', '.join(key)})",
            fix=f"ALTER TABLE {table} ADD PRIMARY KEY ({', '.join(key)}) (after dropping any "
            "other one), or point `sink: {table: ...}` at a new table",
        )
    to_add = []
    for name, typ in wanted:
        have = existing.get(name)
        if have is None:
            to_add.append((name, typ))
        elif have != typ and (have, typ) not in _WIDER:
            raise SinkTableMismatch(
                table,
                name,
                f"the table has type {have}, the input's schema needs {typ}",
                fix=f"ALTER TABLE {table} ALTER COLUMN {name} TYPE {typ}, or point "
                "`sink: {table: ...}` at a new table",
            )
    return to_add


def ensure_table(
    dsn: str, database: str, schema: str, table: str, columns: Sequence[Column], key: Sequence[str]
) -> list[str]:
    """Create what is missing (database, schema, table, columns); return the statements run."""
    applied = _ensure_database(dsn, database)
    try:
        db = psycopg2.connect(make_dsn(dsn, dbname=database))
    except psycopg2.OperationalError as exc:
        raise TransientError(f"PostgreSQL database {database} did not answer: {exc}") from exc
    name = f"{database}.{schema}.{table}"
    try:
        with db, db.cursor() as cur:
            existing, existing_key = _describe(cur, schema, table)
            if not existing:
                statements = [
                    f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}",
                    create_table_sql(schema, table, columns, key),
                ]
            else:
                adds = plan_columns(name, existing, existing_key, columns, key)
                statements = [add_column_sql(schema, table, c) for c in adds]
            for statement in statements:
                cur.execute(statement)
    finally:
        db.close()
    return applied + statements


def heartbeat_table_sql(schema: str) -> str:
    """``CREATE TABLE IF NOT EXISTS <schema>.mesh_heartbeats``: one row per heartbeat a
    ``postgres_sink`` job wrote (:mod:`datamesh.heartbeat`), stamped by the database at insert."""
    return (
        f"CREATE TABLE IF NOT EXISTS {qualified(schema, heartbeat.SINK_TABLE)} (\n"
        "  sink text NOT NULL, source text NOT NULL, seq bigint NOT NULL, op text,\n"
        "  commit_ms bigint, arrived_at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
        "  PRIMARY KEY (sink, source, seq))"
    )


def ensure_heartbeat_table(dsn: str, database: str, schema: str) -> None:
    """Create the heartbeat table of ``database.schema`` if it is missing."""
    try:
        db = psycopg2.connect(make_dsn(dsn, dbname=database))
    except psycopg2.OperationalError as exc:
        raise TransientError(f"PostgreSQL database {database} did not answer: {exc}") from exc
    try:
        with db, db.cursor() as cur:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
            cur.execute(heartbeat_table_sql(schema))
    finally:
        db.close()


def check_table(
    dsn: str, database: str, schema: str, table: str, columns: Sequence[Column], key: Sequence[str]
) -> list[Column]:
    """The columns :func:`ensure_table` would add, without changing anything; raises
    :class:`SinkTableMismatch` when the existing table cannot take the rows (what ``mesh apply``
    checks before touching anything). A missing database or table is fine (it will be created)."""
    try:
        db = psycopg2.connect(make_dsn(dsn, dbname=database))
    except psycopg2.OperationalError:
        return list(columns)  # no such database yet: everything is created
    try:
        with db, db.cursor() as cur:
            existing, existing_key = _describe(cur, schema, table)
    finally:
        db.close()
    if not existing:
        return list(columns)
    return plan_columns(f"{database}.{schema}.{table}", existing, existing_key, columns, key)


def _ensure_database(dsn: str, database: str) -> list[str]:
    try:
        admin = psycopg2.connect(dsn)
    except psycopg2.OperationalError as exc:
        raise TransientError(f"PostgreSQL did not answer: {exc}", fix="run `mesh up`") from exc
    admin.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone():
                return []
            statement = f"CREATE DATABASE {ident(database)}"
            try:
                cur.execute(statement)
            except psycopg2.errors.DuplicateDatabase:
                return []  # created concurrently: already exists is success
            return [statement]
    finally:
        admin.close()


def _describe(cur: Any, schema: str, table: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """(column -> format_type, primary-key columns in order) of a table; empty when missing."""
    cur.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        (schema, table),
    )
    columns = {str(n): str(t) for n, t in cur.fetchall()}
    cur.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
        " WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary ORDER BY k.ord",
        (schema, table),
    )
    return columns, tuple(str(r[0]) for r in cur.fetchall())
