"""CDC connector throughput and latency, against the running stack (``mesh up`` or MESH_* vars).

``run()`` measures, on one throw-away source database:

- ``changes_per_s``: the connector draining a backlog of 200k inserts + 200k updates from its
  slot into Kafka, end to end (first to last message, by the broker's LogAppendTime);
- ``raw_decoding_changes_per_s``: the same backlog read from a second slot with the same
  plugin and publication, only decoded (``pgoutput.decode``) and counted, in Python;
- ``raw_producer_msgs_per_s``: confluent-kafka producing as many messages of the same size
  with the same producer settings to the same broker;
- ``commit_to_kafka_p50_ms``/``p99``: at ~1,000 changes/s, broker append time minus the
  source commit time (``source.ts_ms``) of each event.

Run ``python bench/cdc_bench.py``: prints the numbers as JSON. Everything it creates (database,
slots, topics, subjects' data) is removed at the end.
"""

from __future__ import annotations

import dataclasses
import json
import select
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in its __all__
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from psycopg2.extensions import make_dsn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from datamesh.cdc import pgoutput, supervisor  # noqa: E402
from datamesh.cdc.catalog import SESSION_OPTIONS  # noqa: E402
from datamesh.cdc.config import ConnectorConfig, default_slot  # noqa: E402
from datamesh.cdc.delivery import PRODUCER_DEFAULTS  # noqa: E402
from datamesh.endpoints import endpoint  # noqa: E402

ROWS = 200_000
DOMAIN = "bench"
DDL = (
    "id int PRIMARY KEY, title text, year int, price numeric(10,2), "
    "updated timestamptz, status text"
)
RUNS = 3
EXTRA_CDC_SLOTS = tuple(f"bench_cdc_{i}" for i in range(2, RUNS + 1))  # run 1: the default slot
RAW_SLOTS = tuple(f"bench_raw_{i}" for i in range(1, RUNS + 1))
LATENCY_SECONDS = 10.0
LATENCY_RATE = 1_000  # changes/s: 10-row transactions every 10 ms


class Bench:
    """The stack's endpoints and one source database for the duration of a run."""

    def __init__(self) -> None:
        self.pg = endpoint("postgres")
        self.kafka = endpoint("kafka")
        self.registry = endpoint("schema_registry")
        self.database = f"cdcbench_{uuid.uuid4().hex[:8]}"
        self.dsn = make_dsn(self.pg, dbname=self.database)
        self.admin = AdminClient({"bootstrap.servers": self.kafka})
        self.topics: list[str] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="cdc-bench-"))

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall() if cur.description else []
        conn.close()
        return rows

    def table(self, prefix: str) -> str:
        """A new table (unique name, so its topic is new too) with REPLICA IDENTITY FULL."""
        name = f"{prefix}_{uuid.uuid4().hex[:6]}"
        self.sql(f"CREATE TABLE public.{name} ({DDL})")
        self.sql(f"ALTER TABLE public.{name} REPLICA IDENTITY FULL")
        return f"public.{name}"

    def log_append_topic(self, topic: str) -> None:
        """Pre-create the topic with LogAppendTime: each message then carries its append time."""
        cfg = {"cleanup.policy": "compact", "message.timestamp.type": "LogAppendTime"}
        self.admin.create_topics([NewTopic(topic, 1, 1, config=cfg)])[topic].result()
        self.topics.append(topic)

    def config(self, tables: tuple[str, ...]) -> ConnectorConfig:
        slot = default_slot(DOMAIN, self.database)
        return ConnectorConfig(
            dsn=self.pg,
            database=self.database,
            tables=tables,
            domain=DOMAIN,
            bootstrap=self.kafka,
            registry=self.registry,
            slot=slot,
            publication=slot,
            snapshot="never",
            heartbeat_s=1.0,
            status_file=self.workdir / "status.json",
        )


@contextmanager
def bench_database() -> Iterator[Bench]:
    bench = Bench()
    admin = psycopg2.connect(bench.pg)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{bench.database}"')
    try:
        yield bench
    finally:
        cur = admin.cursor()
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (bench.database,),
        )
        cur.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE database = %s",
            (bench.database,),
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{bench.database}" WITH (FORCE)')
        admin.close()
        if bench.topics:
            for future in bench.admin.delete_topics(bench.topics).values():
                future.result()
        shutil.rmtree(bench.workdir, ignore_errors=True)


def start_connector(bench: Bench, config: ConnectorConfig) -> int:
    """Start a connector and wait until it streams."""
    (bench.workdir / "status.json").unlink(missing_ok=True)
    pid = supervisor.start_connector(config, bench.workdir / "connector.log")
    wait_for(
        lambda: (
            (supervisor.read_status(bench.workdir / "status.json") or {}).get("state")
            == "streaming"
        ),
        60,
        "connector streaming",
        bench,
    )
    return pid


def wait_for(predicate: Any, timeout_s: float, what: str, bench: Bench) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            log = (bench.workdir / "connector.log").read_text()[-2000:]
            raise TimeoutError(f"{what} not reached in {timeout_s}s\n{log}")
        time.sleep(0.05)


def end_offset(bench: Bench, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bench.kafka, "group.id": "bench"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


def message_times(bench: Bench, topic: str, offsets: list[int]) -> list[float]:
    """LogAppendTime (seconds) of the messages at ``offsets`` of partition 0."""
    consumer = Consumer({"bootstrap.servers": bench.kafka, "group.id": "bench"})
    times = []
    for offset in offsets:
        consumer.assign([TopicPartition(topic, 0, offset)])
        msg = consumer.poll(10)
        assert msg is not None and msg.error() is None
        times.append(msg.timestamp()[1] / 1000)
    consumer.close()
    return times


def _backlog(bench: Bench, table: str) -> None:
    """200k inserts then 200k updates, committed in 20k-row transactions."""
    step = 20_000
    for start in range(0, ROWS, step):
        bench.sql(
            f"INSERT INTO {table} SELECT g, 'title ' || g, 1900 + g %% 120, g * 1.25, "
            "now(), 'draft' FROM generate_series(%s, %s) g",
            (start + 1, start + step),
        )
    for start in range(0, ROWS, step):
        bench.sql(
            f"UPDATE {table} SET status = 'released', year = year + 1 WHERE id BETWEEN %s AND %s",
            (start + 1, start + step),
        )


def throughput(bench: Bench) -> tuple[float, float, int]:
    """Best of :data:`RUNS` runs each, alternating, of the connector and of raw decoding
    draining the same backlog, each from its own slot (this machine is shared: the best run
    keeps other load out of the ratio).

    Returns (connector changes/s, raw decoding changes/s, average message bytes).
    """
    table = bench.table("throughput")
    topic = f"{DOMAIN}.{table}"
    bench.log_append_topic(topic)
    first = bench.config((table,))
    configs = [first] + [dataclasses.replace(first, slot=slot) for slot in EXTRA_CDC_SLOTS]
    for config in configs:  # create slots (and the publication) before the backlog
        supervisor.stop_connector(start_connector(bench, config))
    for raw in RAW_SLOTS:
        bench.sql("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (raw,))
    _backlog(bench, table)
    cdc, raw_rates = [], []
    for run, (config, raw) in enumerate(zip(configs, RAW_SLOTS, strict=True)):
        cdc.append(_drain(bench, config, topic, run * 2 * ROWS))
        raw_rates.append(raw_decoding(bench, raw, config.publication))
    return max(cdc), max(raw_rates), _average_size(bench, topic)


def _drain(bench: Bench, config: ConnectorConfig, topic: str, offset: int) -> float:
    """Changes/s of one connector run over the backlog (first to last append time)."""
    pid = supervisor.start_connector(config, bench.workdir / "connector.log")
    try:
        wait_for(
            lambda: end_offset(bench, topic) >= offset + 2 * ROWS, 300, "changes in Kafka", bench
        )
    finally:
        supervisor.stop_connector(pid)
    first, last = message_times(bench, topic, [offset, offset + 2 * ROWS - 1])
    return (2 * ROWS - 1) / max(last - first, 1e-6)


def _average_size(bench: Bench, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bench.kafka, "group.id": "bench"})
    consumer.assign([TopicPartition(topic, 0, ROWS - 500)])
    msgs = consumer.consume(1000, timeout=10)
    consumer.close()
    return int(statistics.mean(_size(m) for m in msgs))


def _size(msg: Message) -> int:
    key, value = msg.key(), msg.value()
    assert key is not None and value is not None, "a change event has a key and a value"
    return len(key) + len(value)


def raw_decoding(bench: Bench, slot: str, publication: str, changes: int = 2 * ROWS) -> float:
    """Changes/s of only decoding (and counting) ``changes`` row changes from ``slot``, same
    plugin and publication, with the same non-blocking read and wait as the connector."""
    conn = psycopg2.connect(
        make_dsn(bench.dsn, options=SESSION_OPTIONS),
        connection_factory=psycopg2.extras.LogicalReplicationConnection,
    )
    cur = conn.cursor()
    options = {"proto_version": "1", "publication_names": publication}
    cur.start_replication(slot_name=slot, decode=False, options=options)
    seen, started = 0, 0.0
    row_kinds = (pgoutput.Insert, pgoutput.Update, pgoutput.Delete)
    deadline = time.monotonic() + 300
    while seen < changes and time.monotonic() < deadline:
        msg = cur.read_message()
        if msg is None:
            select.select([conn], [], [], 0.1)
            continue
        if isinstance(pgoutput.decode(msg.payload), row_kinds):
            started = started or time.perf_counter()
            seen += 1
    elapsed = time.perf_counter() - started
    conn.close()
    if seen < changes:
        raise RuntimeError(f"raw decoding read {seen:,} of {changes:,} changes in 300s")
    return (seen - 1) / elapsed


def raw_producer(bench: Bench, size: int) -> float:
    """Messages/s of confluent-kafka alone, same settings, same sizes, same broker."""
    topic = f"{DOMAIN}.raw_{uuid.uuid4().hex[:6]}"
    bench.admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    bench.topics.append(topic)
    producer = Producer({"bootstrap.servers": bench.kafka, **PRODUCER_DEFAULTS})
    value = b"x" * (size - 8)
    started = time.perf_counter()
    for i in range(2 * ROWS):  # the plain produce() loop; no per-message callback
        while True:
            try:
                producer.produce(topic, value, i.to_bytes(8, "big"))
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1024 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    return 2 * ROWS / (time.perf_counter() - started)


def commit_to_kafka_latency(bench: Bench) -> tuple[float, float]:
    """p50/p99 (ms) of broker append time minus source commit time at ~1,000 changes/s."""
    table = bench.table("latency")
    topic = f"{DOMAIN}.{table}"
    bench.log_append_topic(topic)
    for slot in (default_slot(DOMAIN, bench.database), *EXTRA_CDC_SLOTS, *RAW_SLOTS):
        bench.sql("SELECT pg_drop_replication_slot(%s)", (slot,))
    bench.sql(f"DROP PUBLICATION {default_slot(DOMAIN, bench.database)}")
    bench.sql("DELETE FROM mesh_cdc.connectors")
    pid = start_connector(bench, bench.config((table,)))
    conn = psycopg2.connect(bench.dsn)
    cur = conn.cursor()
    batch = LATENCY_RATE // 100
    ticks = int(LATENCY_SECONDS * 100)
    try:
        start = time.perf_counter()
        for tick in range(ticks):
            base = tick * batch
            cur.execute(
                f"INSERT INTO {table} (id, title) SELECT g, 'x' FROM generate_series(%s, %s) g",
                (base + 1, base + batch),
            )
            conn.commit()
            pause = start + (tick + 1) / 100 - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        wait_for(lambda: end_offset(bench, topic) >= ticks * batch, 60, "latency events", bench)
    finally:
        conn.close()
        supervisor.stop_connector(pid)
    delays = sorted(_latencies(bench, topic, ticks * batch))
    return delays[len(delays) // 2], delays[int(len(delays) * 0.99)]


def _latencies(bench: Bench, topic: str, count: int) -> list[float]:
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": bench.registry}))
    consumer = Consumer({"bootstrap.servers": bench.kafka, "group.id": "bench"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    ctx = SerializationContext(topic, MessageField.VALUE)
    out: list[float] = []
    while len(out) < count:
        for msg in consumer.consume(1000, timeout=5):
            event = deserializer(msg.value(), ctx)
            out.append(msg.timestamp()[1] - event["source"]["ts_ms"])
    consumer.close()
    return out


def run() -> dict[str, dict[str, float]]:
    """Measure the connector; see the module docstring for each number."""
    with bench_database() as bench:
        changes, decoding, size = throughput(bench)
        producing = raw_producer(bench, size)
        p50, p99 = commit_to_kafka_latency(bench)
    return {
        "cdc": {
            "changes_per_s": round(changes),
            "raw_decoding_changes_per_s": round(decoding),
            "ratio_vs_raw_decoding": round(changes / decoding, 3),
            "raw_producer_msgs_per_s": round(producing),
            "ratio_vs_raw_producer": round(changes / producing, 3),
            "commit_to_kafka_p50_ms": round(p50, 1),
            "commit_to_kafka_p99_ms": round(p99, 1),
            "message_bytes": size,
        }
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
