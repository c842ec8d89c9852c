"""Encode change events of one table shape into Confluent-framed Avro, without dicts.

A :class:`TableCodec` is built once per (table shape, registered schema ids); per event it only
concatenates bytes: the 5-byte frame, the ``before``/``after`` union branches with the row
bodies, the source block (its per-connector and per-table parts pre-encoded, its
per-transaction parts in a :class:`TxParts`), the op and the processing time. An update's two
images share the encoding of every value they have in common. See
:mod:`datamesh.cdc.avro_binary` for why this bypasses ``AvroSerializer``.
"""

from __future__ import annotations

from typing import NamedTuple

from datamesh.cdc.avro_binary import (
    NULL_BRANCH,
    VALUE_BRANCH,
    confluent_frame,
    long_bytes,
    string_bytes,
)
from datamesh.cdc.errors import UnsupportedValue
from datamesh.cdc.pgoutput import UNCHANGED, Row
from datamesh.cdc.pgtypes import NotRepresentable, avro_column_type
from datamesh.cdc.rowcode import compile_keyed, compile_pair, compile_parts
from datamesh.cdc.rowparse import compile_row_functions
from datamesh.cdc.schemas import CONNECTOR, TableShape
from datamesh.cdc.unavailable import UNAVAILABLE_VALUE, unavailable_present

VERSION = "1.0.0-mesh"  # source.version: this connector's event format version
OPS = {op: string_bytes(op) for op in "cudrt"}
SNAPSHOT = {flag: string_bytes(flag) for flag in ("true", "last", "false")}


def source_head(connector_name: str) -> bytes:
    """The constant start of every source block: version, connector kind, connector name."""
    return string_bytes(VERSION) + string_bytes(CONNECTOR) + string_bytes(connector_name)


def optional_long(value: int | None) -> bytes:
    """A ``["null", "long"]`` union value."""
    return NULL_BRANCH if value is None else VALUE_BRANCH + long_bytes(value)


class TxParts(NamedTuple):
    """Encoded fields shared by a transaction's events (or a snapshot chunk's)."""

    ts_ms: bytes  # source.ts_ms: commit time
    snapshot: bytes  # source.snapshot
    tx_id: bytes  # source.txId
    now: bytes  # envelope ts_ms: when the connector processed it

    @classmethod
    def of(cls, ts_ms: int, snapshot: str, tx_id: int | None, now_ms: int) -> TxParts:
        """Encode the parts once."""
        return cls(
            long_bytes(ts_ms), SNAPSHOT[snapshot], optional_long(tx_id), optional_long(now_ms)
        )


class TableCodec:
    """Keys, row images and events of one table shape, framed with its schema ids."""

    def __init__(
        self, shape: TableShape, database: str, key_id: int, value_id: int, head: bytes
    ) -> None:
        self.shape = shape
        self._names = tuple(c.name for c in shape.columns)
        types = [avro_column_type(c.type_oid, c.typmod) for c in shape.columns]
        self._encoders = tuple(t.encode for t in types)
        self._present = tuple(t.present for t in types)  # optional Value fields
        self._unavailable = tuple(unavailable_present(t.avro) for t in types)
        positions = {c.name: i for i, c in enumerate(shape.columns)}
        self.key_positions = tuple(positions[k] for k in shape.key)
        self._key_pairs = tuple((self._encoders[i], i) for i in self.key_positions)
        self.key_frame = confluent_frame(key_id)
        self._fast_parts = compile_parts(self._present)
        self._fast_keyed = compile_keyed(self._present, self.key_positions, self.key_frame)
        self._fast_pair = compile_pair(self._present, self.key_positions, self.key_frame)
        self.value_frame = confluent_frame(value_id)
        # one-pass decode + encode of I/U/D messages (see rowparse); the generic path is below
        self.insert, self.update, self.delete = compile_row_functions(
            types, self.key_positions, self.key_frame, self.value_frame, self._unavailable
        )
        self.head = head
        # the frame and the union branches of the image fields, per combination of images
        self._no_images = self.value_frame + NULL_BRANCH + NULL_BRANCH
        self._only_after = self.value_frame + NULL_BRANCH + VALUE_BRANCH
        self._with_before = self.value_frame + VALUE_BRANCH
        self._tx: TxParts | None = None
        self._source = b""
        self.middle = b"".join(string_bytes(s) for s in (database, shape.schema, shape.table))

    def image(self, row: Row) -> bytes:
        """The ``Value`` record body of a full row (every value present or NULL)."""
        try:
            return b"".join(self._fast_parts(row))
        except (ValueError, TypeError, IndexError):
            return b"".join(self._careful_parts(row))

    def keyed(self, row: Row) -> tuple[bytes, bytes]:
        """(framed key, ``Value`` body) of a full row, encoding each value once."""
        try:
            return self._fast_keyed(row)
        except (ValueError, TypeError, IndexError):
            return self.key(row), b"".join(self._careful_parts(row))

    def keyed_unavailable(self, row: Row) -> tuple[bytes, bytes]:
        """:meth:`keyed` of an update's new image that has no full old image beside it
        (identity DEFAULT or USING INDEX): unchanged TOAST values are unavailable."""
        if UNCHANGED in row:
            return self.key(row), b"".join(self._careful_parts(row))
        return self.keyed(row)

    def keyed_pair(self, old: Row, new: Row) -> tuple[bytes, bytes, bytes, bytes]:
        """(old key, before body, new key, after body) of an update from the full old image;
        shared values are encoded once, unchanged TOAST values come from the old image."""
        try:
            return self._fast_pair(old, new)
        except (ValueError, TypeError, IndexError):
            new = fill_unchanged(new, old)
            return (
                self.key(old),
                b"".join(self._careful_parts(old)),
                self.key(new),
                b"".join(self._careful_parts(new)),
            )

    def _careful_parts(self, row: Row) -> list[bytes]:
        """Slow path: NaN-like values become null; anything else names its column."""
        parts = []
        for name, enc, marker, v in zip(
            self._names, self._present, self._unavailable, row, strict=True
        ):
            if v is None:
                parts.append(NULL_BRANCH)
                continue
            if v is UNCHANGED and marker is not None:  # no old image to take it from
                parts.append(marker)
                continue
            try:
                parts.append(enc(self._value(name, v)))
            except NotRepresentable:
                parts.append(NULL_BRANCH)
            except (ValueError, TypeError, IndexError) as exc:
                raise self._unsupported(name, v, exc) from exc
        return parts

    def key(self, row: Row) -> bytes:
        """The framed Kafka key: the ``Key`` record of the primary-key values."""
        try:
            body = b"".join([enc(row[i]) for enc, i in self._key_pairs])  # type: ignore[arg-type]
        except (ValueError, TypeError):
            body = self._careful_key(row)
        return self.key_frame + body

    def _careful_key(self, row: Row) -> bytes:
        """Slow path of :meth:`key`: find the key column that cannot be encoded."""
        parts = []
        for enc, i in self._key_pairs:
            try:
                parts.append(enc(self._value(self._names[i], row[i])))
            except (ValueError, TypeError) as exc:
                raise self._unsupported(self._names[i], row[i], exc) from exc
        return b"".join(parts)

    def key_values(self, row: Row) -> tuple[object, ...]:
        """The primary-key values as text (what snapshot windows compare)."""
        return tuple([row[i] for i in self.key_positions])

    def event(
        self, before: bytes | None, after: bytes | None, op: bytes, tx: TxParts, lsn: int
    ) -> bytes:
        """The framed ``Envelope``: images, source block (with the event's LSN), op, ts_ms."""
        tail = (self.source(tx), long_bytes(lsn), op, tx.now)
        if before is None:
            if after is None:
                return b"".join((self._no_images, *tail))
            return b"".join((self._only_after, after, *tail))
        if after is None:
            return b"".join((self._with_before, before, NULL_BRANCH, *tail))
        return b"".join((self._with_before, before, VALUE_BRANCH, after, *tail))

    def source(self, tx: TxParts) -> bytes:
        """The source block up to the LSN (built once per transaction)."""
        if tx is not self._tx:
            self._tx = tx
            self._source = b"".join(
                (self.head, tx.ts_ms, tx.snapshot, self.middle, tx.tx_id, VALUE_BRANCH)
            )
        return self._source

    @staticmethod
    def _value(name: str, value: object) -> bytes:
        if not isinstance(value, bytes):
            raise TypeError(f"{name} has no value ({value!r})")
        return value

    def _unsupported(self, name: str, value: object, exc: Exception) -> UnsupportedValue:
        table = self.shape.qualified
        if value is UNCHANGED:
            return UnsupportedValue(
                f"{table}.{name}",
                "an unchanged TOAST value arrived without the old row image, and the column's "
                f"type has no {UNAVAILABLE_VALUE} placeholder",
                f"ALTER TABLE {table} REPLICA IDENTITY FULL",
            )
        shown = value.decode(errors="replace")[:80] if isinstance(value, bytes) else repr(value)
        return UnsupportedValue(
            f"{table}.{name}",
            f"value {shown!r} does not fit its Avro type ({exc})",
            "change the column type or value; the table is paused until then",
        )


def fill_unchanged(new: Row, old: Row | None) -> Row:
    """``new`` with unchanged TOAST values taken from the full old image (identity FULL)."""
    if old is None or UNCHANGED not in new:
        return new
    return tuple(o if n is UNCHANGED else n for n, o in zip(new, old, strict=True))
