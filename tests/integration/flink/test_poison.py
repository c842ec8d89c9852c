"""Poison messages go to the processor's dead-letter topic with the error in headers; the job
keeps running and processes the good messages around them."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from datamesh import names
from datamesh.flink import FlinkJobs, ProcessorJob
from tests.integration.flink.conftest import Topics, dlq_of, product, record, wait_for

pytestmark = pytest.mark.integration

EVENT = [("id", "long"), ("kind", "string")]
UNKNOWN_ID = b"\x00" + struct.pack(">I", 987_654_321) + b"\x02\x04ab"


def test_poison_lands_in_dlq_and_job_keeps_running(
    flink: FlinkJobs, topics: Topics, domain: str, jobs: Callable[..., ProcessorJob]
) -> None:
    events = product(domain, "clicks", "processor", record("Click", domain, EVENT))
    topic = names.topic(events)
    topics.create(topic)
    sql = f"SELECT id, kind FROM `{events.id}` WHERE kind <> 'bot'"
    out = product(domain, "human_clicks", "processor", inputs=(events.id,), sql=sql)
    job = jobs(out, [events])
    assert flink.deploy(job).running

    good = [{"id": i, "kind": "human"} for i in range(3)]
    framed = topics.serializer(events.value_schema or {})({"id": 99, "kind": "human"}, _ctx(topic))
    assert framed is not None
    truncated = framed[:-2]
    batch = [good[0], b"not avro at all", UNKNOWN_ID, good[1], truncated, None, good[2]]
    topics.produce(topic, events.value_schema, batch)

    output = topics.read(names.topic(out), lambda m: len(m) >= 3)
    assert [v for _, v, _ in output] == good
    dead = topics.read(dlq_of(out), lambda m: len(m) >= 3)
    assert [v for _, v, _ in dead] == [b"not avro at all", UNKNOWN_ID, truncated]
    headers = [h for _, _, h in dead]
    assert all(h["mesh.source.topic"] == topic.encode() for h in headers)
    assert all(h["mesh.job"] == job.name.encode() for h in headers)
    assert b"magic byte" in headers[0]["mesh.error"]
    assert b"987654321" in headers[1]["mesh.error"] and headers[1]["mesh.schema.id"] == b"987654321"
    assert b"does not decode" in headers[2]["mesh.error"]

    status = wait_for(lambda: (s := flink.status(job.name)).dead_letters >= 3 and s, 30, "metric")
    assert status.running and status.restarts == 0 and status.dead_letters == 3


def _ctx(topic: str):  # type: ignore[no-untyped-def]
    from confluent_kafka.serialization import MessageField, SerializationContext

    return SerializationContext(topic, MessageField.VALUE)
