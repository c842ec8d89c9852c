"""``postgres_sink`` throughput and commit→row latency, against the running stack.

``run()`` sets up, in throw-away databases: a source table ``public.movies`` (``id`` bigint key,
title, status, ``budget`` numeric(12,2), ``written_at timestamptz DEFAULT clock_timestamp()``)
followed by a CDC connector started the way the integration tests start one, and a
``postgres_sink`` product on it (Flink JDBC upsert, parallelism 1) deployed through
``FlinkResource().deploy_sink``. It measures:

- ``postgres_sink_rows_per_s``: :data:`ROWS` inserts already in Kafka, from the deploy call until
  the serving table holds them all (``SELECT count(*)`` polled); ``postgres_sink_deploy_s`` is
  the deploy call alone (validation, table creation, submission, RUNNING),
  ``postgres_sink_first_row_s`` until the first rows showed and ``postgres_sink_drain_rows_per_s``
  the rate from then on (``postgres_sink_drain_ratio_vs_direct_insert``: start-up excluded);
- ``postgres_direct_upsert_rows_per_s``: the baseline, the same rows written from Python with
  ``psycopg2.extras.execute_values`` as ``INSERT ... ON CONFLICT DO UPDATE`` pages of 500 (the
  sink's flush size), one transaction each, into a copy of the serving table
  (``postgres_sink_ratio_vs_direct_insert``);
- ``postgres_sink_latency_p50_ms`` / ``_p99_ms``: with the job running, single-row transactions
  (80% inserts of new keys, 20% updates of backlog keys, each a distinct key; 10 sent in one
  round trip every 10 ms) at :data:`LATENCY_RATE`/s for :data:`LATENCY_SECONDS`
  (``postgres_sink_latency_rate_per_s``: the rate achieved); an ``AFTER INSERT OR UPDATE``
  trigger on the serving table logs ``clock_timestamp()`` per row, so latency is the row's
  write in the serving table minus its ``written_at`` (one server clock). The write is inside
  the sink's transaction, so it can precede visibility by up to ``postgres_sink_tx_write_p50_ms``.
  The path is split with the Kafka timestamps of the same changes: ``..._commit_to_kafka_*``
  (connector) and ``..._kafka_to_row_*`` (Flink + JDBC); ``postgres_sink_tx_rows_p50`` is the
  rows per sink transaction.

Run ``python bench/postgres_sink_bench.py``: prints the numbers as JSON. Everything it creates
(job, connector, databases, slots, topics, subjects, consumer group) is removed at the end, even
on failure; every wait has a deadline and fails naming what it waited for.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from psycopg2.extensions import make_dsn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from datamesh import names  # noqa: E402
from datamesh.cdc import supervisor  # noqa: E402
from datamesh.cdc.config import ConnectorConfig, default_slot  # noqa: E402
from datamesh.endpoints import endpoint  # noqa: E402
from datamesh.flink import FlinkJobs  # noqa: E402
from datamesh.kafka_config import client_config  # noqa: E402
from datamesh.schema_client import SchemaClient  # noqa: E402
from datamesh.specs.product import (  # noqa: E402
    CdcSource,
    DataProduct,
    SinkSettings,
    Slo,
    TopicSettings,
)
from resources.flink import FlinkResource  # noqa: E402

ROWS = 100_000
LATENCY_RATE = 1_000  # changes/s: 10 single-row transactions every 10 ms
LATENCY_SECONDS = 15
UPDATES_PER_TICK = 2  # of the 10 changes of a tick; the rest insert new keys
FLUSH_ROWS = 500  # the sink's sink.buffer-flush.max-rows (datamesh.flink.ddl.jdbc_sink_ddl)
KAFKA_TIMEOUT_S = 300.0
DRAIN_TIMEOUT_S = 600.0
ARRIVAL_TIMEOUT_S = 120.0
SOURCE_DDL = (
    "CREATE TABLE public.movies (id bigint PRIMARY KEY, title text NOT NULL, status text,"
    " budget numeric(12,2), written_at timestamptz NOT NULL DEFAULT clock_timestamp())"
)
ROW_SCHEMA: dict[str, Any] = {  # declared fallback; the connector's registered schema wins
    "type": "record",
    "name": "Movie",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "title", "type": "string"},
        {"name": "status", "type": ["null", "string"], "default": None},
        {
            "name": "budget",
            "type": [
                "null",
                {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2},
            ],
            "default": None,
        },
        {"name": "written_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ],
}
# Per serving-table row write: (id, written_at) and the server clock, in the flush's transaction.
ARRIVAL_LOG = """
CREATE TABLE public.arrivals (id bigint, written_at timestamp,
  arrived_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  tx bigint NOT NULL DEFAULT txid_current());
CREATE FUNCTION public.log_arrival() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.arrivals (id, written_at) VALUES (NEW.id, NEW.written_at); RETURN NULL;
END $$;
CREATE TRIGGER log_arrival AFTER INSERT OR UPDATE ON public.movies
  FOR EACH ROW EXECUTE FUNCTION public.log_arrival();
"""


@dataclass
class Bench:
    """Names of everything one run creates, and the PIDs/jobs to stop."""

    domain: str = field(default_factory=lambda: f"pgsink{uuid.uuid4().hex[:6]}")
    server: str = field(default_factory=lambda: make_dsn(endpoint("postgres"), connect_timeout=10))
    kafka: str = field(default_factory=lambda: endpoint("kafka"))
    registry: str = field(default_factory=lambda: endpoint("schema_registry"))
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgsink-bench-")))

    @property
    def source_db(self) -> str:
        return f"{self.domain}_src"

    @property
    def sink_db(self) -> str:
        return f"{self.domain}_serving"

    def dsn(self, database: str) -> str:
        """The server's DSN pointed at ``database``."""
        return str(make_dsn(self.server, dbname=database))

    def source(self) -> DataProduct:
        """The CDC product of ``public.movies`` as the loader resolves it."""
        return DataProduct(
            domain=self.domain,
            name="movies",
            kind="cdc",
            description="postgres_sink bench source",
            owners=("team:bench",),
            access="internal",
            tier=2,
            slo=Slo(),
            key=("id",),
            inputs=(),
            value_schema=ROW_SCHEMA,
            topic=TopicSettings(1, 1, 3_600_000, "compact"),
            compatibility="BACKWARD",
            declared_in=self.workdir / "products.yaml",
            source=CdcSource(self.source_db, "public", "movies"),
        )

    def sink(self) -> DataProduct:
        """The ``postgres_sink`` of :meth:`source` into ``<sink_db>.public.movies``."""
        source = self.source()
        return replace(
            source,
            name="serving",
            kind="postgres_sink",
            inputs=(source.id,),
            value_schema=None,
            topic=None,
            source=None,
            sink=SinkSettings(mode="upsert", database=self.sink_db, table="public.movies"),
            flink={"parallelism": 1},
        )

    def by_id(self) -> dict[str, DataProduct]:
        return {p.id: p for p in (self.source(), self.sink())}

    @property
    def topic(self) -> str:
        return names.topic(self.source())


def sql(dsn: str, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
    """Run one statement in its own transaction; the rows it returns."""
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: Callable[[], str]) -> None:
    """Poll ``predicate`` every 0.2 s; ``TimeoutError`` naming ``what()`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"postgres_sink bench: timed out after {timeout_s:.0f}s: {what()}")
        time.sleep(0.2)


def start_connector(bench: Bench) -> int:
    """Create the source table and start its connector (as the integration tests do); wait
    until it streams and its topic exists. Returns the PID."""
    sql(bench.dsn(bench.source_db), SOURCE_DDL)
    slot = default_slot(bench.domain, bench.source_db)
    config = ConnectorConfig(
        dsn=bench.server,
        database=bench.source_db,
        tables=("public.movies",),
        domain=bench.domain,
        bootstrap=bench.kafka,
        registry=bench.registry,
        slot=slot,
        publication=slot,
        set_replica_identity=True,
        heartbeat_s=0.5,
        status_interval_s=0.2,
        status_file=bench.workdir / "cdc-status.json",
    )
    pid = supervisor.start_connector(config, bench.workdir / "cdc.log")
    admin = AdminClient(client_config(bench.kafka))

    def streaming() -> bool:
        status = supervisor.read_status(bench.workdir / "cdc-status.json") or {}
        topics = admin.list_topics(timeout=10).topics
        return status.get("state") == "streaming" and bench.topic in topics

    wait_for(streaming, 60, lambda: f"connector streaming {bench.topic}\n{_log_tail(bench)}")
    return pid


def _log_tail(bench: Bench) -> str:
    log = bench.workdir / "cdc.log"
    return log.read_text()[-2000:] if log.exists() else "(no connector log)"


def end_offset(bench: Bench) -> int:
    """The end offset of the source topic's only partition."""
    consumer = Consumer({**client_config(bench.kafka), "group.id": f"{bench.domain}-probe"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(bench.topic, 0), timeout=10)[1])
    finally:
        consumer.close()


def load_backlog(bench: Bench) -> None:
    """Insert :data:`ROWS` rows in 10,000-row transactions; wait until all are in Kafka."""
    step = 10_000
    for start in range(1, ROWS + 1, step):
        sql(
            bench.dsn(bench.source_db),
            "INSERT INTO public.movies (id, title, status, budget) SELECT g, 'movie ' || g,"
            " 'draft', g * 1.25 FROM generate_series(%s, %s) g",
            (start, start + step - 1),
        )
    wait_for(
        lambda: end_offset(bench) >= ROWS,
        KAFKA_TIMEOUT_S,
        lambda: f"{ROWS:,} changes in {bench.topic} (at {end_offset(bench):,})\n{_log_tail(bench)}",
    )


def serving_count(bench: Bench, table: str = "public.movies") -> int:
    """Rows in a serving-database table (0 while the database or table does not exist yet)."""
    with contextlib.suppress(psycopg2.errors.UndefinedTable, psycopg2.OperationalError):
        return int(sql(bench.dsn(bench.sink_db), f"SELECT count(*) FROM {table}")[0][0])
    return 0


def _job_state(bench: Bench) -> str:
    return str(FlinkJobs().status(names.flink_job(bench.sink())))


@dataclass(frozen=True)
class Drain:
    """Seconds from the deploy call: to its return, to the first rows, to all :data:`ROWS`."""

    deploy_s: float
    first_row_s: float
    first_rows: int
    total_s: float

    @property
    def rows_per_s(self) -> float:
        """From the first rows seen to the last (job start-up excluded)."""
        return (ROWS - self.first_rows) / max(self.total_s - self.first_row_s, 0.1)


def drain(bench: Bench) -> Drain:
    """Deploy the sink and time the backlog into the serving table, its row count polled every
    0.1 s from the deploy call on (the job may drain much of it before the call returns)."""
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.1):
            samples.append((time.perf_counter(), serving_count(bench)))
            if samples[-1][1] >= ROWS:
                done.set()

    poller = threading.Thread(target=poll, daemon=True)
    start = time.perf_counter()
    poller.start()
    try:
        status = FlinkResource().deploy_sink(bench.sink(), bench.by_id())
        deploy_s = time.perf_counter() - start
        if not status.running:
            raise RuntimeError(f"postgres_sink bench: the sink job is not running: {status}")
        wait_for(
            done.is_set,
            DRAIN_TIMEOUT_S,
            lambda: (
                f"{ROWS:,} rows in the serving table (has {serving_count(bench):,}); "
                f"job {_job_state(bench)}"
            ),
        )
    finally:
        done.set()
        poller.join()
    first_at, first_rows = next((t, n) for t, n in samples if n > 0)
    return Drain(deploy_s, first_at - start, first_rows, samples[-1][0] - start)


def direct_upsert_s(bench: Bench) -> float:
    """Seconds to upsert the backlog's rows from Python into a copy of the serving table, in
    :data:`FLUSH_ROWS`-row ``execute_values`` pages, one transaction each."""
    dsn = bench.dsn(bench.sink_db)
    sql(dsn, "CREATE TABLE public.direct (LIKE public.movies INCLUDING ALL)")
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (g, f"movie {g}", "draft", Decimal(g * 125).scaleb(-2), now) for g in range(1, ROWS + 1)
    ]
    statement = (
        "INSERT INTO public.direct (id, title, status, budget, written_at) VALUES %s"
        " ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, status = EXCLUDED.status,"
        " budget = EXCLUDED.budget, written_at = EXCLUDED.written_at"
    )
    conn = psycopg2.connect(dsn)
    try:
        start = time.perf_counter()
        with conn.cursor() as cur:
            for first in range(0, ROWS, FLUSH_ROWS):
                page = rows[first : first + FLUSH_ROWS]
                psycopg2.extras.execute_values(cur, statement, page, page_size=FLUSH_ROWS)
                conn.commit()
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    if serving_count(bench, "public.direct") != ROWS:
        raise AssertionError(f"direct upsert: expected {ROWS:,} rows in public.direct")
    return elapsed


def tick_sql(cur: Any, tick: int) -> str:
    """The changes of one tick: :data:`LATENCY_RATE` / 100 single-row transactions (inserts of
    new keys, then updates of distinct backlog keys), sent in one round trip."""
    inserts = LATENCY_RATE // 100 - UPDATES_PER_TICK
    statements = [
        cur.mogrify(
            "INSERT INTO public.movies (id, title, status, budget) VALUES (%s, %s, 'new', 1.25)",
            (key, f"new {key}"),
        )
        for key in range(ROWS + tick * inserts + 1, ROWS + (tick + 1) * inserts + 1)
    ]
    statements += [
        cur.mogrify(
            "UPDATE public.movies SET status = 'updated', written_at = clock_timestamp()"
            " WHERE id = %s",
            (key,),
        )
        for key in range(tick * UPDATES_PER_TICK + 1, (tick + 1) * UPDATES_PER_TICK + 1)
    ]
    return "".join(f"BEGIN; {s.decode()}; COMMIT;" for s in statements)


def write_paced(bench: Bench) -> tuple[int, float]:
    """Single-row transactions at :data:`LATENCY_RATE`/s, paced every 10 ms as
    ``bench.cdc_bench`` does; (changes, seconds)."""
    conn = psycopg2.connect(bench.dsn(bench.source_db))
    conn.autocommit = True  # the explicit BEGIN/COMMIT pairs make each change its own commit
    ticks = LATENCY_SECONDS * 100
    try:
        cur = conn.cursor()
        start = time.perf_counter()
        for tick in range(ticks):
            cur.execute(tick_sql(cur, tick))
            pause = start + (tick + 1) / 100 - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    return ticks * LATENCY_RATE // 100, elapsed


def arrivals(bench: Bench) -> list[tuple[int, float, float, int]]:
    """(id, commit→row ms, arrival epoch ms, sink transaction id) of every logged row write."""
    rows = sql(
        bench.dsn(bench.sink_db),
        "SELECT id, extract(epoch FROM arrived_at - (written_at AT TIME ZONE 'UTC')) * 1000,"
        " extract(epoch FROM arrived_at) * 1000, tx FROM public.arrivals",
    )
    return [(int(i), float(lat), float(at), int(tx)) for i, lat, at, tx in rows]


def kafka_times(bench: Bench, first: int, count: int) -> dict[int, tuple[float, float]]:
    """id -> (source commit ms, Kafka message ms) of ``count`` messages from offset ``first``."""
    registry = SchemaClient(bench.registry).client
    deserialize = AvroDeserializer(registry)
    ctx = SerializationContext(bench.topic, MessageField.VALUE)
    consumer = Consumer({**client_config(bench.kafka), "group.id": f"{bench.domain}-probe"})
    consumer.assign([TopicPartition(bench.topic, 0, first)])
    out: dict[int, tuple[float, float]] = {}
    deadline = time.monotonic() + 60
    try:
        while len(out) < count and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1):
                event = deserialize(msg.value(), ctx) if msg.value() else None
                if event and event.get("after"):
                    out[event["after"]["id"]] = (event["source"]["ts_ms"], msg.timestamp()[1])
    finally:
        consumer.close()
    return out


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def latency(bench: Bench) -> dict[str, float]:
    """Paced changes through the running job; the latency figures (see the module docstring)."""
    sql(bench.dsn(bench.sink_db), ARRIVAL_LOG)
    first = end_offset(bench)
    changes, elapsed = write_paced(bench)

    def logged() -> int:
        return serving_count(bench, "public.arrivals")

    wait_for(
        lambda: logged() >= changes,
        ARRIVAL_TIMEOUT_S,
        lambda: (
            f"{changes:,} changes in the serving table (has {logged():,}); job {_job_state(bench)}"
        ),
    )
    rows = arrivals(bench)
    if min(r[1] for r in rows) < -5:
        raise AssertionError("postgres_sink bench: a row arrived before it was written (clocks?)")
    kafka = kafka_times(bench, first, changes)
    to_kafka = [k - c for c, k in kafka.values()]
    to_row = [at - kafka[i][1] for i, _, at, _ in rows if i in kafka]
    return {
        "postgres_sink_latency_p50_ms": round(percentile([r[1] for r in rows], 0.5), 1),
        "postgres_sink_latency_p99_ms": round(percentile([r[1] for r in rows], 0.99), 1),
        "postgres_sink_latency_rate_per_s": round(changes / elapsed),
        "postgres_sink_latency_samples": len(rows),
        "postgres_sink_commit_to_kafka_p50_ms": round(percentile(to_kafka, 0.5), 1),
        "postgres_sink_commit_to_kafka_p99_ms": round(percentile(to_kafka, 0.99), 1),
        "postgres_sink_kafka_to_row_p50_ms": round(percentile(to_row, 0.5), 1),
        "postgres_sink_kafka_to_row_p99_ms": round(percentile(to_row, 0.99), 1),
        **transaction_stats(rows),
    }


def transaction_stats(rows: list[tuple[int, float, float, int]]) -> dict[str, float]:
    """Rows per sink transaction and the time between its first and last row write (p50).

    A transaction is not a whole flush: pgjdbc ends the implicit transaction of an autocommit
    batch each time it syncs (about every 256 statements), so a 500-row flush takes two."""
    by_tx: dict[int, list[float]] = {}
    for _, _, at, tx in rows:
        by_tx.setdefault(tx, []).append(at)
    return {
        "postgres_sink_transactions": len(by_tx),
        "postgres_sink_tx_rows_p50": statistics.median(len(v) for v in by_tx.values()),
        "postgres_sink_tx_write_p50_ms": round(
            statistics.median(max(v) - min(v) for v in by_tx.values()), 1
        ),
    }


def cleanup(bench: Bench, pid: int | None) -> None:
    """Cancel the job, stop the connector, drop databases, slots, topics, subjects and the
    job's consumer group; each step runs even when an earlier one fails."""
    with contextlib.ExitStack() as steps:
        steps.callback(shutil.rmtree, bench.workdir, ignore_errors=True)
        steps.callback(_drop_kafka, bench)
        steps.callback(_drop_databases, bench)
        if pid is not None:
            steps.callback(supervisor.stop_connector, pid, 20)
        steps.callback(FlinkJobs().cancel, names.flink_job(bench.sink()))


def _drop_databases(bench: Bench) -> None:
    admin = psycopg2.connect(bench.server)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            for database in (bench.source_db, bench.sink_db):
                cur.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE database = %s AND NOT active",
                    (database,),
                )
                cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        admin.close()


def _drop_kafka(bench: Bench) -> None:
    admin = AdminClient(client_config(bench.kafka))
    topics = [bench.topic, names.sink_dlq_topic(bench.sink())]
    for future in admin.delete_topics(topics).values():
        with contextlib.suppress(KafkaException):  # never created
            future.result()
    groups = [names.flink_job(bench.sink()), f"{bench.domain}-probe"]
    for future in admin.delete_consumer_groups(groups).values():
        with contextlib.suppress(KafkaException):
            future.result()
    registry = SchemaClient(bench.registry).client
    for subject in (names.key_subject(bench.topic), names.value_subject(bench.topic)):
        with contextlib.suppress(Exception):  # never registered
            registry.delete_subject(subject, permanent=False)


def run() -> dict[str, float]:
    """Measure the ``postgres_sink``; flat figures (see the module docstring)."""
    bench, pid = Bench(), None
    load = os.getloadavg()[0]
    try:
        _create_db(bench)
        pid = start_connector(bench)
        load_backlog(bench)
        drained = drain(bench)
        direct_s = direct_upsert_s(bench)
        figures = latency(bench)
    finally:
        cleanup(bench, pid)
    rate, direct = ROWS / drained.total_s, ROWS / direct_s
    return {
        "postgres_sink_rows_per_s": round(rate),
        "postgres_sink_deploy_s": round(drained.deploy_s, 2),
        "postgres_sink_first_row_s": round(drained.first_row_s, 2),
        "postgres_sink_drain_rows_per_s": round(drained.rows_per_s),
        "postgres_direct_upsert_rows_per_s": round(direct),
        "postgres_sink_ratio_vs_direct_insert": round(rate / direct, 3),
        "postgres_sink_drain_ratio_vs_direct_insert": round(drained.rows_per_s / direct, 3),
        **figures,
        "postgres_sink_loadavg_1m_before": round(load, 2),
        "postgres_sink_loadavg_1m_after": round(os.getloadavg()[0], 2),
    }


def _create_db(bench: Bench) -> None:
    admin = psycopg2.connect(bench.server)
    admin.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{bench.source_db}"')
    finally:
        admin.close()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
