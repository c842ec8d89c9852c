"""From decoded Kafka records to what a sink batch applies — pure functions, no I/O.

Two input shapes: a Debezium envelope (CDC topics: ``before``/``after``/``source``/``op``) and a
plain record (processor topics written by upsert-kafka: the value is the row, a null value — a
tombstone — deletes its key).

- :func:`fold_upserts`: the last change per key wins, in offset order; ``c``/``r``/``u`` upsert
  the ``after`` image, ``d`` and tombstones delete, ``t`` (truncate) empties the table first.
- :func:`changelog_rows`: every record is a row carrying op, LSN, event time, partition and
  offset (Debezium's tombstones that follow deletes are skipped: the ``d`` is the change).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from datamesh.specs import sink_layout as layout

Row = dict[str, Any]
KeyTuple = tuple[Any, ...]


@dataclass(frozen=True)
class Record:
    """One decoded Kafka record (``value`` None: a tombstone)."""

    partition: int
    offset: int
    timestamp_ms: int | None
    key: Row | None
    value: Row | None


@dataclass
class UpsertBatch:
    """Final state per touched key: a row to write, or None to delete.

    ``truncated``: a truncate was seen; the table is emptied before ``rows`` apply.
    """

    rows: dict[KeyTuple, Row | None] = field(default_factory=dict)
    truncated: bool = False
    changes: int = 0
    newest_event_ms: int | None = None

    @property
    def upserts(self) -> list[Row]:
        """Rows to write."""
        return [r for r in self.rows.values() if r is not None]

    @property
    def deletes(self) -> list[KeyTuple]:
        """Keys to delete."""
        return [k for k, r in self.rows.items() if r is None]


def is_envelope(schema: dict[str, Any]) -> bool:
    """True for a Debezium change-event envelope (before, after, source, op)."""
    names = (
        {f["name"] for f in schema.get("fields", [])} if schema.get("type") == "record" else set()
    )
    return {"before", "after", "op", "source"} <= names


def event_ms(record: Record, envelope: bool) -> int | None:
    """Source commit time of a change (``source.ts_ms``), else the Kafka timestamp."""
    if envelope and record.value is not None:
        source = record.value.get("source") or {}
        if source.get("ts_ms") is not None:
            return int(source["ts_ms"])
    return record.timestamp_ms


def key_of(record: Record, key: Sequence[str], row: Row | None) -> KeyTuple:
    """The key tuple from the Kafka key record, else from the row (``before`` for deletes)."""
    source = record.key if record.key is not None else row
    if source is None:
        raise ValueError(f"offset {record.offset}: no key and no row to take key {key} from")
    try:
        return tuple(source[k] for k in key)
    except KeyError as exc:
        raise ValueError(f"offset {record.offset}: key field {exc} missing") from exc


def fold_upserts(records: Iterable[Record], key: Sequence[str], envelope: bool) -> UpsertBatch:
    """Fold records (in offset order per partition) into the final state per key."""
    batch = UpsertBatch()
    for rec in records:
        batch.changes += 1
        # a CDC tombstone only marks the delete before it for compaction: not an event
        when = None if envelope and rec.value is None else event_ms(rec, envelope)
        if when is not None and (batch.newest_event_ms is None or when > batch.newest_event_ms):
            batch.newest_event_ms = when
        value = rec.value
        if value is None:
            batch.rows[key_of(rec, key, None)] = None
            continue
        if not envelope:
            batch.rows[key_of(rec, key, value)] = value
            continue
        op = value.get("op")
        if op == "t":
            batch.rows.clear()
            batch.truncated = True
        elif op == "d":
            batch.rows[key_of(rec, key, value.get("before"))] = None
        elif value.get("after") is not None:
            batch.rows[key_of(rec, key, value["after"])] = value["after"]
    return batch


def changelog_rows(
    records: Iterable[Record], key: Sequence[str], envelope: bool
) -> tuple[list[Row], int | None]:
    """One row per change (op, LSN, event time, partition, offset); and the newest event time."""
    rows: list[Row] = []
    newest: int | None = None
    for rec in records:
        value = rec.value
        if envelope and value is None:
            continue  # Debezium's tombstone after a delete: compaction only
        when = event_ms(rec, envelope)
        newest = when if when is not None and (newest is None or when > newest) else newest
        if value is None:
            row, op, lsn = dict(rec.key or {}), "d", None
        elif envelope:
            op = str(value.get("op"))
            image = value.get("before") if op == "d" else value.get("after")
            row = dict(image or (rec.key if op == "d" else {}) or {})
            lsn = (value.get("source") or {}).get("lsn")
        else:
            row, op, lsn = dict(value), "c", None
        row[layout.OP] = op
        row[layout.LSN] = lsn
        row[layout.EVENT_TIME] = datetime.fromtimestamp(when / 1000, UTC) if when else None
        row[layout.PARTITION] = rec.partition
        row[layout.OFFSET] = rec.offset
        rows.append(row)
    return rows, newest
