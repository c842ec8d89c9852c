"""Pre-flight of a source database: refuse what cannot be captured, create what is missing.

Order matters for crash safety: the initial snapshot is requested *before* the slot is created,
so a crash in between just requests it again; the slot is recorded in ``mesh_cdc.connectors``
so that a slot dropped later is noticed (changes made without it are lost to Kafka) instead of
being silently recreated.
"""

from __future__ import annotations

from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from datamesh.cdc import snapshot_store as store
from datamesh.cdc.catalog import TableInfo, describe_table, one, publication_tables, slot_info
from datamesh.cdc.config import ConnectorConfig
from datamesh.cdc.errors import PublicationError, SlotMissing, SourceConfigError
from datamesh.cdc.identity import identity_refusal


def _ident(table: str) -> sql.Composed:
    schema, name = table.split(".", 1)
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def check_tables(cur: Any, config: ConnectorConfig) -> dict[str, TableInfo]:
    """Every table exists, is a plain table with a primary key, and has an identity the
    connector follows (FULL, DEFAULT, or USING INDEX over the key: see :mod:`identity`)."""
    level = one(cur, "SHOW wal_level")[0]
    if level != "logical":
        raise SourceConfigError(
            f"database {config.database}: wal_level is {level!r}; logical decoding needs 'logical'",
            fix="ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
        )
    return {table: _check_table(cur, config, table) for table in config.tables}


def _check_table(cur: Any, config: ConnectorConfig, table: str) -> TableInfo:
    info = describe_table(cur, table)
    if info is None:
        raise SourceConfigError(
            f"table {table} does not exist in database {config.database}",
            fix="create it, or correct --tables (schema.table, case-sensitive)",
        )
    if info.kind != "r":
        raise SourceConfigError(
            f"{table} is not a plain table (relkind {info.kind!r})",
            fix="capture the partitions or base tables instead",
        )
    if not info.shape.key:
        raise SourceConfigError(
            f"table {table} has no primary key; CDC events are keyed by it",
            fix=f"ALTER TABLE {table} ADD PRIMARY KEY (<columns>)",
        )
    if info.replica_identity != "f" and config.set_replica_identity:
        cur.execute(sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(_ident(table)))
        return info._replace(replica_identity="f")
    refusal = identity_refusal(table, info.replica_identity, info.shape.key, info.identity_columns)
    if refusal is not None:
        raise refusal
    return info


def ensure_state(cur: Any, slot: str) -> None:
    """The ``mesh_cdc`` schema, its tables, and this connector's watermark row."""
    try:
        cur.execute(store.STATE_DDL)
    except psycopg2.errors.UniqueViolation:  # another connector created them concurrently
        cur.execute(store.STATE_DDL)
    cur.execute(
        f"INSERT INTO {store.WATERMARK_TABLE} VALUES (%s, 'created') ON CONFLICT DO NOTHING",
        (slot,),
    )


def ensure_publication(cur: Any, config: ConnectorConfig) -> None:
    """Create the publication, or check an existing one holds every table we need."""
    wanted = [*config.tables, store.WATERMARK_TABLE]
    present = publication_tables(cur, config.publication)
    if present is None:
        cur.execute(
            sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
                sql.Identifier(config.publication), sql.SQL(", ").join(_ident(t) for t in wanted)
            )
        )
        return
    missing = [t for t in wanted if t not in present]
    if missing:
        raise PublicationError(
            f"publication {config.publication} does not include {', '.join(missing)}: their "
            "changes would never reach the connector",
            fix=f"ALTER PUBLICATION {config.publication} ADD TABLE {', '.join(missing)}",
        )


def ensure_slot(cur: Any, config: ConnectorConfig) -> bool:
    """Create the slot on first start (requesting the initial snapshot first); True if created."""
    info = slot_info(cur, config.slot)
    if info is not None:
        _check_slot(config, info.plugin, info.database, info.wal_status)
        _record(cur, config)
        return False
    known = one(
        cur,
        f"SELECT created_at FROM {store.SCHEMA}.connectors WHERE slot_name = %s",
        (config.slot,),
    )
    if known is not None and not config.recreate_slot:
        raise SlotMissing(
            f"replication slot {config.slot} (created {known[0]:%Y-%m-%d %H:%M:%S %Z}) no longer "
            f"exists in database {config.database}: changes made since it was dropped are not "
            "in Kafka",
            fix="restart with --recreate-slot --snapshot initial to re-read the tables "
            "(or --recreate-slot alone to accept the gap)",
        )
    if config.snapshot == "initial":
        for table in config.tables:
            store.request_snapshot(cur, config.slot, table)
    try:
        cur.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (config.slot,))
    except psycopg2.errors.ConfigurationLimitExceeded as exc:
        raise SourceConfigError(
            f"cannot create replication slot {config.slot}: {str(exc).strip()}",
            fix="raise max_replication_slots, or drop abandoned slots (they also retain WAL)",
        ) from exc
    _record(cur, config)
    return True


def _check_slot(
    config: ConnectorConfig, plugin: str | None, database: str | None, wal_status: str | None
) -> None:
    if plugin != "pgoutput" or database != config.database:
        raise SourceConfigError(
            f"slot {config.slot} belongs to plugin {plugin!r} in database {database!r}, expected "
            f"pgoutput in {config.database!r}",
            fix="choose another --slot name",
        )
    if wal_status == "lost":
        raise SlotMissing(
            f"slot {config.slot} lost WAL it still needed (max_slot_wal_keep_size exceeded)",
            fix=f"SELECT pg_drop_replication_slot('{config.slot}'); then restart with "
            "--recreate-slot --snapshot initial",
        )


def _record(cur: Any, config: ConnectorConfig) -> None:
    cur.execute(
        f"INSERT INTO {store.SCHEMA}.connectors (slot_name, connector) VALUES (%s, %s) "
        "ON CONFLICT (slot_name) DO NOTHING",
        (config.slot, config.name),
    )


def drop(cur: Any, config: ConnectorConfig) -> None:
    """Remove the slot, publication and state of a connector (for teardown)."""
    cur.execute(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        "WHERE slot_name = %s AND active_pid IS NULL",
        (config.slot,),
    )
    cur.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(config.publication)))
    if one(cur, "SELECT to_regclass(%s)", (f"{store.SCHEMA}.connectors",))[0] is not None:
        for table in ("connectors", "snapshots", "watermarks"):
            cur.execute(f"DELETE FROM {store.SCHEMA}.{table} WHERE slot_name = %s", (config.slot,))
