"""Targeted repair of an audit's differences: only the keys it named are touched.

- **Missing and differing keys** are re-captured through the connector's on-demand DBLog
  snapshot (:func:`datamesh.cdc.snapshot_store.request_snapshot`) restricted to exactly those
  keys (``where: (<key>) IN (...)``): the connector reads them between its watermarks and
  publishes them as snapshot reads (``op: r``) on the product's topic, so they travel the same
  path as any change and every consumer of the topic converges. (A request replaces any earlier
  request for the same table, as ``mesh snapshot`` does.)
- **Extra keys** (in the sink, gone from the source) cannot come from a snapshot: a snapshot
  reads rows that exist, and a key absent from the source reads as nothing. They are deleted
  from the sink table itself, after checking once more that the source still lacks them. A
  delete event on the topic would instead need a complete ``before`` row image the source no
  longer has, and Flink's Debezium format ignores tombstones, so the delete is done where the
  difference is. An insert of the same key at the source afterwards arrives as usual (upsert).

:func:`recapture` waits until the snapshot is done and the connector has confirmed the WAL
position after it (everything it read is in Kafka), so a re-audit sees the sink catch up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg2
from psycopg2 import sql

from datamesh.audit.key_filter import iceberg_filter
from datamesh.audit.result import AuditResult
from datamesh.audit.sides import RawKey
from datamesh.audit.target import AuditTarget, open_sides
from datamesh.cdc.snapshot_store import SCHEMA, request_snapshot
from datamesh.errors import TransientError


def key_filter(cur: Any, key: Sequence[str], keys: Sequence[RawKey]) -> str:
    """SQL condition ``("k1", "k2") IN ((v, v), ...)`` with the values as literals."""
    row = sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier(k) for k in key))
    values = sql.SQL(", ").join(
        sql.SQL("({})").format(sql.SQL(", ").join(sql.Literal(v) for v in raw)) for raw in keys
    )
    return str(sql.SQL("{} IN ({})").format(row, values).as_string(cur))


def recapture(
    dsn: str,
    slot: str,
    table: str,
    key: Sequence[str],
    keys: Sequence[RawKey],
    timeout_s: float = 300,
) -> None:
    """Snapshot exactly ``keys`` of ``table`` (``schema.table``) through ``slot``'s connector
    and wait until the connector has published them (TransientError when it does not)."""
    if not keys:
        return
    db = psycopg2.connect(dsn)
    db.autocommit = True
    try:
        with db.cursor() as cur:
            where = key_filter(cur, key, keys)
            request_snapshot(cur, slot, table, where)
            deadline = time.monotonic() + timeout_s
            while _status(cur, slot, table) != "done":
                if time.monotonic() > deadline:
                    raise TransientError(
                        f"the snapshot of {len(keys)} keys of {table} did not finish within "
                        f"{timeout_s:.0f}s",
                        fix=f"check that the connector of slot {slot} runs (`mesh cdc status`)",
                    )
                time.sleep(0.2)
            cur.execute("SELECT pg_current_wal_lsn()")
            (lsn,) = cur.fetchone()
            while not _confirmed(cur, slot, lsn):
                if time.monotonic() > deadline:
                    raise TransientError(
                        f"the connector of slot {slot} did not confirm {lsn} in time",
                        fix="check the connector (`mesh cdc status`) and Kafka",
                    )
                time.sleep(0.2)
    finally:
        db.close()


def _status(cur: Any, slot: str, table: str) -> str | None:
    cur.execute(
        f"SELECT status FROM {SCHEMA}.snapshots WHERE slot_name = %s AND table_name = %s",
        (slot, table),
    )
    row = cur.fetchone()
    return None if row is None else str(row[0])


def _confirmed(cur: Any, slot: str, lsn: str) -> bool:
    cur.execute(
        "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
        (lsn, slot),
    )
    row = cur.fetchone()
    return bool(row and row[0])


def delete_from_postgres(dsn: str, table: str, key: Sequence[str], keys: Sequence[RawKey]) -> int:
    """Delete ``keys`` from the PostgreSQL sink ``table`` (``schema.table``); rows deleted."""
    if not keys:
        return 0
    schema, name = table.split(".", 1)
    db = psycopg2.connect(dsn)
    try:
        with db, db.cursor() as cur:
            target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE {}").format(
                    target, sql.SQL(key_filter(cur, key, keys))
                )
            )
            return int(cur.rowcount)
    finally:
        db.close()


def delete_from_iceberg(table: Any, key: Sequence[str], keys: Sequence[RawKey]) -> int:
    """Delete ``keys`` from the Iceberg sink ``table`` in one snapshot; rows deleted."""
    if not keys:
        return 0
    condition = iceberg_filter(key, keys)
    before = len(table.scan(row_filter=condition, selected_fields=tuple(key)).to_arrow())
    table.delete(condition, snapshot_properties={"mesh.audit.repair": "delete extra keys"})
    return before


def repair_differences(
    target: AuditTarget,
    result: AuditResult,
    catalog: Any = None,
    run_sink: Callable[[], object] | None = None,
    timeout_s: float = 300,
) -> dict[str, int]:
    """Repair what ``result`` found in ``target``: re-capture missing and differing keys, delete
    extra ones still absent from the source, then run the sink once (``run_sink``: an Iceberg
    sink, which only moves when run). Returns what was done, by what."""
    found = result.comparison.differences
    recaptured = [d.raw for d in found if d.kind in ("missing", "differs")]
    extra = [d.raw for d in found if d.kind == "extra"]
    source_key = [b for _, b in target.key]
    sink_key = [a for a, _ in target.key]
    recapture(
        target.source_dsn, target.slot, target.source_table, source_key, recaptured, timeout_s
    )
    deleted = 0
    if extra:
        source, _ = open_sides(target, catalog)
        try:
            still_gone = [k for k in extra if not source.rows_for([k])]
        finally:
            source.close()
        if target.iceberg_table:
            if catalog is None:
                from datamesh.sinks.catalog import open_catalog

                catalog = open_catalog()
            deleted = delete_from_iceberg(
                catalog.load_table(target.iceberg_table), sink_key, still_gone
            )
        else:
            deleted = delete_from_postgres(target.sink_dsn, target.sink_table, sink_key, still_gone)
    if run_sink is not None and recaptured:
        run_sink()
    return {"keys re-captured": len(recaptured), "extra keys deleted": deleted}
