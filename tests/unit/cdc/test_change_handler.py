"""ChangeHandler on hand-built pgoutput messages, with a recording sink: what is sent, in which
order, where epochs are sealed, what a pause holds back and how a snapshot chunk is merged into
the log (pure: no PostgreSQL, Kafka or registry)."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import fastavro
import pytest

from datamesh.cdc.changes import ChangeHandler
from datamesh.cdc.codec import TableCodec, source_head
from datamesh.cdc.dblog import Chunk, Key, Window
from datamesh.cdc.delivery import KafkaSink
from datamesh.cdc.errors import SchemaIncompatible, TablePaused
from datamesh.cdc.pgoutput import PG_EPOCH_OFFSET_US, Column, Row
from datamesh.cdc.schema_book import SchemaBook
from datamesh.cdc.schemas import TableShape, envelope_schema, key_schema
from datamesh.cdc.snapshot import SnapshotRunner
from datamesh.cdc.tables import CapturedTable, Tables

MOVIES, MOVIES_OID, MARKS_OID = "public.movies", 16384, 16500
TOPIC = "studio.public.movies"
SLOT = "studio_slot"
SHAPE = TableShape(
    "public", "movies", (Column(True, "id", 23, -1), Column(False, "title", 25, -1)), ("id",)
)
Sent = tuple[str, bytes | None, bytes | None]


class Seal(NamedTuple):
    """A ``KafkaSink.seal`` call."""

    lsn: int
    then: Callable[[], None] | None


# -- pgoutput messages -------------------------------------------------------------------------


def _cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def _tuple(*values: bytes | None) -> bytes:
    out = struct.pack(">h", len(values))
    for v in values:
        out += b"n" if v is None else b"t" + struct.pack(">i", len(v)) + v
    return out


def relation(oid: int, namespace: str, name: str, cols: tuple[str, ...]) -> bytes:
    out = b"R" + struct.pack(">I", oid) + _cstr(namespace) + _cstr(name) + b"f"
    out += struct.pack(">h", len(cols))
    for i, col in enumerate(cols):
        out += bytes([i == 0]) + _cstr(col) + struct.pack(">Ii", 23 if i == 0 else 25, -1)
    return out


def begin(xid: int, commit_ms: int = 1_700_000_000_000) -> bytes:
    return b"B" + struct.pack(">QqI", 0, commit_ms * 1000 - PG_EPOCH_OFFSET_US, xid)


def commit(end_lsn: int) -> bytes:
    return b"C" + struct.pack(">BQQq", 0, end_lsn - 8, end_lsn, 0)


def insert(relid: int, *row: bytes | None) -> bytes:
    return b"I" + struct.pack(">I", relid) + b"N" + _tuple(*row)


def update(relid: int, old: tuple[bytes | None, ...], new: tuple[bytes | None, ...]) -> bytes:
    return b"U" + struct.pack(">I", relid) + b"O" + _tuple(*old) + b"N" + _tuple(*new)


def delete(relid: int, *old: bytes | None) -> bytes:
    return b"D" + struct.pack(">I", relid) + b"O" + _tuple(*old)


def truncate(*relids: int) -> bytes:
    return b"T" + struct.pack(">iB", len(relids), 0) + struct.pack(f">{len(relids)}I", *relids)


def message(lsn: int, transactional: bool) -> bytes:
    return b"M" + bytes([transactional]) + struct.pack(">Q", lsn) + _cstr("mesh") + b"\0\0\0\0"


def watermark(mark: str, slot: str = SLOT) -> bytes:
    return update(MARKS_OID, (slot.encode(), b"old"), (slot.encode(), mark.encode()))


# -- fakes -------------------------------------------------------------------------------------


class RecordingSink:
    """What ChangeHandler asks of a KafkaSink: sends and seals, in order."""

    def __init__(self) -> None:
        self.log: list[Sent | Seal] = []

    def send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.log.append((topic, key, value))

    def seal(self, lsn: int, then: Callable[[], None] | None = None) -> None:
        self.log.append(Seal(lsn, then))

    def sends(self) -> list[Sent]:
        return [e for e in self.log if not isinstance(e, Seal)]

    def seals(self) -> list[int]:
        return [e.lsn for e in self.log if isinstance(e, Seal)]


class FakeBook:
    """Codecs with fixed schema ids (key 7, value 8); a topic in ``refuse`` gets a 409."""

    def __init__(self) -> None:
        self.refuse: set[str] = set()

    def codec(self, topic: str, shape: TableShape) -> TableCodec:
        if topic in self.refuse:
            raise SchemaIncompatible(shape.qualified, f"{topic}-value", ("title",), "409")
        return TableCodec(shape, "studio", 7, 8, source_head("studio-studio-cdc"))


class FakeSnapshots:
    """The snapshot side ChangeHandler talks to: a real window; ``emitted`` is recorded."""

    def __init__(self) -> None:
        self.window = Window()
        self.persisted: list[str] = []

    def emitted(self, chunk: Chunk) -> Callable[[], None]:
        return lambda: self.persisted.append(chunk.high)


def _handler(
    sink: RecordingSink,
    book: FakeBook | None = None,
    snapshots: FakeSnapshots | None = None,
    compacted: bool = False,
    truncate_mode: str = "include",
) -> ChangeHandler:
    table = CapturedTable(MOVIES, TOPIC, ("id",), compacted=compacted)
    return ChangeHandler(
        Tables({MOVIES: table}),
        cast(KafkaSink, sink),
        cast(SchemaBook, book or FakeBook()),
        cast(SnapshotRunner, snapshots or FakeSnapshots()),
        SLOT,
        truncate_mode,
        describe=lambda name: None,
        compacted=lambda topic: compacted,
        log=lambda line: None,
        start_lsn=50,
    )


def _feed(handler: ChangeHandler, *payloads: bytes, lsn: int = 100) -> None:
    for i, payload in enumerate(payloads):
        handler.handle(payload, lsn + i)


def _event(value: bytes | None) -> dict[str, Any]:
    assert value is not None and value[:5] == b"\x00\x00\x00\x00\x08"  # value schema id 8
    schema = fastavro.parse_schema(envelope_schema(TOPIC, SHAPE))
    return cast(dict[str, Any], fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, None))


def _key(key: bytes | None) -> int:
    assert key is not None and key[:5] == b"\x00\x00\x00\x00\x07"  # key schema id 7
    schema = fastavro.parse_schema(key_schema(TOPIC, SHAPE))
    record = fastavro.schemaless_reader(io.BytesIO(key[5:]), schema, None)
    return cast(int, cast(dict[str, Any], record)["id"])


def _summary(sent: list[Sent]) -> list[tuple[int, str | None, Any, Any, int | None]]:
    """(key id, op, before, after, source LSN) per message; a tombstone is (id, None, ...)."""
    out: list[tuple[int, str | None, Any, Any, int | None]] = []
    for topic, key, value in sent:
        assert topic == TOPIC
        if value is None:
            out.append((_key(key), None, None, None, None))
            continue
        e = _event(value)
        out.append((_key(key), e["op"], e["before"], e["after"], e["source"]["lsn"]))
    return out


# -- tests -------------------------------------------------------------------------------------


def test_a_transaction_is_sent_in_log_order_and_sealed_at_its_commit_end_lsn() -> None:
    sink = RecordingSink()
    handler = _handler(sink)
    _feed(handler, relation(MOVIES_OID, "public", "movies", ("id", "title")), begin(742))
    _feed(
        handler,
        insert(MOVIES_OID, b"1", b"Alien"),
        update(MOVIES_OID, (b"1", b"Alien"), (b"1", b"Aliens")),
        delete(MOVIES_OID, b"1", b"Aliens"),
        lsn=200,
    )
    assert sink.seals() == []  # nothing may be confirmed before the commit
    _feed(handler, commit(300))
    one, two = {"id": 1, "title": "Alien"}, {"id": 1, "title": "Aliens"}
    assert _summary(sink.sends()) == [
        (1, "c", None, one, 200),
        (1, "u", one, two, 201),
        (1, "d", two, None, 202),
        (1, None, None, None, None),  # the tombstone after the delete
    ]
    assert sink.log[-1] == Seal(300, None)  # the seal comes after every send of the tx
    source = _event(sink.sends()[0][2])["source"]
    assert (source["txId"], source["snapshot"]) == (742, "false")
    assert source["ts_ms"] == 1_700_000_000_000  # the commit time
    assert handler.last_sealed == 300 and handler.tables.by_name[MOVIES].events == 4


def test_a_primary_key_change_is_a_delete_a_tombstone_and_a_create() -> None:
    sink = RecordingSink()
    handler = _handler(sink)
    _feed(handler, relation(MOVIES_OID, "public", "movies", ("id", "title")), begin(1))
    _feed(handler, update(MOVIES_OID, (b"1", b"Alien"), (b"2", b"Alien")), lsn=200)
    old, new = {"id": 1, "title": "Alien"}, {"id": 2, "title": "Alien"}
    assert _summary(sink.sends()) == [
        (1, "d", old, None, 200),
        (1, None, None, None, None),
        (2, "c", None, new, 200),
    ]


def test_only_non_transactional_messages_seal_as_heartbeats() -> None:
    sink = RecordingSink()
    handler = _handler(sink)
    _feed(handler, begin(1), message(120, transactional=True))
    assert sink.seals() == []
    _feed(handler, commit(130), message(140, transactional=False))
    assert sink.seals() == [130, 140] and sink.sends() == []


def test_a_refused_schema_pauses_the_table_at_the_last_commit() -> None:
    sink, book = RecordingSink(), FakeBook()
    handler = _handler(sink, book)
    _feed(handler, begin(1), insert(MOVIES_OID, b"1", b"x"), commit(90))  # before its Relation
    book.refuse.add(TOPIC)
    _feed(handler, relation(MOVIES_OID, "public", "movies", ("id", "title")), begin(2))
    _feed(handler, insert(MOVIES_OID, b"2", b"y"), commit(300), lsn=200)
    table = handler.tables.by_name[MOVIES]
    assert table.paused is not None and isinstance(table.paused.error, SchemaIncompatible)
    assert table.paused.since_lsn == 90 and handler.cap == 90  # the slot holds from there
    assert sink.sends() == [] and sink.seals() == [90, 300]  # other tables would still flow


def test_truncate_is_sent_with_a_null_key_or_pauses_a_compacted_topic() -> None:
    sink = RecordingSink()
    handler = _handler(sink)
    _feed(handler, relation(MOVIES_OID, "public", "movies", ("id", "title")), begin(1))
    _feed(handler, truncate(MOVIES_OID), lsn=200)
    [(_, key, value)] = sink.sends()
    assert key is None and _event(value)["op"] == "t"

    sink = RecordingSink()
    handler = _handler(sink, compacted=True)
    _feed(handler, relation(MOVIES_OID, "public", "movies", ("id", "title")), begin(1))
    _feed(handler, truncate(MOVIES_OID), insert(MOVIES_OID, b"1", b"x"), lsn=200)
    paused = handler.tables.by_name[MOVIES].paused
    assert paused is not None and isinstance(paused.error, TablePaused)
    assert "compacted" in str(paused.error) and sink.sends() == []

    sink = RecordingSink()
    handler = _handler(sink, truncate_mode="skip")
    _feed(handler, relation(MOVIES_OID, "public", "movies", ("id", "title")), begin(1))
    _feed(handler, truncate(MOVIES_OID), lsn=200)
    assert sink.sends() == [] and handler.tables.by_name[MOVIES].paused is None


def _chunk(final: bool, *ids: int) -> Chunk:
    rows: dict[Key, Row] = {(b"%d" % i,): (b"%d" % i, b"snap%d" % i) for i in ids}
    return Chunk(MOVIES, "low:1", "high:1", SHAPE, rows, (str(ids[-1]),), final)


def test_a_snapshot_chunk_is_emitted_at_its_high_watermark_minus_keys_logged_inside() -> None:
    sink, snapshots = RecordingSink(), FakeSnapshots()
    handler = _handler(sink, snapshots=snapshots)
    _feed(
        handler,
        relation(MARKS_OID, "mesh_cdc", "watermarks", ("slot_name", "mark")),
        relation(MOVIES_OID, "public", "movies", ("id", "title")),
    )
    snapshots.window.begin(_chunk(True, 1, 2, 3, 4))
    _feed(handler, begin(9), update(MOVIES_OID, (b"1", b"a"), (b"1", b"b")), lsn=200)  # before low
    _feed(handler, watermark("low:9", slot="another_slot"), watermark("low:1"), lsn=210)
    _feed(handler, delete(MOVIES_OID, b"3", b"c"), insert(MOVIES_OID, b"4", b"d"), lsn=220)
    _feed(handler, watermark("high:1"), lsn=230)
    assert snapshots.persisted == []  # progress is saved only once the epoch is acknowledged
    _feed(handler, commit(300))
    events = [(_key(k), _event(v) if v else None) for _, k, v in sink.sends()]
    ops = [(key, e["op"] if e else None) for key, e in events]
    # rows 3 and 4 changed inside the window: the log's events stand, the snapshot drops them
    assert ops == [(1, "u"), (3, "d"), (3, None), (4, "c"), (1, "r"), (2, "r")]
    reads = [e for _, e in events if e and e["op"] == "r"]
    assert [e["after"] for e in reads] == [{"id": 1, "title": "snap1"}, {"id": 2, "title": "snap2"}]
    assert [e["source"]["snapshot"] for e in reads] == ["true", "last"]  # the final chunk's end
    assert all(e["source"]["lsn"] == 230 for e in reads)  # at the high watermark's position
    assert snapshots.window.chunk is None
    [(lsn, then)] = [e for e in sink.log if isinstance(e, Seal)]
    assert lsn == 300 and then is not None
    then()  # what the sink runs once the epoch (and all before it) is acknowledged
    assert snapshots.persisted == ["high:1"]


def test_a_high_watermark_without_its_low_one_emits_nothing() -> None:
    sink, snapshots = RecordingSink(), FakeSnapshots()
    handler = _handler(sink, snapshots=snapshots)
    _feed(
        handler,
        relation(MARKS_OID, "mesh_cdc", "watermarks", ("slot_name", "mark")),
        relation(MOVIES_OID, "public", "movies", ("id", "title")),
    )
    snapshots.window.begin(_chunk(False, 1, 2))
    _feed(handler, begin(9), watermark("high:1"), commit(300))
    assert sink.log == [Seal(300, None)]
    assert snapshots.window.chunk is None  # dropped: selected again later


@pytest.mark.parametrize("mark", ["low:1", "high:1"])
def test_another_connectors_watermark_is_ignored(mark: str) -> None:
    sink, snapshots = RecordingSink(), FakeSnapshots()
    handler = _handler(sink, snapshots=snapshots)
    _feed(handler, relation(MARKS_OID, "mesh_cdc", "watermarks", ("slot_name", "mark")))
    chunk = _chunk(False, 1)
    snapshots.window.begin(chunk)
    _feed(handler, begin(9), watermark(mark, slot="other"), commit(300))
    assert snapshots.window.chunk is chunk and not chunk.opened
