"""postgres_sink end to end: a Kafka-backed product upserted into PostgreSQL by a Flink JDBC job.

- CDC: a source table's scripted inserts, repeated updates of one key, a delete and re-insert of
  another and a primary-key change end up row for row in the sink table (created by the deploy,
  in a database the deploy creates).
- Evolution: a column added to the source table (a new registered schema version) is added to
  the sink table by redeploying, and the values written after the change land in it.
- A keyed processor output (upsert-kafka, tombstones) → deletes applied.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from confluent_kafka.serialization import MessageField, SerializationContext
from psycopg2.extensions import make_dsn

from datamesh import endpoints, names
from datamesh.flink import FlinkJobs
from datamesh.flink.connections import Connections
from datamesh.flink.declared import sink_job_for
from datamesh.schema_client import SchemaClient
from datamesh.sinks.postgres import SinkTableMismatch
from datamesh.specs.product import DataProduct, SinkSettings
from resources.flink import FlinkResource
from tests.integration.flink.conftest import Topics, product, record
from tests.integration.flink.test_cdc_e2e import _await_topic, _sql, _start_connector

pytestmark = pytest.mark.integration

MOVIES_DDL = (
    "CREATE TABLE movies (id bigint PRIMARY KEY, title text NOT NULL, status text,"
    " release_year int, budget numeric(12,2), updated_at timestamp NOT NULL DEFAULT now())"
)
MOVIE_FIELDS: list[tuple[str, Any]] = [
    ("id", "long"),
    ("title", "string"),
    ("status", ["null", "string"]),
    ("release_year", ["null", "int"]),
    (
        "budget",
        ["null", {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}],
    ),
    ("updated_at", {"type": "long", "logicalType": "timestamp-micros"}),
]
SNAPSHOT = [
    "INSERT INTO movies (id, title, status, release_year, budget) VALUES"
    " (1, 'Alien', 'released', 1979, 11000000.00), (2, 'Heat', 'released', 1995, NULL),"
    " (3, 'Dune', 'production', NULL, 165000000.50)",
]
STREAMING = [
    "INSERT INTO movies (id, title, status) VALUES (4, 'Tenet', 'post'), (5, 'Up', 'dev')",
    "UPDATE movies SET status = 'post' WHERE id = 3",
    "UPDATE movies SET status = 'released', release_year = 2021 WHERE id = 3",
    "UPDATE movies SET title = 'Dune: Part One', updated_at = now() WHERE id = 3",
    "DELETE FROM movies WHERE id = 2",
    "INSERT INTO movies (id, title, status, release_year)"
    " VALUES (2, 'Heat (1995)', 'remaster', 1995)",
    "DELETE FROM movies WHERE id = 5",
    "UPDATE movies SET id = 40 WHERE id = 4",  # key change: delete + create
    "BEGIN; UPDATE movies SET budget = 1.25 WHERE id = 1;"
    " INSERT INTO movies (id, title) VALUES (7, 'Akira'); COMMIT",
]


@pytest.fixture
def source_db(mesh_stack: object) -> Iterator[str]:
    """A fresh source database (DSN); dropped with its replication slots afterwards."""
    yield from _database(f"src_{uuid.uuid4().hex[:8]}", create=True)


@pytest.fixture
def sink_db(mesh_stack: object) -> Iterator[str]:
    """The name of a sink database that does not exist yet (the deploy creates it)."""
    name = f"sink_{uuid.uuid4().hex[:8]}"
    for _ in _database(name, create=False):
        yield name


def _database(name: str, create: bool) -> Iterator[str]:
    server = endpoints.endpoint("postgres")
    admin = psycopg2.connect(server)
    admin.autocommit = True
    if create:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    yield make_dsn(server, dbname=name)
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE database = %s AND NOT active",
            (name,),
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def sinks(flink: FlinkJobs) -> Iterator[Callable[[DataProduct], str]]:
    """Register a sink product; its job is cancelled after the test. Returns the job name."""
    made: list[str] = []

    def register(sink: DataProduct) -> str:
        made.append(names.flink_job(sink))
        return made[-1]

    yield register
    for name in made:
        flink.cancel(name)


def sink_product(domain: str, source: DataProduct, database: str, table: str) -> DataProduct:
    """A ``postgres_sink`` of ``source`` as the loader resolves it (key = the input's)."""
    p = product(domain, "serving", "postgres_sink", inputs=(source.id,), key=source.key)
    return replace(p, topic=None, sink=SinkSettings(mode="upsert", database=database, table=table))


def test_cdc_sink_equals_source_table(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    source_db: str,
    sink_db: str,
    sinks: Callable[[DataProduct], str],
    tmp_path: Path,
) -> None:
    db = psycopg2.connect(source_db)
    db.autocommit = True
    run = _sql(db)
    run(MOVIES_DDL)
    for statement in SNAPSHOT:
        run(statement)
    pid = _start_connector(source_db, domain, tmp_path)
    try:
        movies = _movies(domain)
        sink = sink_product(domain, movies, sink_db, "public.movie_copy")
        name = sinks(sink)
        _await_topic(topics, names.topic(movies), tmp_path)
        status = FlinkResource().deploy_sink(sink, {movies.id: movies, sink.id: sink})
        assert status.action == "started" and status.running, status
        for statement in STREAMING:
            run(statement)
        await_equal(run, sink_db, "public.movie_copy", 90, flink, name)

        status = flink.status(name)
        assert status.running and status.restarts == 0 and status.dead_letters == 0, status
        again = FlinkResource().deploy_sink(sink, {movies.id: movies, sink.id: sink})
        assert again.action == "unchanged" and again.job_id == status.job_id
        dlq = names.sink_dlq_topic(sink)
        assert topics.admin.list_topics(dlq, timeout=10).topics[dlq].error is None
    finally:
        _stop(pid)
        db.close()


def test_column_added_upstream_reaches_sink_table(
    flink: FlinkJobs,
    topics: Topics,
    conn: Connections,
    domain: str,
    source_db: str,
    sink_db: str,
    sinks: Callable[[DataProduct], str],
    tmp_path: Path,
) -> None:
    db = psycopg2.connect(source_db)
    db.autocommit = True
    run = _sql(db)
    run(MOVIES_DDL)
    run(SNAPSHOT[0])
    pid = _start_connector(source_db, domain, tmp_path)
    try:
        movies = _movies(domain)
        sink = sink_product(domain, movies, sink_db, "public.movies")
        by_id = {movies.id: movies, sink.id: sink}
        name = sinks(sink)
        _await_topic(topics, names.topic(movies), tmp_path)
        first = FlinkResource().deploy_sink(sink, by_id)
        assert first.running
        await_equal(run, sink_db, "public.movies", 90, flink, name)

        run("ALTER TABLE movies ADD COLUMN rating int")
        run("UPDATE movies SET rating = 7 WHERE id = 1")
        run("INSERT INTO movies (id, title, rating) VALUES (10, 'Solaris', 9)")
        subject = names.value_subject(names.topic(movies))
        registry = SchemaClient(conn.registry_url, conn.registry_user_info)
        _wait(lambda: "rating" in str(registry.latest(subject)), 60, "schema with `rating`")
        assert "rating" in sink_job_for(sink, by_id, conn).sql

        upgraded = FlinkResource().deploy_sink(sink, by_id)
        # The table gained a column: the input is reread, so the changes the old job consumed
        # since the ALTER (rating 7 and 9) land in it too.
        assert upgraded.action == "reprocessed" and upgraded.running, upgraded
        assert upgraded.sql_hash != first.sql_hash
        run("UPDATE movies SET rating = 8 WHERE id = 2")
        rows = await_equal(run, sink_db, "public.movies", 90, flink, name)
        ratings = {r[0]: r[-1] for r in rows}
        assert (ratings[1], ratings[2], ratings[10], ratings[3]) == (7, 8, 9, None)
    finally:
        _stop(pid)
        db.close()


def test_keyed_processor_output_deletes_applied(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    sink_db: str,
    sinks: Callable[[DataProduct], str],
) -> None:
    fields = [("user_id", "string"), ("orders", "long"), ("total", ["null", "double"])]
    totals = product(
        domain, "totals", "processor", record("Totals", domain, fields), key=("user_id",)
    )
    topic = names.topic(totals)
    topics.create(topic)
    key_schema = record("TotalsKey", domain, [("user_id", "string")])
    key_ser = topics.serializer(key_schema)
    key_ctx = SerializationContext(topic, MessageField.KEY)

    def produce(rows: list[tuple[str, dict[str, Any] | bytes | None]]) -> None:
        values = [v for _, v in rows]
        keys = iter([key_ser({"user_id": k}, key_ctx) for k, _ in rows])
        topics.produce(topic, totals.value_schema, values, key=lambda _: next(keys))

    produce(
        [
            ("u1", {"user_id": "u1", "orders": 1, "total": 10.0}),
            ("u2", {"user_id": "u2", "orders": 1, "total": None}),
            ("u3", {"user_id": "u3", "orders": 2, "total": 5.5}),
        ]
    )
    sink = sink_product(domain, totals, sink_db, "analytics.user_totals")
    name = sinks(sink)
    status = FlinkResource().deploy_sink(sink, {totals.id: totals, sink.id: sink})
    assert status.running, status
    produce(
        [
            ("u1", {"user_id": "u1", "orders": 2, "total": 25.0}),
            ("u2", None),  # tombstone: the row goes
            ("u4", {"user_id": "u4", "orders": 1, "total": 1.0}),
            ("u3", None),
            ("u3", {"user_id": "u3", "orders": 3, "total": 6.5}),  # deleted, then back
            ("u5", b"not avro at all"),  # poison: dead-lettered, the job goes on
        ]
    )
    expected = [("u1", 2, 25.0), ("u3", 3, 6.5), ("u4", 1, 1.0)]
    query = "SELECT user_id, orders, total FROM analytics.user_totals ORDER BY 1"
    _wait(lambda: _rows(sink_db, query) == expected, 90, f"{expected} in the sink table")
    dead = topics.read(names.sink_dlq_topic(sink), lambda m: len(m) >= 1)
    assert [v for _, v, _ in dead] == [b"not avro at all"]
    assert dead[0][2]["mesh.job"] == name.encode()
    status = flink.status(name)
    assert status.running and status.restarts == 0, status


def test_type_clash_refused_before_anything_runs(
    flink: FlinkJobs, topics: Topics, domain: str, sink_db: str
) -> None:
    fields = [("user_id", "string"), ("orders", "long")]
    totals = product(domain, "totals", "processor", record("T", domain, fields), key=("user_id",))
    server = endpoints.endpoint("postgres")
    admin = psycopg2.connect(server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{sink_db}"')
    admin.close()
    db = psycopg2.connect(make_dsn(server, dbname=sink_db))
    with db, db.cursor() as cur:
        cur.execute("CREATE TABLE public.totals (user_id text PRIMARY KEY, orders text)")
    db.close()
    sink = sink_product(domain, totals, sink_db, "public.totals")
    with pytest.raises(SinkTableMismatch) as err:
        FlinkResource().deploy_sink(sink, {totals.id: totals, sink.id: sink})
    assert all(s in str(err.value) for s in ('"orders"', "text", "bigint", "ALTER TABLE"))
    assert flink.status(names.flink_job(sink)).state == "NOT_FOUND"


def _movies(domain: str) -> DataProduct:
    return product(
        domain, "movies", "cdc", record("Movie", domain, MOVIE_FIELDS), key=("id",), table="movies"
    )


def await_equal(
    run: Callable[[str], list[tuple[object, ...]]],
    sink_db: str,
    table: str,
    timeout_s: float,
    flink: FlinkJobs,
    job: str,
) -> list[tuple[object, ...]]:
    """Poll until the sink table equals the source table row for row; fail naming the rows
    that differ."""
    deadline = time.monotonic() + timeout_s
    while True:
        source = run("SELECT * FROM movies ORDER BY id")
        sink = _rows(sink_db, f"SELECT * FROM {table} ORDER BY 1")
        if sink == source:
            return sink
        if time.monotonic() > deadline:
            only_source = [r for r in source if r not in sink]
            only_sink = [r for r in sink if r not in source]
            raise AssertionError(
                f"sink table {table} != source after {timeout_s}s: rows only in the source "
                f"{only_source}, only in the sink {only_sink}\n{flink.status(job)}"
            )
        time.sleep(0.5)


def _rows(database: str, query: str) -> list[tuple[object, ...]]:
    try:
        db = psycopg2.connect(make_dsn(endpoints.endpoint("postgres"), dbname=database))
    except psycopg2.OperationalError:
        return []
    try:
        with db.cursor() as cur:
            cur.execute(query)
            return list(cur.fetchall())
    except psycopg2.errors.UndefinedTable:
        return []
    finally:
        db.close()


def _wait(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.5)


def _stop(pid: int) -> None:
    from datamesh.cdc import supervisor

    supervisor.stop_connector(pid, timeout_s=20)
