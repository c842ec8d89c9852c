"""End to end: PostgreSQL table → CDC connector (datamesh.cdc) → Flink SQL processor → topic.

A scripted sequence of inserts (some before the connector starts: snapshot reads), updates
(including one that changes the primary key) and deletes; the processor's keyed aggregate must
end exactly equal to the same aggregate computed by PostgreSQL itself, with nothing dead-lettered.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2.extensions import make_dsn

from datamesh import endpoints, names
from datamesh.cdc import supervisor
from datamesh.cdc.config import ConnectorConfig, default_slot
from datamesh.flink import FlinkJobs, ProcessorJob
from tests.integration.flink.conftest import MOVIE, Topics, dlq_of, materialize, product, record

pytestmark = pytest.mark.integration

BEFORE_CONNECTOR = [
    "INSERT INTO movies (id, title, status, release_year) VALUES"
    " (1, 'Alien', 'released', 1979), (2, 'Heat', 'released', 1995),"
    " (3, 'Dune', 'production', NULL)",
]
WHILE_STREAMING = [
    "INSERT INTO movies (id, title, status, release_year) VALUES"
    " (4, 'Tenet', 'post', 2020), (5, 'Up', 'development', NULL)",
    "UPDATE movies SET status = 'released', release_year = 2021 WHERE id = 3",
    "UPDATE movies SET title = 'Heat (1995)', updated_at = now() WHERE id = 2",
    "DELETE FROM movies WHERE id = 5",  # 'development' disappears: a tombstone downstream
    "UPDATE movies SET status = 'post' WHERE id = 1",
    "INSERT INTO movies (id, title, status, release_year) VALUES (6, 'Nope', 'production', 2022)",
    "DELETE FROM movies WHERE id = 4",
    "UPDATE movies SET id = 40 WHERE id = 6",  # key change: delete + create
    "BEGIN; UPDATE movies SET release_year = 1980 WHERE id = 1;"
    " INSERT INTO movies (id, title, status) VALUES (7, 'Akira', 'post'); COMMIT",
]
SQL = """SELECT status,
  COUNT(*) AS movies,
  MAX(release_year) AS latest
FROM `{movies}`
GROUP BY status"""


@pytest.fixture
def database(mesh_stack: object) -> Iterator[str]:
    server = endpoints.endpoint("postgres")
    name = f"flink_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(server)
    admin.autocommit = True
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


def test_cdc_processor_matches_postgres(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    database: str,
    jobs: Callable[..., ProcessorJob],
    tmp_path: Path,
) -> None:
    db = psycopg2.connect(database)
    db.autocommit = True
    run = _sql(db)
    run(
        "CREATE TABLE movies (id bigint PRIMARY KEY, title text NOT NULL, status text NOT NULL,"
        " release_year int, updated_at timestamp NOT NULL DEFAULT now())"
    )
    for statement in BEFORE_CONNECTOR:
        run(statement)
    pid = _start_connector(database, domain, tmp_path)
    try:
        movies = product(
            domain, "movies", "cdc", record("Movie", domain, MOVIE), key=("id",), table="movies"
        )
        stats = product(
            domain,
            "status_counts",
            "processor",
            inputs=(movies.id,),
            sql=SQL.format(movies=movies.id),
            key=("status",),
        )
        _await_topic(topics, names.topic(movies), tmp_path)
        job = jobs(stats, [movies])
        assert flink.deploy(job).running
        for statement in WHILE_STREAMING:
            run(statement)
        expected = {
            (status,): {"status": status, "movies": n, "latest": latest}
            for status, n, latest in run(
                "SELECT status, count(*), max(release_year) FROM movies GROUP BY status"
            )
        }
        assert expected == {
            ("post",): {"status": "post", "movies": 2, "latest": 1980},
            ("released",): {"status": "released", "movies": 2, "latest": 2021},
            ("production",): {"status": "production", "movies": 1, "latest": 2022},
        }
        output = topics.consume(
            names.topic(stats), lambda m: materialize(m, ("status",)) == expected, 90
        )
        table = materialize(output, ("status",))
        if table != expected:  # say why: what the job saw and what it wrote
            events = topics.consume(names.topic(movies), lambda m: False, 5)
            changes = [(k and k["id"], v and v["op"]) for k, v, _ in events]
            raise AssertionError(
                f"output {table} != expected {expected}\n{flink.status(job.name)}\n"
                f"CDC events (id, op): {changes}"
            )
        status = flink.status(job.name)
        assert status.running and status.dead_letters == 0 and status.restarts == 0
        dlq = topics.admin.list_topics(dlq_of(stats), timeout=10).topics[dlq_of(stats)]
        assert dlq.error is None
    finally:
        supervisor.stop_connector(pid, timeout_s=20)
        db.close()


def _sql(db: object) -> Callable[[str], list[tuple[object, ...]]]:
    def run(statement: str) -> list[tuple[object, ...]]:
        with db.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute(statement)
            return cur.fetchall() if cur.description else []

    return run


def _start_connector(dsn: str, domain: str, tmp_path: Path) -> int:
    database = psycopg2.extensions.parse_dsn(dsn)["dbname"]
    slot = default_slot(domain, database)
    config = ConnectorConfig(
        dsn=endpoints.endpoint("postgres"),
        database=database,
        tables=("public.movies",),
        domain=domain,
        bootstrap=endpoints.endpoint("kafka"),
        registry=endpoints.endpoint("schema_registry"),
        slot=slot,
        publication=slot,
        set_replica_identity=True,
        heartbeat_s=0.5,
        status_interval_s=0.2,
        status_file=tmp_path / "cdc-status.json",
    )
    return supervisor.start_connector(config, tmp_path / "cdc.log")


def _await_topic(topics: Topics, topic: str, tmp_path: Path, timeout_s: float = 60) -> None:
    """The connector creates its topics when it starts streaming; wait for the snapshot."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = supervisor.read_status(tmp_path / "cdc-status.json") or {}
        if (
            status.get("state") == "streaming"
            and topic in topics.admin.list_topics(timeout=10).topics
        ):
            return
        time.sleep(0.2)
    log = (tmp_path / "cdc.log").read_text()[-3000:] if (tmp_path / "cdc.log").exists() else ""
    raise AssertionError(f"CDC connector did not start streaming {topic}:\n{log}")
