"""Iceberg sink throughput against the running stack (``mesh up`` or MESH_* vars).

``run()`` builds a movies-like table of 1,000,000 rows (``id`` bigint key, title, genre, status,
``budget`` numeric(12,2), ``updated_at`` timestamp), pre-loaded in one snapshot through the
sink's own write path (``iceberg_table.commit_batch``, a single data file as a first sink batch
would write). It then produces ONE batch of 100,000 changes to a Kafka topic exactly as the CDC
connector writes them — Debezium envelopes (:func:`datamesh.cdc.schemas.envelope_schema`) in
Confluent-framed Avro, schemas registered in the registry, ``Key`` records as keys, a tombstone
after each delete — 60% creates, 30% updates, 10% deletes of existing keys, shuffled, and times:

- ``upsert_batch_s`` / ``upsert_changes_per_s``: ``IcebergSink.run(job)`` end to end (read,
  decode, fold, Arrow conversion, copy-on-write rewrite of the touched file, one snapshot);
  checked: 1,050,000 rows after, no duplicate key, no deleted key left;
- ``append_rows_per_s``: the same topic into an empty append-mode (change-log) table;
- ``upsert_cpu_s`` / ``append_cpu_s``: this process's CPU seconds during each run (the machine
  is shared: wall time well above CPU time means the run waited for a core);
- ``parquet_write_rows_per_s``: the baseline, ``pyarrow.parquet.write_table`` of the batch's
  90,000 upserted row images (zstd, the codec pyiceberg writes) to a local file;
- ``parquet_rewrite_1m_s``: reading and rewriting the 1M-row data file with pyarrow alone, the
  floor cost of copy-on-write.

The ``postgres_sink_*`` figures (a Flink JDBC upsert job fed by a CDC connector: backlog
rows/s against a direct ``execute_values`` upsert, commit→serving-row latency at 1,000
changes/s) come from :mod:`bench.postgres_sink_bench`, measured after the Iceberg sink.

Its floors are in ``bench/figures.py`` (``FLOORS``): ``make bench`` prints a missed one, and
the report marks it.
Run ``python bench/sink_bench.py``: prints the numbers as JSON. Everything it creates (tables,
topic, its registry subjects) is removed at the end.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import struct
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import postgres_sink_bench  # noqa: E402
from datamesh import names  # noqa: E402
from datamesh.cdc.delivery import PRODUCER_DEFAULTS  # noqa: E402
from datamesh.cdc.pgoutput import Column  # noqa: E402
from datamesh.cdc.schemas import TableShape, envelope_schema, key_schema  # noqa: E402
from datamesh.endpoints import endpoint  # noqa: E402
from datamesh.kafka_admin import TopicAdmin  # noqa: E402
from datamesh.kafka_config import client_config  # noqa: E402
from datamesh.schema_client import SchemaClient  # noqa: E402
from datamesh.sinks import iceberg_table, offsets  # noqa: E402
from datamesh.sinks.iceberg_sink import IcebergSink, SinkJob, SinkReport  # noqa: E402
from datamesh.specs.product import TopicSettings  # noqa: E402
from datamesh.topic_apply import ensure_topic  # noqa: E402
from resources.iceberg import IcebergResource  # noqa: E402

ROWS = 1_000_000
CREATES, UPDATES, DELETES = 60_000, 30_000, 10_000
CHANGES = CREATES + UPDATES + DELETES
GENRES = ("drama", "comedy", "documentary", "thriller", "animation")
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
COLUMNS = (
    Column(True, "id", 20, -1),  # bigint
    Column(False, "title", 25, -1),  # text
    Column(False, "genre", 25, -1),
    Column(False, "status", 25, -1),
    Column(False, "budget", 1700, ((12 << 16) | 2) + 4),  # numeric(12,2)
    Column(False, "updated_at", 1114, -1),  # timestamp
)
_FRAME = struct.Struct(">bI")


def row(key: int, version: int) -> dict[str, Any]:
    """Row ``key`` as written by version ``version`` (0: the pre-loaded image)."""
    return {
        "id": key,
        "title": f"movie {key}" if version == 0 else f"movie {key} (cut {version})",
        "genre": GENRES[key % len(GENRES)],
        "status": "released" if version == 0 else "remastered",
        "budget": Decimal((key % 100_000) * 1_000 + 50 + version).scaleb(-2),
        "updated_at": BASE_TIME + timedelta(seconds=key + version),
    }


def preload_columns(schema: pa.Schema, rows: int = ROWS) -> pa.Table:
    """Rows 1..rows at version 0, column by column (same values as :func:`row`)."""
    keys = range(1, rows + 1)
    columns = {
        "id": list(keys),
        "title": [f"movie {k}" for k in keys],
        "genre": [GENRES[k % len(GENRES)] for k in keys],
        "status": ["released"] * rows,
        "budget": [Decimal((k % 100_000) * 1_000 + 50).scaleb(-2) for k in keys],
        "updated_at": [BASE_TIME.replace(tzinfo=None) + timedelta(seconds=k) for k in keys],
    }
    return pa.Table.from_pydict(columns, schema=schema)


class Bench:
    """The stack's endpoints, one topic with registered schemas, and two sink tables."""

    def __init__(self) -> None:
        self.kafka = endpoint("kafka")
        self.registry = SchemaClient(endpoint("schema_registry"))
        self.catalog = IcebergResource().catalog()
        self.domain = f"sinkbench{uuid.uuid4().hex[:6]}"
        self.topic = f"{self.domain}.public.movies"
        self.sink = IcebergSink(self.catalog, client_config(self.kafka), self.registry)
        self.workdir = Path(tempfile.mkdtemp(prefix="sink-bench-"))
        shape = TableShape("public", "movies", COLUMNS, ("id",))
        self.key_schema = key_schema(self.topic, shape)
        self.value_schema = envelope_schema(self.topic, shape)
        self.key_id = self.value_id = 0

    def register(self) -> None:
        """Register the ``Key`` and ``Envelope`` schemas as the connector does."""
        self.key_id = self.registry.register(names.key_subject(self.topic), self.key_schema).id
        subject = names.value_subject(self.topic)
        self.value_id = self.registry.register(subject, self.value_schema).id

    def job(self, mode: str) -> SinkJob:
        """The sink job of a movies table in ``mode`` (upsert or append)."""
        return SinkJob(
            product_id=f"{self.domain}.movies_{mode}",
            table=f"{self.domain}.movies_{mode}",
            topic=self.topic,
            key=("id",),
            mode=mode,
            envelope=True,
            dlq_topic=f"{self.domain}.movies_{mode}.dlq",
        )

    def close(self) -> None:
        """Drop the tables, the topic and its subjects."""
        for mode in ("upsert", "append"):
            ident = self.job(mode).table
            if self.catalog.table_exists(ident):
                self.catalog.purge_table(ident)
        admin = AdminClient(client_config(self.kafka))
        for future in admin.delete_topics([self.topic]).values():
            with contextlib.suppress(KafkaException):  # never created: failed before produce
                future.result()
        for subject in (names.key_subject(self.topic), names.value_subject(self.topic)):
            with contextlib.suppress(SchemaRegistryError):
                self.registry.client.delete_subject(subject)
        for path in sorted(self.workdir.glob("*")):
            path.unlink()
        self.workdir.rmdir()


def preload(bench: Bench, rows: int = ROWS) -> Table:
    """Create the upsert table from the registered schema and commit ``rows`` rows in one
    snapshot that records no offsets yet (the sink then reads the topic from its beginning)."""
    job = bench.job("upsert")
    table, _ = bench.sink.ensure_table(job)
    tx = table.transaction()
    data = preload_columns(schema_to_pyarrow(table.schema(), include_field_ids=False), rows)
    props = offsets.summary_property(job.topic, {})
    iceberg_table.commit_batch(table, tx, job.key, None, False, data, props)
    return tx.commit_transaction()


def changes(
    seed: int = 7, rows: int = ROWS, mix: tuple[int, int, int] = (CREATES, UPDATES, DELETES)
) -> list[tuple[str, int]]:
    """The batch: (op, key) for ``mix`` = (creates of new keys, updates and deletes of distinct
    keys among the ``rows`` pre-loaded ones)."""
    creates, updates, deletes = mix
    rng = random.Random(seed)
    touched = rng.sample(range(1, rows + 1), updates + deletes)
    batch = [("c", rows + 1 + i) for i in range(creates)]
    batch += [("u", k) for k in touched[:updates]] + [("d", k) for k in touched[updates:]]
    rng.shuffle(batch)
    return batch


def envelope(op: str, key: int, lsn: int) -> dict[str, Any]:
    """The Debezium envelope of one change (``before`` is the full old row: REPLICA IDENTITY
    FULL)."""
    ts_ms = int(time.time() * 1000)
    source = {
        "version": "bench",
        "connector": "postgresql",
        "name": "bench",
        "ts_ms": ts_ms,
        "snapshot": "false",
        "db": "studio",
        "schema": "public",
        "table": "movies",
        "txId": 1_000 + lsn // 100,
        "lsn": lsn,
    }
    before = row(key, 0) if op in ("u", "d") else None
    after = row(key, 1) if op in ("c", "u") else None
    return {"before": before, "after": after, "source": source, "op": op, "ts_ms": ts_ms}


def produce(bench: Bench, batch: list[tuple[str, int]]) -> int:
    """Produce the batch as the connector does; returns the number of messages (tombstones
    included)."""
    settings = TopicSettings(1, 1, 86_400_000, "delete")
    ensure_topic(TopicAdmin(client_config(bench.kafka)), bench.topic, settings, "bench")
    key_parsed = fastavro.parse_schema(bench.key_schema)
    value_parsed = fastavro.parse_schema(bench.value_schema)
    producer = Producer({**client_config(bench.kafka), **PRODUCER_DEFAULTS})
    sent = 0
    for lsn, (op, key) in enumerate(batch, start=1):
        raw_key = _framed(bench.key_id, key_parsed, {"id": key})
        value = _framed(bench.value_id, value_parsed, envelope(op, key, lsn))
        _send(producer, bench.topic, raw_key, value)
        sent += 1
        if op == "d":
            _send(producer, bench.topic, raw_key, None)
            sent += 1
    if producer.flush(120):
        raise RuntimeError(f"changes to {bench.topic} not acknowledged within 120s")
    return sent


def _framed(schema_id: int, parsed: Any, datum: dict[str, Any]) -> bytes:
    """Confluent framing: magic 0, 4-byte big-endian schema id, Avro body."""
    out = io.BytesIO()
    out.write(_FRAME.pack(0, schema_id))
    fastavro.schemaless_writer(out, parsed, datum)
    return out.getvalue()


def _send(producer: Producer, topic: str, key: bytes, value: bytes | None) -> None:
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            producer.poll(0.05)


def timed_run(bench: Bench, job: SinkJob) -> tuple[SinkReport, float, float]:
    """One sink run, its wall-clock seconds and this process's CPU seconds (all threads: on
    this shared machine the CPU time says how much of the wall time was waiting for a core)."""
    start, cpu = time.perf_counter(), time.process_time()
    report = bench.sink.run(job, progress=lambda _: None)
    return report, time.perf_counter() - start, time.process_time() - cpu


def verify_upsert(
    bench: Bench, job: SinkJob, report: SinkReport, batch: list[Any], rows: int = ROWS
) -> None:
    """Row count from the snapshot and from a scan of ``id``; no duplicates; deletes gone."""
    creates, updates, deletes = (sum(1 for op, _ in batch if op == o) for o in "cud")
    expected = rows + creates - deletes
    ids = bench.catalog.load_table(job.table).scan(selected_fields=("id",)).to_arrow()["id"]
    scanned, distinct = len(ids), len(ids.unique())
    deleted = {k for op, k in batch if op == "d"}
    left = len(deleted & set(ids.to_pylist()))
    if not report.row_count == scanned == distinct == expected or left:
        raise AssertionError(
            f"upsert of {len(batch):,} changes: expected {expected:,} rows, snapshot says "
            f"{report.row_count:,}, scan {scanned:,} ({distinct:,} distinct), {left} deleted "
            "keys still present"
        )
    if (report.upserted, report.deleted) != (creates + updates, deletes):
        raise AssertionError(f"upserted/deleted {report.upserted}/{report.deleted}")


def parquet_write_s(bench: Bench, schema: pa.Schema, batch: list[tuple[str, int]]) -> float:
    """Seconds of ``pq.write_table`` of the batch's upserted row images (zstd)."""
    images = [row(k, 1) for op, k in batch if op != "d"]
    table = pa.Table.from_pylist(images, schema=schema)
    start = time.perf_counter()
    pq.write_table(table, bench.workdir / "batch.parquet", compression="zstd")
    return time.perf_counter() - start


def parquet_rewrite_s(bench: Bench, table: Table) -> float:
    """Seconds to read the pre-loaded 1M-row data file and write it again (pyarrow only)."""
    (task,) = list(table.scan().plan_files())
    path = task.file.file_path.removeprefix("file://")
    start = time.perf_counter()
    pq.write_table(pq.read_table(path), bench.workdir / "rewrite.parquet", compression="zstd")
    return time.perf_counter() - start


def raw_read_s(bench: Bench, messages: int) -> float:
    """Seconds for a bare confluent-kafka consumer to read the batch's messages (the floor of
    any sink reading this topic on this broker)."""
    consumer = Consumer(
        {
            **client_config(bench.kafka),
            "group.id": f"sink-bench-raw-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(bench.topic, 0, 0)])
    read, start = 0, time.perf_counter()
    while read < messages:
        read += len(consumer.consume(20_000, 1.0))
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed


def postgres_sink_figures() -> dict[str, float]:
    """The ``postgres_sink`` (Flink JDBC upsert) figures: backlog rows/s into the serving table
    vs a direct ``execute_values`` upsert, and commit→sink-row latency p50/p99 at 1,000
    changes/s; see :mod:`bench.postgres_sink_bench`."""
    return postgres_sink_bench.run()


def run() -> dict[str, dict[str, float]]:
    """Measure the Iceberg sink; see the module docstring for each number."""
    bench = Bench()
    try:
        bench.register()
        table = preload(bench)
        rewrite = parquet_rewrite_s(bench, table)
        batch = changes()
        messages = produce(bench, batch)
        upsert_job = bench.job("upsert")
        report, upsert_s, upsert_cpu = timed_run(bench, upsert_job)
        verify_upsert(bench, upsert_job, report, batch)
        appended, append_s, append_cpu = timed_run(bench, bench.job("append"))
        if appended.appended != CHANGES:
            raise AssertionError(f"append: {appended.appended:,} rows, expected {CHANGES:,}")
        schema = schema_to_pyarrow(table.schema(), include_field_ids=False)
        write_s = parquet_write_s(bench, schema, batch)
        raw_s = raw_read_s(bench, messages)
    finally:
        bench.close()
    upsert_rate = CHANGES / upsert_s
    append_rate = CHANGES / append_s
    write_rate = (CREATES + UPDATES) / write_s
    figures = {
        "upsert_changes_per_s": round(upsert_rate),
        "upsert_batch_s": round(upsert_s, 2),
        "upsert_cpu_s": round(upsert_cpu, 2),
        "append_rows_per_s": round(append_rate),
        "append_batch_s": round(append_s, 2),
        "append_cpu_s": round(append_cpu, 2),
        "parquet_write_rows_per_s": round(write_rate),
        "ratio_vs_parquet_write": round(upsert_rate / write_rate, 3),
        "append_ratio_vs_parquet_write": round(append_rate / write_rate, 3),
        "parquet_rewrite_1m_s": round(rewrite, 2),
        "raw_kafka_read_messages_per_s": round(messages / raw_s),
        "append_ratio_vs_raw_kafka_read": round(raw_s / append_s, 3),
        "upsert_ratio_vs_raw_kafka_read": round(raw_s / upsert_s, 3),
        "batch_messages": messages,
    }
    return {"sink": {**figures, **postgres_sink_figures()}}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
