"""Turn decoded pgoutput messages into Debezium-style events on Kafka (the hot path).

One :class:`ChangeHandler` per stream session. Per transaction it pre-encodes the source
block's ``ts_ms``/``txId`` and the envelope's ``ts_ms``; per change it only encodes the row
images and the LSN. Ops: insert ``c``; update ``u`` (a primary-key change becomes ``d`` +
tombstone + ``c`` like Debezium); delete ``d`` then a tombstone (same key, null value);
truncate ``t`` (null key); snapshot rows ``r``. What ``before`` holds depends on the table's
REPLICA IDENTITY (see :mod:`datamesh.cdc.identity`). Problems local to one table pause that table
(see :mod:`datamesh.cdc.tables`); everything else raises.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from datamesh import heartbeat
from datamesh.cdc import codec as C
from datamesh.cdc import pgoutput as P
from datamesh.cdc.avro_binary import long_bytes
from datamesh.cdc.catalog import TableInfo
from datamesh.cdc.delivery import KafkaSink
from datamesh.cdc.errors import (
    SchemaIncompatible,
    SourceConfigError,
    truncate_on_compacted,
)
from datamesh.cdc.identity import identity_refusal
from datamesh.cdc.rowparse import FALLBACK
from datamesh.cdc.schema_book import SchemaBook
from datamesh.cdc.schemas import TableShape
from datamesh.cdc.snapshot import SnapshotRunner
from datamesh.cdc.snapshot_store import WATERMARK_TABLE
from datamesh.cdc.tables import CapturedTable, Pause, Tables
from datamesh.errors import MeshError

OP_C, OP_U, OP_D, OP_R, OP_T = (C.OPS[o] for o in "cudrt")
INSERT, UPDATE, DELETE = b"IUD"  # pgoutput message types the one-pass path handles
_RELID = struct.Struct(">I").unpack_from


class ChangeHandler:
    """Applies one replication session's messages to Kafka, tracking what may be confirmed."""

    def __init__(
        self,
        tables: Tables,
        sink: KafkaSink,
        book: SchemaBook,
        snapshots: SnapshotRunner,
        slot: str,
        truncate: str,
        describe: Callable[[str], TableInfo | None],
        compacted: Callable[[str], bool],
        log: Callable[[str], None],
        start_lsn: int,
    ) -> None:
        self.tables = tables
        self.sink = sink
        self.book = book
        self.snapshots = snapshots
        self.slot = slot
        self.truncate = truncate
        self.describe = describe
        self.compacted = compacted
        self.log = log
        self.cap: int | None = None  # never confirm past this while a table is paused
        self.last_sealed = start_lsn
        self._xid: int | None = None
        self._commit_ms = 0
        self._tx = C.TxParts.of(0, "false", None, 0)
        self._ends = self._op_ends()
        self._after_commit: list[Callable[[], None]] = []
        self._kinds = {
            P.Insert: self._insert,
            P.Update: self._update,
            P.Delete: self._delete,
            P.Begin: self._begin,
            P.Commit: self._commit,
            P.Relation: self._relation,
            P.Truncate: self._truncate,
            P.Message: self._message,
        }

    def handle(self, payload: bytes, lsn: int) -> None:
        """Apply one pgoutput message received at WAL position ``lsn``."""
        end = self._ends.get(payload[0])
        if end is not None and self._one_pass(payload, lsn, end):
            return
        msg = P.decode(payload)
        handler = self._kinds.get(type(msg))
        if handler is not None:  # Origin and Type messages carry nothing we publish
            handler(msg, lsn)  # type: ignore[operator]

    def _one_pass(self, payload: bytes, lsn: int, end: bytes) -> bool:
        """Publish a row change with its table's generated decoder (see :mod:`rowparse`);
        False when the generic path must take it (new table, pause, snapshot window, or a
        form the decoder leaves to it)."""
        if self.snapshots.window.chunk is not None:  # the window needs the key values
            return False
        table = self.tables.by_relid.get(_RELID(payload, 1)[0])
        if table is None or table.paused is not None or table.codec is None:
            return False
        codec = table.codec
        kind = payload[0]
        src = codec.source(self._tx) + long_bytes(lsn)
        try:
            if kind == INSERT:
                key, value = codec.insert(payload, src, end)
            elif kind == UPDATE:
                key, value = codec.update(payload, src, end)
            else:
                key, value = codec.delete(payload, src, end)
        except FALLBACK:
            return False
        self.sink.send(table.topic, key, value)
        if kind == DELETE:
            self.sink.send(table.topic, key, None)  # tombstone
            table.events += 1
        table.events += 1
        return True

    def _op_ends(self) -> dict[int, bytes]:
        """The envelope's op + ts_ms of each row message type, for the open transaction."""
        now = self._tx.now
        return {INSERT: OP_C + now, UPDATE: OP_U + now, DELETE: OP_D + now}

    # -- transactions ------------------------------------------------------------------------

    def _begin(self, msg: P.Begin, lsn: int) -> None:
        self._xid = msg.xid
        self._commit_ms = msg.commit_ts_us // 1000
        self._tx = C.TxParts.of(msg.commit_ts_us // 1000, "false", msg.xid, int(time.time() * 1000))
        self._ends = self._op_ends()

    def _commit(self, msg: P.Commit, lsn: int) -> None:
        self._seal(msg.end_lsn)

    def _message(self, msg: P.Message, lsn: int) -> None:
        if not msg.transactional:  # heartbeats: lets an idle slot's confirmed LSN move
            self._seal(msg.lsn)
        elif msg.prefix == heartbeat.MESSAGE_PREFIX:
            self._synthetic(msg.content)

    def _synthetic(self, content: bytes) -> None:
        """Publish a synthetic heartbeat event to its table's topic (see
        :mod:`datamesh.heartbeat`), unless that table is not captured or paused."""
        try:
            beat = heartbeat.from_message(content, self._commit_ms)
        except (ValueError, KeyError, TypeError):
            self.log(f"WARNING ignored a {heartbeat.MESSAGE_PREFIX} message: {content[:80]!r}")
            return
        table = self.tables.by_topic(beat.source)
        if table is None or table.paused is not None:
            return
        self.sink.send(table.topic, heartbeat.key(beat.source), heartbeat.encode(beat))

    def _seal(self, lsn: int) -> None:
        then = None
        if self._after_commit:
            then = _in_order(self._after_commit)
            self._after_commit = []
        self.sink.seal(lsn, then)
        self.last_sealed = lsn

    # -- schema ------------------------------------------------------------------------------

    def _relation(self, rel: P.Relation, lsn: int) -> None:
        name = f"{rel.namespace}.{rel.name}"
        if name == WATERMARK_TABLE:
            self.tables.watermark_relid = rel.oid
            return
        table = self.tables.by_relid.get(rel.oid) or self.tables.by_name.get(name)
        if table is None or table.paused is not None:
            return
        table.relid = rel.oid
        self.tables.by_relid[rel.oid] = table
        key = table.key
        if not set(key) <= {c.name for c in rel.columns}:
            info = self.describe(table.name)  # the primary key changed since we looked
            key = table.key = info.shape.key if info else key
        logged = [c.name for c in rel.columns if c.key]  # the identity's columns
        refusal = identity_refusal(table.name, rel.replica_identity, key, logged)
        if refusal is not None:
            # Not a pause: a replay would meet this same Relation in the log (it carries the
            # identity of its time, whatever the catalog says now), so the table could never
            # resume; and PostgreSQL itself refuses UPDATE/DELETE of a published table without
            # an identity, so what follows can only be inserts (or fails on a missing key).
            self.log(f"WARNING {refusal} (the connector refuses to start like this)")
        table.codec = self._codec_for(table, TableShape(rel.namespace, rel.name, rel.columns, key))

    def _codec_for(self, table: CapturedTable, shape: TableShape) -> C.TableCodec | None:
        """The codec of ``shape``, registering it; pauses ``table`` if that is refused."""
        try:
            return self.book.codec(table.topic, shape)
        except SchemaIncompatible as exc:
            self.pause(table, exc, lambda: self._registers(table, shape))
        except SourceConfigError as exc:  # e.g. column names that collide as Avro names
            self.pause(table, exc, None)
        return None

    def _registers(self, table: CapturedTable, shape: TableShape) -> bool:
        try:
            self.book.codec(table.topic, shape)
        except MeshError:
            return False
        return True

    def pause(
        self, table: CapturedTable, error: MeshError, probe: Callable[[], bool] | None
    ) -> None:
        """Stop ``table`` here: nothing of it is sent and the slot holds from the last commit."""
        table.paused = Pause(error, self.last_sealed, probe)
        self.cap = self.last_sealed if self.cap is None else min(self.cap, self.last_sealed)
        self.log(f"PAUSED {table.name}: {error}")

    # -- rows --------------------------------------------------------------------------------

    def _table(self, relid: int) -> CapturedTable | None:
        table = self.tables.by_relid.get(relid)
        if table is None or table.paused is not None or table.codec is None:
            return None
        return table

    def _insert(self, msg: P.Insert, lsn: int) -> None:
        table = self._table(msg.relid)
        if table is None:
            if msg.relid == self.tables.watermark_relid:
                self._watermark(msg.new, lsn)
            return
        codec: C.TableCodec = table.codec  # type: ignore[assignment]  # set by _table
        try:
            key, after = codec.keyed(msg.new)
        except MeshError as exc:
            self.pause(table, exc, None)
            return
        if self.snapshots.window.chunk is not None:
            self.snapshots.window.on_change(table.name, codec.key_values(msg.new))
        self.sink.send(table.topic, key, codec.event(None, after, OP_C, self._tx, lsn))
        table.events += 1

    def _update(self, msg: P.Update, lsn: int) -> None:
        table = self._table(msg.relid)
        if table is None:
            if msg.relid == self.tables.watermark_relid:
                self._watermark(msg.new, lsn)
            return
        codec: C.TableCodec = table.codec  # type: ignore[assignment]  # set by _table
        old = None if msg.old_is_key else msg.old  # the full before image (identity FULL)
        before: bytes | None
        try:
            if old is not None:
                old_key, before, key, after = codec.keyed_pair(old, msg.new)
            else:
                key, after = codec.keyed_unavailable(msg.new)
                old_key, before = _key_image(codec, msg.old, key)
        except MeshError as exc:
            self.pause(table, exc, None)
            return
        moved = old_key != key  # the primary key changed
        if self.snapshots.window.chunk is not None:
            self.snapshots.window.on_change(
                table.name, codec.key_values(C.fill_unchanged(msg.new, old))
            )
            if moved and msg.old is not None:
                self.snapshots.window.on_change(table.name, codec.key_values(msg.old))
        send, topic, tx = self.sink.send, table.topic, self._tx
        if moved:  # delete the old key, create the new one (what Debezium emits)
            send(topic, old_key, codec.event(before, None, OP_D, tx, lsn))
            send(topic, old_key, None)
            send(topic, key, codec.event(None, after, OP_C, tx, lsn))
            table.events += 3
            return
        send(topic, key, codec.event(before, after, OP_U, tx, lsn))
        table.events += 1

    def _delete(self, msg: P.Delete, lsn: int) -> None:
        table = self._table(msg.relid)
        if table is None:
            return
        codec: C.TableCodec = table.codec  # type: ignore[assignment]  # set by _table
        try:  # a key-only image ('K') is the before image too: key set, the rest null
            key, before = codec.keyed(msg.old)
            value = codec.event(before, None, OP_D, self._tx, lsn)
        except MeshError as exc:
            self.pause(table, exc, None)
            return
        if self.snapshots.window.chunk is not None:
            self.snapshots.window.on_change(table.name, codec.key_values(msg.old))
        self.sink.send(table.topic, key, value)
        self.sink.send(table.topic, key, None)  # tombstone: compaction may drop the key
        table.events += 2

    def _truncate(self, msg: P.Truncate, lsn: int) -> None:
        for relid in msg.relids:
            table = self._table(relid)
            if table is None:
                continue
            self.snapshots.window.on_truncate(table.name)
            if self.truncate == "skip":
                continue
            if table.compacted:  # Kafka refuses null keys on compacted topics
                self._pause_truncate(table)
                continue
            codec: C.TableCodec = table.codec  # type: ignore[assignment]  # set by _table
            self.sink.send(table.topic, None, codec.event(None, None, OP_T, self._tx, lsn))
            table.events += 1

    def _pause_truncate(self, table: CapturedTable) -> None:
        error = truncate_on_compacted(table.name, table.topic)
        self.pause(table, error, lambda: not self.compacted(table.topic))

    # -- snapshots ---------------------------------------------------------------------------

    def _watermark(self, row: P.Row, lsn: int) -> None:
        slot, mark = row[0], row[1]
        if slot != self.slot.encode() or not isinstance(mark, bytes):
            return  # another connector's watermark
        chunk = self.snapshots.window.on_watermark(mark.decode())
        if chunk is None:
            return
        table = self.tables.by_name[chunk.table]
        if table.paused is not None:
            return  # dropped: selected again once the table flows
        codec = self._codec_for(table, chunk.shape)  # the shape at select time, cached
        if codec is None:
            return
        self._emit_chunk(table, codec, list(chunk.rows.values()), chunk.final, lsn)
        if table.paused is None:
            self._after_commit.append(self.snapshots.emitted(chunk))

    def _emit_chunk(
        self, table: CapturedTable, codec: C.TableCodec, rows: list[P.Row], final: bool, lsn: int
    ) -> None:
        now = int(time.time() * 1000)
        xid = self._xid
        middle = C.TxParts.of(now, "true", xid, now)
        last = C.TxParts.of(now, "last", xid, now)
        for i, row in enumerate(rows):
            tx = last if final and i == len(rows) - 1 else middle
            try:
                key, after = codec.keyed(row)
                value = codec.event(None, after, OP_R, tx, lsn)
            except MeshError as exc:
                self.pause(table, exc, None)
                return
            self.sink.send(table.topic, key, value)
        table.events += len(rows)


def _key_image(codec: C.TableCodec, old: P.Row | None, key: bytes) -> tuple[bytes, bytes | None]:
    """(old key, before) of an update without a full old image, as Debezium writes it
    (PostgresChangeRecordEmitter: the old tuple's columns, or no before at all): pgoutput sends
    no old tuple unless an identity column changed, then the key-only image ('K')."""
    if old is None:
        return key, None
    return codec.keyed(old)


def _in_order(steps: list[Callable[[], None]]) -> Callable[[], None]:
    """One callback running ``steps`` in order."""

    def run() -> None:
        for step in steps:
            step()

    return run
