"""Streaming capture against real PostgreSQL, Kafka and the registry: ops, images, types."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from datamesh import names
from tests.integration.cdc.conftest import DOMAIN, RunningConnector, SourceDb, TopicReader

pytestmark = pytest.mark.integration


def _table(db: SourceDb, ddl: str) -> str:
    name = f"t_{uuid.uuid4().hex[:8]}"
    db.sql(f"CREATE TABLE public.{name} ({ddl})")
    db.sql(f"ALTER TABLE public.{name} REPLICA IDENTITY FULL")
    return f"public.{name}"


def test_ops_in_order_with_before_and_after_images(
    source_db: SourceDb, connector: Callable[..., RunningConnector], reader: TopicReader
) -> None:
    table = _table(source_db, "id int PRIMARY KEY, title text, year int")
    run = connector((table,), snapshot="never", cleanup_policy="delete").start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    for statement in (
        f"INSERT INTO {table} VALUES (1, 'a', 2001), (2, 'b', 2002), (3, 'c', 2003)",
        f"UPDATE {table} SET title = 'x' WHERE id = 2",
        f"UPDATE {table} SET id = 20 WHERE id = 2",
        f"DELETE FROM {table} WHERE id = 1",
        f"TRUNCATE {table}",
        f"INSERT INTO {table} VALUES (4, 'd', NULL)",
    ):
        source_db.sql(statement)
    run.wait_caught_up(source_db)
    events = reader.read(f"{DOMAIN}.{table}")

    def row(i: int, title: str, year: int | None) -> dict[str, Any]:
        return {"id": i, "title": title, "year": year}

    summary = [
        (k and k["id"], v and v["op"], v and v["before"], v and v["after"]) for k, v in events
    ]
    assert summary == [
        (1, "c", None, row(1, "a", 2001)),
        (2, "c", None, row(2, "b", 2002)),
        (3, "c", None, row(3, "c", 2003)),
        (2, "u", row(2, "b", 2002), row(2, "x", 2002)),
        (2, "d", row(2, "x", 2002), None),  # a primary-key change: delete + tombstone + create
        (2, None, None, None),
        (20, "c", None, row(20, "x", 2002)),
        (1, "d", row(1, "a", 2001), None),
        (1, None, None, None),
        (None, "t", None, None),
        (4, "c", None, row(4, "d", None)),
    ]
    source = events[0][1]["source"]
    assert source["connector"] == "postgresql" and source["snapshot"] == "false"
    assert (source["db"], source["schema"], source["table"]) == (
        source_db.name,
        "public",
        table.split(".")[1],
    )
    assert source["txId"] > 0 and source["lsn"] > 0 and events[0][1]["ts_ms"] > 0
    lsns = [v["source"]["lsn"] for _, v in events if v is not None]
    assert lsns == sorted(lsns)


TYPES_DDL = """
    id bigint PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, r real, d double precision,
    n numeric(12,3), nf numeric, t text, vc varchar(20), c char(4), b boolean, dt date,
    ts timestamp, tstz timestamptz, tm time, u uuid, j json, jb jsonb, by bytea, ai int[],
    atx text[], an numeric(5,1)[], iv interval
"""
TYPES_ROW = """
    (1, -32768, 2147483647, -9223372036854775808, 1.5, 2.25, -1234.567, 3.14159265358979,
     'café ☕ "q"', 'var', 'ab', true, '2024-02-29', '2024-01-02 03:04:05.123456',
     '2024-01-02 03:04:05.5+05:30', '23:59:59.999999', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     '{"a": [1, 2]}', '{"b": null}', '\\x00ff', '{1,NULL,3}', '{"a b",NULL,"x\\"y"}',
     '{1.5,NaN}', '1 day 02:00:00')
"""
TYPES_EXPECTED = {
    "id": 1,
    "i2": -32768,
    "i4": 2147483647,
    "i8": -(2**63),
    "r": 1.5,
    "d": 2.25,
    "n": Decimal("-1234.567"),
    "nf": "3.14159265358979",
    "t": 'café ☕ "q"',
    "vc": "var",
    "c": "ab  ",
    "b": True,
    "dt": date(2024, 2, 29),
    "ts": datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    "tstz": datetime(2024, 1, 1, 21, 34, 5, 500000, tzinfo=UTC),
    "tm": time(23, 59, 59, 999999),
    "u": uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    "j": '{"a": [1, 2]}',
    "jb": '{"b": null}',
    "by": b"\x00\xff",
    "ai": [1, None, 3],
    "atx": ["a b", None, 'x"y'],
    "an": [Decimal("1.5"), None],
    "iv": "1 day 02:00:00",
}


def test_every_type_round_trips_in_stream_and_snapshot(
    source_db: SourceDb, connector: Callable[..., RunningConnector], reader: TopicReader
) -> None:
    table = _table(source_db, TYPES_DDL)
    source_db.sql(f"INSERT INTO {table} VALUES {TYPES_ROW}")  # read by the snapshot
    run = connector((table,)).start()
    run.wait_snapshot_done(table)
    source_db.sql(f"INSERT INTO {table} (id) VALUES (2)")  # every other column NULL
    source_db.sql(f"UPDATE {table} SET id = 3 WHERE id = 1")  # streamed copy of row 1
    run.wait_caught_up(source_db)
    events = reader.read(f"{DOMAIN}.{table}")
    ops = [(v["op"], v["source"]["snapshot"]) for _, v in events if v is not None]
    assert ops == [("r", "last"), ("c", "false"), ("d", "false"), ("c", "false")]
    snapshot_row, null_row, stream_row = (
        events[0][1]["after"],
        events[1][1]["after"],
        events[-1][1]["after"],
    )
    assert snapshot_row == TYPES_EXPECTED
    assert stream_row == {**TYPES_EXPECTED, "id": 3}
    assert null_row == {name: (2 if name == "id" else None) for name in TYPES_EXPECTED}


def test_unchanged_toast_values_are_filled_from_the_before_image(
    source_db: SourceDb, connector: Callable[..., RunningConnector], reader: TopicReader
) -> None:
    table = _table(source_db, "id int PRIMARY KEY, big text, n int")
    source_db.sql(f"ALTER TABLE {table} ALTER COLUMN big SET STORAGE EXTERNAL")  # no compression
    big = uuid.uuid4().hex * 500  # 16 kB: stored out of line (TOAST)
    run = connector((table,), snapshot="never").start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    source_db.sql(f"INSERT INTO {table} VALUES (1, %s, 1)", (big,))
    source_db.sql(f"UPDATE {table} SET n = 2 WHERE id = 1")  # pgoutput sends big as 'u'
    run.wait_caught_up(source_db)
    events = reader.read(f"{DOMAIN}.{table}")
    update = events[-1][1]
    assert update["op"] == "u"
    assert update["after"] == {"id": 1, "big": big, "n": 2}
    assert update["before"] == {"id": 1, "big": big, "n": 1}


def test_wire_format_is_identical_to_avro_serializer(
    source_db: SourceDb, connector: Callable[..., RunningConnector], endpoints: dict[str, str]
) -> None:
    table = _table(source_db, TYPES_DDL)
    run = connector((table,), snapshot="never").start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    source_db.sql(f"INSERT INTO {table} VALUES {TYPES_ROW}")
    source_db.sql(f"UPDATE {table} SET t = 'changed' WHERE id = 1")
    run.wait_caught_up(source_db)
    topic = f"{DOMAIN}.{table}"
    raw = _raw_messages(endpoints["kafka"], topic)
    registry = SchemaRegistryClient({"url": endpoints["schema_registry"]})
    conf = {"auto.register.schemas": False, "use.latest.version": True}
    for field, subject in (
        (MessageField.VALUE, names.value_subject(topic)),
        (MessageField.KEY, names.key_subject(topic)),
    ):
        schema = registry.get_latest_version(subject).schema.schema_str
        serializer = AvroSerializer(registry, schema, conf=conf)
        deserializer = AvroDeserializer(registry)
        for key, value in raw:
            data = value if field == MessageField.VALUE else key
            ctx = SerializationContext(topic, field)
            assert serializer(deserializer(data, ctx), ctx) == data


def _raw_messages(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4()}"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    out: list[tuple[bytes | None, bytes | None]] = []
    while len(out) < end:
        for msg in consumer.consume(100, timeout=1):
            out.append((msg.key(), msg.value()))
    consumer.close()
    return out


def test_truncate_on_a_compacted_topic_pauses_only_that_table(
    source_db: SourceDb, connector: Callable[..., RunningConnector], reader: TopicReader
) -> None:
    compacted = _table(source_db, "id int PRIMARY KEY")
    other = _table(source_db, "id int PRIMARY KEY")
    run = connector((compacted, other), snapshot="never").start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    source_db.sql(f"INSERT INTO {compacted} VALUES (1)")
    source_db.sql(f"TRUNCATE {compacted}")
    source_db.sql(f"INSERT INTO {other} VALUES (7)")
    status = run.wait_status(lambda s: s["state"] == "paused", "the table to pause")
    error = status["tables"][compacted]["paused"]
    assert f"TRUNCATE of {compacted}" in error and "compacted" in error
    assert "--truncate skip" in error and "cleanup.policy=delete" in error
    run.wait_status(lambda s: s["tables"][other]["events"] == 1, "the other table to flow")
    assert [k["id"] for k, _ in reader.read(f"{DOMAIN}.{other}")] == [7]
    assert [v["op"] for _, v in reader.read(f"{DOMAIN}.{compacted}")] == ["c"]
