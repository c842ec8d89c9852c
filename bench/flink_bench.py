"""Flink processor benchmark: Avro projection+filter vs a raw byte copy, and end-to-end latency.

``run()`` measures, on the same Flink cluster:

- ``records_per_s``: a processor job (``mesh-avro`` in and out: Confluent framing, registry
  lookups, Avro decode → projection + filter → Avro encode) draining a preloaded topic;
- ``raw_copy_records_per_s``: a Kafka→Kafka copy of the same topic in Flink's ``raw`` format
  (bytes, no decoding) — the floor the Avro job is compared with (``ratio_vs_raw_copy``);
- ``e2e_latency_p50_ms`` / ``_p99_ms``: PostgreSQL commit → CDC connector (datamesh.cdc) →
  processor → output topic, at ~1,000 changes/s (``latency_path`` says which path was measured;
  without the CDC connector it falls back to producer → processor output).

Throughput is taken from the output records' Kafka timestamps (the middle 85%), so job start-up
is excluded for both jobs. It uses the running stack (``mesh up`` or ``MESH_*``), or starts a
throw-away embedded one and stops it afterwards. Run as a script it prints the JSON.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not in its __all__
    AdminClient,
    NewTopic,
)
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro import parse_schema, schemaless_writer

from datamesh import names
from datamesh.errors import ServiceUnavailable
from datamesh.flink import FlinkJobs, JobSettings, ProcessorJob
from datamesh.flink.connections import Connections, resolve
from datamesh.flink.ddl import literal
from datamesh.flink.job import InputTable
from datamesh.schema_client import SchemaClient

RECORDS = 1_000_000
WARMUP_RECORDS = 200_000
VARIANTS = 20_000  # distinct encoded events, cycled while preloading
PARTITIONS = 2
PARALLELISM = 2
LATENCY_RATE = 1_000  # changes per second
LATENCY_SECONDS = 15
EVENT = {
    "type": "record",
    "name": "Event",
    "namespace": "bench",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "user_id", "type": "string"},
        {"name": "amount", "type": "long"},
        {"name": "country", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ],
}
PROJECTION = "SELECT id, user_id, amount * 2 AS amount2, ts\nFROM `{src}`\nWHERE amount >= 10"
COLUMNS = (
    ("id", "BIGINT NOT NULL"),
    ("user_id", "STRING NOT NULL"),
    ("amount", "BIGINT NOT NULL"),
    ("country", "STRING NOT NULL"),
    ("note", "STRING"),
    ("ts", "TIMESTAMP(6) NOT NULL"),
)


def run(records: int = RECORDS) -> dict[str, dict[str, Any]]:
    """Measure throughput (Avro job vs raw copy) and end-to-end latency on one cluster."""
    with _stack():
        conn = resolve()
        flink = FlinkJobs(conn)
        tag = uuid.uuid4().hex[:8]
        # Warm-up: both jobs once over a smaller topic, so neither is measured with a cold JIT
        # (a long-running session cluster is warm; the Avro path has more code to compile).
        warm = f"bench.{tag}w.events"
        create_topics(conn, [warm], PARTITIONS)
        warm_passing = preload(conn, warm, WARMUP_RECORDS)
        _avro_job(flink, conn, f"{tag}w", warm, warm_passing)
        _raw_copy(flink, conn, f"{tag}w", warm, WARMUP_RECORDS)
        source = f"bench.{tag}.events"
        create_topics(conn, [source], PARTITIONS)
        passing = preload(conn, source, records)
        raw_rate = _raw_copy(flink, conn, tag, source, records)
        avro_rate = _avro_job(flink, conn, tag, source, passing)
        latency = _latency(flink, conn, tag)
    return {
        "flink": {
            "records_per_s": round(avro_rate),
            "raw_copy_records_per_s": round(raw_rate),
            "ratio_vs_raw_copy": round(avro_rate / raw_rate, 3),
            "e2e_latency_p50_ms": latency["p50"],
            "e2e_latency_p99_ms": latency["p99"],
            "latency_path": latency["path"],
            "latency_samples": latency["samples"],
            "records": records,
            "parallelism": PARALLELISM,
        }
    }


@contextmanager
def _stack() -> Iterator[None]:
    """The running stack, or a throw-away embedded one for the duration of the benchmark."""
    try:
        resolve()
        yield
        return
    except ServiceUnavailable:
        pass
    from datamesh.stack import stack
    from datamesh.stack.paths import PROJECT_ROOT

    previous = os.environ.get("MESH_HOME")
    if previous is None:
        # Under the project, not /tmp's private dirs: PostgreSQL runs as the postgres user.
        parent = PROJECT_ROOT / ".mesh" / "bench-homes"
        parent.mkdir(parents=True, exist_ok=True)
        home = Path(tempfile.mkdtemp(prefix="flink-", dir=parent))
        home.chmod(0o755)
        os.environ["MESH_HOME"] = str(home)
    try:
        stack.up(progress=lambda line: None)
        yield
    finally:
        stack.down(progress=lambda line: None)
        if previous is None:
            os.environ.pop("MESH_HOME", None)
            shutil.rmtree(home, ignore_errors=True)
            with contextlib.suppress(OSError):
                home.parent.rmdir()  # only when no other benchmark is using it


def create_topics(conn: Connections, topics: list[str], partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": conn.bootstrap})
    futures = admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    for future in futures.values():
        future.result()


def preload(conn: Connections, topic: str, records: int) -> int:
    """Write ``records`` Confluent-framed events; return how many pass the job's filter.

    VARIANTS distinct events are encoded once and cycled, so loading is bound by Kafka, not by
    Python's Avro encoder.
    """
    schema_id = SchemaClient(conn.registry_url).register(names.value_subject(topic), EVENT).id
    header = b"\0" + struct.pack(">I", schema_id)
    parsed = parse_schema(EVENT)
    now_us = int(time.time() * 1_000_000)
    encoded = []
    for i in range(VARIANTS):
        buf = io.BytesIO()
        buf.write(header)
        value = {"id": i, "user_id": f"user-{i % 5000}", "amount": i % 100, "country": "NL",
                 "note": None if i % 3 else "gift", "ts": now_us + i}  # fmt: skip
        schemaless_writer(buf, parsed, value)
        encoded.append(buf.getvalue())
    producer = Producer(
        {"bootstrap.servers": conn.bootstrap, "linger.ms": 20, "batch.size": 1 << 20}
    )
    for i in range(records):
        while True:
            try:
                producer.produce(topic, encoded[i % VARIANTS], partition=i % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)
    return sum(1 for i in range(records) if (i % VARIANTS) % 100 >= 10)


def _avro_job(flink: FlinkJobs, conn: Connections, tag: str, source: str, expected: int) -> float:
    events = InputTable(f"bench{tag}.events", source, COLUMNS, (), "append")
    job = ProcessorJob(
        product_id=f"bench{tag}.projected",
        name=f"mesh-bench{tag}-projected",
        sql=PROJECTION.format(src=events.product_id),
        sql_file="bench/flink_bench.py",
        inputs=(events,),
        output_topic=f"bench.{tag}.projected",
        key=(),
        declared_schema=None,
        declared_in="bench/flink_bench.py",
        settings=JobSettings(parallelism=PARALLELISM),
    )
    return _timed(flink, job.name, lambda: flink.deploy(job), conn, job.output_topic, expected)


def _raw_copy(flink: FlinkJobs, conn: Connections, tag: str, source: str, expected: int) -> float:
    """The same topic copied as opaque bytes (``raw`` format): no registry, no Avro."""
    target = f"bench.{tag}.rawcopy"
    create_topics(conn, [target], PARTITIONS)
    name = f"mesh-bench{tag}-rawcopy"

    def table(name: str, topic: str) -> str:
        props = ",".join(
            f"{literal('properties.' + k)}={literal(v)}" for k, v in conn.kafka.items()
        )
        return (
            f"CREATE TEMPORARY TABLE `{name}` (v BYTES) WITH ('connector'='kafka',"
            f"'topic'={literal(topic)},{props},'properties.group.id'={literal(name)},"
            "'scan.startup.mode'='earliest-offset','format'='raw')"
        )

    def submit() -> None:
        config = {"pipeline.name": name, "parallelism.default": str(PARALLELISM),
                  "execution.checkpointing.interval": "10 s"}  # fmt: skip
        with flink.gateway.session(config, name=name) as session:
            session.execute(table("src", source))
            session.execute(table("dst", target))
            session.execute("INSERT INTO dst SELECT v FROM src")

    return _timed(flink, name, submit, conn, target, expected)


def _timed(
    flink: FlinkJobs,
    name: str,
    submit: Callable[[], object],
    conn: Connections,
    topic: str,
    expected: int,
) -> float:
    """Records/s of a job draining its backlog, from its output's first to last timestamp."""
    submit()
    try:
        stamps = _output_timestamps(conn, topic, expected, timeout_s=300)
    finally:
        flink.cancel(name)
    return steady_rate(stamps)


def steady_rate(stamps: list[int]) -> float:
    """Records/s between the 10th and the 95th percentile of the output timestamps.

    The edges are cut so that neither job is charged for its start-up (subtasks that begin
    emitting at different moments, a cold JIT) nor for a straggling last batch.
    """
    ordered = sorted(stamps)
    lo, hi = int(len(ordered) * 0.10), int(len(ordered) * 0.95)
    span_s = max((ordered[hi] - ordered[lo]) / 1000, 1e-3)
    return (hi - lo) / span_s


def _output_timestamps(conn: Connections, topic: str, expected: int, timeout_s: float) -> list[int]:
    consumer = _consumer(conn, topic)
    stamps: list[int] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(stamps) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 0.5):
                if not msg.error():
                    stamps.append(msg.timestamp()[1])
    finally:
        consumer.close()
    if len(stamps) < expected:
        raise RuntimeError(f"{topic}: {len(stamps)} of {expected} records after {timeout_s}s")
    return stamps


def _consumer(conn: Connections, topic: str) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": conn.bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 50 << 20,
        }
    )
    meta = consumer.list_topics(topic, timeout=30).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    return consumer


def _latency(flink: FlinkJobs, conn: Connections, tag: str) -> dict[str, Any]:
    """PostgreSQL commit → output when the CDC connector is there, else producer → output."""
    if importlib.util.find_spec("datamesh.cdc") is not None:
        return _cdc_latency(flink, conn, tag)
    return _producer_latency(flink, conn, tag)


def _cdc_latency(flink: FlinkJobs, conn: Connections, tag: str) -> dict[str, Any]:
    """Rows committed at LATENCY_RATE/s; latency = output timestamp - the row's commit clock."""
    columns = (
        ("id", "BIGINT NOT NULL"),
        ("amount", "INT"),
        ("payload", "STRING"),
        ("written_at", "TIMESTAMP(6)"),
    )
    with _cdc_source(conn, tag) as (db, topic):
        job = _latency_job(
            tag, InputTable(f"bench{tag}.orders", topic, columns, ("id",), "changelog")
        )
        try:
            flink.deploy(job)
            sent = _paced(lambda i, n: _insert(db, i, n))
            samples = _collect(conn, job.output_topic, sent, "written_at")
        finally:
            flink.cancel(job.name)
    return _summary(samples, "postgres-commit -> cdc -> flink -> kafka")


@contextmanager
def _cdc_source(conn: Connections, tag: str) -> Iterator[tuple[Any, str]]:
    """A throw-away database with table ``orders`` followed by a running CDC connector."""
    import psycopg2
    from psycopg2.extensions import make_dsn

    from datamesh import endpoints
    from datamesh.cdc import supervisor
    from datamesh.cdc.config import ConnectorConfig, default_slot

    server = endpoints.endpoint("postgres")
    database, domain = f"bench_{tag}", f"bench{tag}"
    admin = psycopg2.connect(server)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{database}"')
    db = psycopg2.connect(make_dsn(server, dbname=database))
    db.cursor().execute(
        "CREATE TABLE public.orders (id bigint PRIMARY KEY, amount int NOT NULL, payload text,"
        " written_at timestamptz NOT NULL DEFAULT clock_timestamp())"
    )
    db.commit()
    workdir = Path(tempfile.mkdtemp(prefix="flink-bench-cdc-"))
    status_file = workdir / "status.json"
    slot = default_slot(domain, database)
    config = ConnectorConfig(
        dsn=server, database=database, tables=("public.orders",), domain=domain,
        bootstrap=conn.bootstrap, registry=conn.registry_url, slot=slot, publication=slot,
        set_replica_identity=True, heartbeat_s=1.0, status_file=status_file,
    )  # fmt: skip
    pid = supervisor.start_connector(config, workdir / "cdc.log")
    try:
        streaming = lambda: (supervisor.read_status(status_file) or {}).get("state") == "streaming"  # noqa: E731
        _await(streaming, 60, "the CDC connector to stream")
        yield db, f"{domain}.public.orders"
    finally:
        supervisor.stop_connector(pid, timeout_s=20)
        db.close()
        cur = admin.cursor()
        cur.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE database = %s AND NOT active",
            (database,),
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _insert(db: Any, first: int, count: int) -> None:
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO public.orders (id, amount, payload) VALUES (%s, %s, %s)",
            [(i, i % 100, f"order {i}") for i in range(first, first + count)],
        )
    db.commit()


def _producer_latency(flink: FlinkJobs, conn: Connections, tag: str) -> dict[str, Any]:
    """Without the CDC connector: producer send time (the ``ts`` field) → output timestamp."""
    source = f"bench.{tag}.live"
    create_topics(conn, [source], 1)
    schema_id = SchemaClient(conn.registry_url).register(names.value_subject(source), EVENT).id
    header = b"\0" + struct.pack(">I", schema_id)
    parsed = parse_schema(EVENT)
    producer = Producer({"bootstrap.servers": conn.bootstrap, "linger.ms": 0})
    job = _latency_job(tag, InputTable(f"bench{tag}.live", source, COLUMNS, (), "append"))

    def send(first: int, count: int) -> None:
        for i in range(first, first + count):
            buf = io.BytesIO()
            buf.write(header)
            value = {"id": i, "user_id": "u", "amount": 50, "country": "NL", "note": None,
                     "ts": int(time.time() * 1_000_000)}  # fmt: skip
            schemaless_writer(buf, parsed, value)
            producer.produce(source, buf.getvalue())
        producer.poll(0)

    flink.deploy(job)
    try:
        sent = _paced(send)
        producer.flush(30)
        samples = _collect(conn, job.output_topic, sent, "ts")
    finally:
        flink.cancel(job.name)
    return _summary(samples, "producer -> flink -> kafka (CDC connector not available)")


def _latency_job(tag: str, source: InputTable) -> ProcessorJob:
    time_column = source.columns[-1][0]
    return ProcessorJob(
        product_id=f"bench{tag}.latency",
        name=f"mesh-bench{tag}-latency",
        sql=f"SELECT id, {time_column} FROM `{source.product_id}` WHERE id >= 0",
        sql_file="bench/flink_bench.py",
        inputs=(source,),
        output_topic=f"bench.{tag}.latency",
        key=("id",) if source.mode == "changelog" else (),
        declared_schema=None,
        declared_in="bench/flink_bench.py",
        settings=JobSettings(parallelism=1),
    )


def _paced(write: Callable[[int, int], None]) -> int:
    """Call ``write(first_id, count)`` in batches of 10 at LATENCY_RATE rows/s; rows sent."""
    batch = 10
    interval = batch / LATENCY_RATE
    total = LATENCY_RATE * LATENCY_SECONDS
    start = time.monotonic()
    for n, first in enumerate(range(0, total, batch)):
        delay = start + n * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        write(first, batch)
    return total


def _collect(conn: Connections, topic: str, expected: int, time_field: str) -> list[float]:
    """Latency (ms) of each output record: its Kafka timestamp - its ``time_field``."""
    registry = SchemaRegistryClient({"url": conn.registry_url})
    decode = AvroDeserializer(registry)
    ctx = SerializationContext(topic, MessageField.VALUE)
    consumer = _consumer(conn, topic)
    latencies: dict[int, float] = {}
    deadline = time.monotonic() + 120
    try:
        while len(latencies) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(5_000, 0.5):
                if msg.error() or msg.value() is None:
                    continue
                value = decode(msg.value(), ctx)
                written = value[time_field]
                written_ms = (
                    written.timestamp() * 1000 if hasattr(written, "timestamp") else written / 1000
                )
                latencies.setdefault(value["id"], msg.timestamp()[1] - written_ms)
    finally:
        consumer.close()
    warm = sorted(latencies)[LATENCY_RATE * 2 :]  # skip the first two seconds (warm-up)
    return [latencies[i] for i in warm]


def _summary(samples: list[float], path: str) -> dict[str, Any]:
    return {
        "p50": round(percentile(samples, 0.50), 1),
        "p99": round(percentile(samples, 0.99), 1),
        "samples": len(samples),
        "path": path,
    }


def _await(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
