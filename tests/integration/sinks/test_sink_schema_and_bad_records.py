"""Iceberg sinks follow their input's schema, refuse what they cannot take, and handle records
they cannot decode — each without writing anything half-way."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from datamesh import endpoints
from datamesh.kafka_config import client_config
from datamesh.schema_client import SchemaClient
from datamesh.sinks.iceberg_sink import BadRecord, IcebergSink, SinkJob
from datamesh.sinks.table_schema import SchemaRefused
from resources.iceberg import IcebergResource
from tests.integration.flink.conftest import Topics, record
from tests.integration.sinks.conftest import Source, await_caught_up, snapshot_offsets, table_rows
from tests.integration.sinks.test_iceberg_sink import MOVIES, assert_equal, job_for

pytestmark = pytest.mark.integration


def test_a_column_added_at_the_source_reaches_the_table(
    source: Callable[..., Source], sinks: Callable[..., IcebergSink]
) -> None:
    src = source(MOVIES, "movies")
    job = job_for(src, partition_by=("bucket(4, id)", "day(updated_at)"))
    src.run("INSERT INTO movies (id, title) SELECT g, 'm' || g FROM generate_series(1, 20) g")
    await_caught_up(src)
    sink = sinks()
    sink.run(job)
    src.run("ALTER TABLE movies ADD COLUMN region text")
    src.run("UPDATE movies SET region = 'emea' WHERE id <= 5")
    src.run("INSERT INTO movies (id, title, region) VALUES (100, 'new', 'apac')")
    await_caught_up(src)
    report = sink.run(job)
    assert report.columns_added == ("region",)
    table = IcebergResource().catalog().load_table(job.table)
    assert [f.name for f in table.schema().fields][-1] == "region"
    assert [f.name for f in table.spec().fields] == ["id_bucket_4", "updated_at_day"]
    assert_equal(src, job, "id, title, region")
    rows = table_rows(job)
    assert rows[100]["region"] == "apac" and rows[3]["region"] == "emea"
    assert rows[10]["region"] is None


def _topic_job(domain: str, mode: str = "upsert", **kw: object) -> SinkJob:
    return SinkJob(
        product_id=f"{domain}.out_table",
        table=f"{domain}.out_{mode}",
        topic=f"{domain}.out",
        key=("id",),
        mode=mode,
        envelope=False,
        dlq_topic=f"{domain}.out_table.dlq",
        **kw,  # type: ignore[arg-type]
    )


def _key(value: dict[str, object] | bytes | None) -> bytes:
    return b"k" if not isinstance(value, dict) else str(value["id"]).encode()


@pytest.fixture
def topics(mesh_stack: object) -> Topics:
    from datamesh.flink.connections import resolve

    return Topics(resolve())


def test_a_narrowed_type_is_refused_and_nothing_is_written(
    topics: Topics, sinks: Callable[..., IcebergSink]
) -> None:
    domain = f"sr{uuid.uuid4().hex[:8]}"
    job = _topic_job(domain)
    topics.create(job.topic)
    SchemaClient(endpoints.endpoint("schema_registry")).set_level(job.value_subject, "NONE")
    wide = record("Out", domain, [("id", "long"), ("amount", "long")])
    topics.produce(job.topic, wide, [{"id": 1, "amount": 10}])
    sink = sinks()
    sink.run(job)
    narrow = record("Out", domain, [("id", "long"), ("amount", "int")])
    topics.produce(job.topic, narrow, [{"id": 2, "amount": 20}])
    with pytest.raises(SchemaRefused) as refused:
        sink.run(job)
    assert "amount" in str(refused.value) and "long" in str(refused.value)
    assert "int" in str(refused.value)
    table = IcebergResource().catalog().load_table(job.table)
    assert len(table.metadata.snapshots) == 1 and len(table_rows(job)) == 1


# A schema id no registry of a test session reaches (the session's registry is shared: a small id
# such as 99 exists once enough earlier tests registered schemas, and "garbage" may then decode).
UNKNOWN_ID = 0x7FFFFFF0
GARBAGE = b"\x00" + UNKNOWN_ID.to_bytes(4, "big") + b"garbage"


def test_a_bad_record_fails_the_run_naming_it_or_goes_to_the_dead_letter_topic(
    topics: Topics, sinks: Callable[..., IcebergSink]
) -> None:
    domain = f"br{uuid.uuid4().hex[:8]}"
    schema = record("Out", domain, [("id", "long"), ("name", ["null", "string"])])
    job = _topic_job(domain)
    topics.create(job.topic)
    good = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    topics.produce(job.topic, schema, [good[0], GARBAGE, good[1]], _key)
    with pytest.raises(BadRecord) as bad:
        sinks().run(job)
    assert (bad.value.topic, bad.value.partition, bad.value.offset) == (job.topic, 0, 1)
    assert f"{job.topic}[0]@1" in str(bad.value)
    table = IcebergResource().catalog().load_table(job.table)
    assert table.current_snapshot() is None  # nothing written, offsets did not move

    tolerant = _topic_job(domain, on_bad_record="dlq")
    report = sinks().run(tolerant)
    assert report.dead_letters == 1 and report.upserted == 2
    assert sorted(table_rows(tolerant)) == [1, 2]
    consumer = Consumer(
        {**client_config(endpoints.endpoint("kafka")), "group.id": f"t{uuid.uuid4().hex}"}
    )
    consumer.assign([TopicPartition(tolerant.dlq_topic, 0, 0)])
    msg = consumer.poll(15)
    consumer.close()
    assert msg is not None and not msg.error()
    headers = dict(msg.headers() or [])
    assert msg.value() == GARBAGE
    error = headers["mesh.error"]
    assert headers["mesh.source.offset"] == b"1"
    assert isinstance(error, bytes) and f"schema id {UNKNOWN_ID}".encode() in error


def test_tombstones_delete_in_upsert_topics(
    topics: Topics, sinks: Callable[..., IcebergSink]
) -> None:
    domain = f"ts{uuid.uuid4().hex[:8]}"
    schema = record("Out", domain, [("id", "long"), ("name", ["null", "string"])])
    job = _topic_job(domain)
    topics.create(job.topic, partitions=2)
    key_schema = record("OutKey", domain, [("id", "long")])
    key_ser = topics.serializer(key_schema)
    from confluent_kafka.serialization import MessageField, SerializationContext

    ctx = SerializationContext(job.topic, MessageField.KEY)
    val = topics.serializer(schema)
    vctx = SerializationContext(job.topic, MessageField.VALUE)
    producer = Producer({"bootstrap.servers": topics.conn.bootstrap})
    for i in range(1, 11):
        producer.produce(job.topic, val({"id": i, "name": f"n{i}"}, vctx), key_ser({"id": i}, ctx))
    producer.produce(job.topic, None, key_ser({"id": 3}, ctx))  # tombstone
    producer.produce(job.topic, val({"id": 4, "name": "again"}, vctx), key_ser({"id": 4}, ctx))
    producer.flush(30)
    sinks().run(job)
    rows = table_rows(job)
    assert sorted(rows) == [1, 2, 4, 5, 6, 7, 8, 9, 10] and rows[4]["name"] == "again"
    table = IcebergResource().catalog().load_table(job.table)
    assert sum(snapshot_offsets(table).values()) == 12
    AdminClient({"bootstrap.servers": topics.conn.bootstrap}).delete_topics([job.topic])
