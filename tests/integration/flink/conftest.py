"""Fixtures for Flink processor tests against the real stack (Kafka, registry, Flink, gateway).

Products are built in memory with uuid-suffixed domains, so topics, subjects and job names are
each test's own. ``jobs`` cancels every job a test deployed, even when it fails, so the
TaskManager's 4 slots are free for the next test.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in its __all__
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from datamesh import names
from datamesh.endpoints import Record
from datamesh.flink import FlinkJobs, JobSettings, ProcessorJob, from_product
from datamesh.flink.connections import Connections, resolve
from datamesh.specs.product import CdcSource, DataProduct, Slo, TopicSettings

FAST = JobSettings(checkpoint_interval_ms=1000)
# How an AvroSerializer is called. Named here because mypy sees the class as Any:
# confluent_kafka.schema_registry.avro only star-imports it.
Serialize = Callable[[Any, SerializationContext], bytes | None]


# The demo studio.movies row as (field, Avro type) pairs, shared by the processor tests.
MOVIE = [
    ("id", "long"),
    ("title", "string"),
    ("status", "string"),
    ("release_year", ["null", "int"]),
    ("updated_at", {"type": "long", "logicalType": "timestamp-micros"}),
]


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll until ``predicate`` is truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


def record(name: str, namespace: str, fields: list[tuple[str, Any]]) -> dict[str, Any]:
    """An Avro record schema; nullable fields get ``default: null``."""
    out = []
    for field_name, avro_type in fields:
        field: dict[str, Any] = {"name": field_name, "type": avro_type}
        if isinstance(avro_type, list) and "null" in avro_type:
            field["default"] = None
        out.append(field)
    return {"type": "record", "name": name, "namespace": namespace, "fields": out}


def product(
    domain: str,
    name: str,
    kind: str,
    schema: dict[str, Any] | None = None,
    key: tuple[str, ...] = (),
    inputs: tuple[str, ...] = (),
    sql: str | None = None,
    table: str | None = None,
    partitions: int = 1,
) -> DataProduct:
    """A product as the loader would resolve it (``table`` makes it a CDC product)."""
    policy = "compact" if kind == "cdc" else "delete"
    return DataProduct(
        domain=domain,
        name=name,
        kind=kind,  # type: ignore[arg-type]
        description=f"test product {name}",
        owners=("team:test",),
        access="internal",
        tier=2,
        slo=Slo(),
        key=key,
        inputs=inputs,
        value_schema=schema,
        topic=TopicSettings(partitions, 1, 3_600_000, policy),  # type: ignore[arg-type]
        compatibility="BACKWARD",
        declared_in=Path(f"/tmp/{domain}/products.yaml"),
        source=CdcSource(domain, "public", table) if table else None,
        sql=sql,
    )


class Topics:
    """Produce and read Confluent-framed Avro on the session's Kafka and registry."""

    def __init__(self, conn: Connections) -> None:
        self.conn = conn
        auth = {"basic.auth.user.info": conn.registry_user_info} if conn.registry_user_info else {}
        self.registry = SchemaRegistryClient({"url": conn.registry_url, **auth})
        self.admin = AdminClient({"bootstrap.servers": conn.bootstrap})
        self.producer = Producer({"bootstrap.servers": conn.bootstrap, "linger.ms": 5})

    def create(self, topic: str, partitions: int = 1) -> None:
        future = self.admin.create_topics([NewTopic(topic, partitions, 1)])[topic]
        future.result()

    def serializer(self, schema: dict[str, Any]) -> Serialize:
        serialize: Serialize = AvroSerializer(self.registry, json.dumps(schema))
        return serialize

    def produce(
        self,
        topic: str,
        value_schema: dict[str, Any] | None,
        values: list[Any],
        key: Callable[[Any], bytes | None] = lambda v: None,
    ) -> None:
        """Values are dicts (Avro-serialized), raw bytes (sent as they are) or None."""
        ser = self.serializer(value_schema) if value_schema else None
        ctx = SerializationContext(topic, MessageField.VALUE)
        for value in values:
            payload = value if isinstance(value, bytes | None) else ser(value, ctx)  # type: ignore[misc]
            self.producer.produce(topic, payload, key=key(value))
            self.producer.poll(0)
        self.producer.flush(30)

    def read(
        self, topic: str, until: Callable[[list[Any]], bool], timeout_s: float = 60.0
    ) -> list[tuple[Any, Any, dict[str, bytes]]]:
        """(key, value, headers) of every message of ``topic`` until ``until(messages)``: key and
        value decoded when Confluent-framed Avro (never on a ``.dlq`` topic), else the raw bytes
        (None for a null key or a tombstone)."""
        messages = self.consume(topic, until, timeout_s)
        assert until(messages), f"{topic}: condition not met after {timeout_s}s: {messages[-5:]}"
        return messages

    def consume(
        self, topic: str, until: Callable[[list[Any]], bool], timeout_s: float
    ) -> list[tuple[Any, Any, dict[str, bytes]]]:
        """Like :meth:`read`, without failing when ``until`` is never met."""
        decode = AvroDeserializer(self.registry)
        consumer = Consumer(
            {
                "bootstrap.servers": self.conn.bootstrap,
                "group.id": f"test-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        messages: list[Any] = []
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline and not until(messages):
                msg = consumer.poll(0.5)
                if msg is None or (
                    (err := msg.error()) and err.code() == KafkaError._PARTITION_EOF
                ):
                    continue
                assert not msg.error(), msg.error()
                key_ctx = SerializationContext(topic, MessageField.KEY)
                val_ctx = SerializationContext(topic, MessageField.VALUE)
                raw_key, raw_value = msg.key(), msg.value()
                k = decode(raw_key, key_ctx) if raw_key and raw_key[:1] == b"\0" else raw_key
                v = (
                    decode(raw_value, val_ctx)
                    if raw_value and raw_value[:1] == b"\0" and not topic.endswith(".dlq")
                    else raw_value
                )
                messages.append((k, v, dict(msg.headers() or [])))
        finally:
            consumer.close()
        return messages


def materialize(
    messages: list[tuple[Any, Any, Any]], key_fields: tuple[str, ...]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The table an upsert topic describes: latest value per key; tombstones delete."""
    table: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, value, _ in messages:
        k = tuple(key[f] for f in key_fields)
        if value is None:
            table.pop(k, None)
        else:
            table[k] = value
    return table


@pytest.fixture(scope="session")
def conn(mesh_stack: dict[str, Record]) -> Connections:
    return resolve()


@pytest.fixture(scope="session")
def flink(conn: Connections) -> FlinkJobs:
    return FlinkJobs(conn)


@pytest.fixture(scope="session")
def topics(conn: Connections) -> Topics:
    return Topics(conn)


@pytest.fixture
def domain() -> str:
    return f"ft{uuid.uuid4().hex[:8]}"


@pytest.fixture
def jobs(flink: FlinkJobs) -> Iterator[Callable[..., ProcessorJob]]:
    """Factory: ``jobs(processor, products, settings)`` -> a ProcessorJob, cancelled afterwards."""
    made: list[str] = []

    def make(
        processor: DataProduct,
        inputs: list[DataProduct],
        settings: JobSettings = FAST,
        processor_spec: dict[str, Any] | None = None,
        **kw: Any,
    ) -> ProcessorJob:
        by_id = {p.id: p for p in [*inputs, processor]}
        job = from_product(
            processor, by_id, settings, processor=kw.get("processor", processor_spec)
        )
        made.append(job.name)
        return job

    yield make
    for name in made:
        flink.cancel(name)


def dlq_of(p: DataProduct) -> str:
    """The dead-letter topic of a processor product."""
    return names.dlq_topic(names.topic(p))
