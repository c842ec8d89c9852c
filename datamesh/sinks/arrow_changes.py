"""The columnar twin of :mod:`datamesh.sinks.changes`: a batch of raw records to Arrow tables of
upserts, touched keys and change-log rows, without a Python object per record.

Values are decoded per writer schema in blocks (:mod:`datamesh.sinks.avro_blocks`); the row image
(``after``, or ``before`` for a delete) is taken with Arrow kernels, the last change per key found
with a group-by on the batch sequence number. Anything unusual — an unframed value, a truncate,
a delete without a ``before`` image, a block polars cannot read, a tombstone whose key is not
framed Avro — raises :class:`NotColumnar`, and the sink takes the record-by-record path, which
names the bad record or sends it to the dead-letter topic. A unit test checks both paths give the
same tables on random batches.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import fastavro
import pyarrow as pa
import pyarrow.compute as pc

from datamesh.sinks.avro_blocks import BlockUnreadable, decode_block
from datamesh.sinks.changes import is_envelope
from datamesh.sinks.reader import Raw
from datamesh.specs import sink_layout as layout

SEQ, OP, LSN, EVENT_MS = "__seq", "__op", "__lsn", "__event_ms"
PARTITION, OFFSET = "__partition", "__offset"
_HEADER = struct.Struct(">bI")


class NotColumnar(Exception):
    """This batch needs the record-by-record path (the message says why)."""


@dataclass(frozen=True)
class UpsertTables:
    """What an upsert batch applies: rows to write, every key it touches, counts."""

    upserts: pa.Table
    touched: pa.Table
    deleted: int
    newest_event_ms: int | None


class Pipeline:
    """Decodes a batch chunk by chunk on a worker thread while the reader fetches the next
    chunk (polars and librdkafka release the GIL: the decode hides behind the fetch)."""

    def __init__(self, schema_of: Callable[[int], dict[str, Any]], envelope: bool) -> None:
        self._schema_of, self._envelope = schema_of, envelope
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mesh-sink-decode")
        self._parts: list[Future[pa.Table]] = []
        self._seen = 0

    def feed(self, chunk: list[Raw]) -> None:
        """Queue the next records of the batch (in batch order)."""
        first, self._seen = self._seen, self._seen + len(chunk)
        self._parts.append(self._pool.submit(decode, chunk, self._schema_of, self._envelope, first))

    def result(self) -> pa.Table:
        """The whole batch, as :func:`decode` gives it (raises what a chunk raised)."""
        try:
            parts = [f.result() for f in self._parts]
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        parts = [p for p in parts if p.num_rows] or parts[:1]
        if not parts:
            return pa.table({SEQ: pa.array([], pa.int64())})
        return pa.concat_tables(parts, promote_options="permissive")


def decode(
    raws: Sequence[Raw],
    schema_of: Callable[[int], dict[str, Any]],
    envelope: bool,
    first_seq: int = 0,
) -> pa.Table:
    """Row images plus ``__seq``/``__op``/``__lsn``/``__event_ms``/``__partition``/``__offset``,
    in batch order, ``__seq`` counted from ``first_seq`` (raises NotColumnar)."""
    groups: dict[int, list[int]] = {}
    tombstones: list[int] = []
    for i, raw in enumerate(raws):
        if raw.value is None:
            tombstones.append(i)
            continue
        if len(raw.value) < _HEADER.size or raw.value[0] != 0:
            raise NotColumnar(f"offset {raw.offset}: value is not Confluent-framed")
        groups.setdefault(_HEADER.unpack_from(raw.value)[1], []).append(i)
    parts = [_group(raws, idx, schema_of(sid), envelope) for sid, idx in groups.items()]
    if tombstones and not envelope:
        parts.append(_tombstones(raws, tombstones, schema_of))
    if not parts:
        return pa.table({SEQ: pa.array([], pa.int64())})
    table = pa.concat_tables(parts, promote_options="permissive")
    table = table.take(pc.sort_indices(table[SEQ]))
    if first_seq:
        seq = pc.add(table[SEQ], pa.scalar(first_seq, pa.int64()))
        table = table.set_column(table.schema.get_field_index(SEQ), SEQ, seq)
    return table


def _group(raws: Sequence[Raw], idx: list[int], schema: dict[str, Any], envelope: bool) -> pa.Table:
    if envelope and not is_envelope(schema):
        raise NotColumnar("a value on a CDC topic is not a Debezium envelope")
    try:
        decoded = decode_block(schema, [raws[i].value[5:] for i in idx])  # type: ignore[index]
    except BlockUnreadable as exc:
        raise NotColumnar(str(exc)) from exc
    stamps = pa.array([raws[i].timestamp_ms for i in idx], pa.int64())
    if envelope:
        op = decoded["op"].cast(pa.string())
        if pc.any(pc.equal(op, "t")).as_py():
            raise NotColumnar("a truncate in the batch")
        image = pc.if_else(pc.equal(op, "d"), decoded["before"], decoded["after"])
        if image.null_count:
            raise NotColumnar("a change without its row image")
        source = decoded["source"].combine_chunks()
        lsn = source.field("lsn")
        event = pc.coalesce(source.field("ts_ms"), stamps)
        columns = {f.name: pc.struct_field(image, f.name) for f in image.type}
    else:
        op = pa.array(["c"] * len(idx), pa.string())
        lsn = pa.nulls(len(idx), pa.int64())
        event = stamps
        columns = {name: decoded[name] for name in decoded.column_names}
    return pa.table(
        {
            **columns,
            SEQ: pa.array(idx, pa.int64()),
            OP: op,
            LSN: lsn,
            EVENT_MS: event,
            PARTITION: pa.array([raws[i].partition for i in idx], pa.int32()),
            OFFSET: pa.array([raws[i].offset for i in idx], pa.int64()),
        }
    )


def _tombstones(
    raws: Sequence[Raw], idx: list[int], schema_of: Callable[[int], dict[str, Any]]
) -> pa.Table:
    """Deletes of a plain (upsert-kafka) topic: the key record is the row."""
    rows = []
    for i in idx:
        key = raws[i].key
        if key is None or len(key) < _HEADER.size or key[0] != 0:
            raise NotColumnar(f"offset {raws[i].offset}: tombstone without a framed key")
        schema = fastavro.parse_schema(schema_of(_HEADER.unpack_from(key)[1]))
        rows.append(fastavro.schemaless_reader(io.BytesIO(key[5:]), schema, None))
    table = pa.Table.from_pylist(rows)
    return (
        table.append_column(SEQ, pa.array(idx, pa.int64()))
        .append_column(OP, pa.array(["d"] * len(idx), pa.string()))
        .append_column(LSN, pa.nulls(len(idx), pa.int64()))
        .append_column(EVENT_MS, pa.array([raws[i].timestamp_ms for i in idx], pa.int64()))
        .append_column(PARTITION, pa.array([raws[i].partition for i in idx], pa.int32()))
        .append_column(OFFSET, pa.array([raws[i].offset for i in idx], pa.int64()))
    )


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in the sink table's Arrow schema: columns cast, absent ones null."""
    arrays = []
    for field in schema:
        if field.name in table.column_names:
            arrays.append(table[field.name].cast(field.type))
        else:
            arrays.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def upsert_tables(table: pa.Table, key: Sequence[str], schema: pa.Schema) -> UpsertTables:
    """The last change per key wins: rows to write, keys touched, deletes counted."""
    if not table.num_rows:
        empty = schema.empty_table()
        return UpsertTables(empty, empty.select(list(key)), 0, None)
    missing = [k for k in key if k not in table.column_names]
    if missing:
        raise NotColumnar(f"key field(s) {missing} not in the records")
    last = table.group_by(list(key)).aggregate([(SEQ, "max")])[f"{SEQ}_max"]
    final = table.filter(pc.is_in(table[SEQ], value_set=last))
    deleted = pc.equal(final[OP], "d")
    rows = conform(final.filter(pc.invert(deleted)), schema)
    touched = conform(final, schema).select(list(key))
    newest = pc.max(table[EVENT_MS]).as_py()
    return UpsertTables(rows, touched, int(pc.sum(deleted).as_py() or 0), newest)


def changelog_table(table: pa.Table, schema: pa.Schema) -> tuple[pa.Table, int | None]:
    """One row per change with its op, LSN, event time, partition and offset."""
    if not table.num_rows:
        return schema.empty_table(), None
    event_us = pc.multiply(table[EVENT_MS], 1000).cast(pa.timestamp("us"))
    extra = {
        layout.OP: table[OP],
        layout.LSN: table[LSN],
        layout.EVENT_TIME: event_us,
        layout.PARTITION: table[PARTITION],
        layout.OFFSET: table[OFFSET],
    }
    rows = table.drop_columns([c for c in table.column_names if c.startswith("__")])
    for name, column in extra.items():
        rows = rows.append_column(name, column)
    return conform(rows, schema), pc.max(table[EVENT_MS]).as_py()
