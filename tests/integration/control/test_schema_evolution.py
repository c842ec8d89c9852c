"""Schema evolution decided by consumers, on the real stack: a CDC table feeds a Flink processor
that consumes its column ``status``. Adding a column upstream pauses nothing; dropping
``status`` pauses the processor (job stopped with a savepoint, a pause record, the blocking
``upstream_schema`` check failing naming field, change, consumer and owner, deployments leaving
it stopped) while the table keeps changing; once the consumer's declaration stops using
``status`` the job resumes from the savepoint and its output equals PostgreSQL row for row.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml
from psycopg2.extensions import make_dsn

from datamesh import endpoints, names, pauses
from datamesh.checks.evaluate import evaluate
from datamesh.checks.gather import Systems, gather
from datamesh.checks.outcome import Outcome
from datamesh.control.pausing import reconcile_schemas
from datamesh.flink import FlinkJobs
from datamesh.flink.connections import Connections
from datamesh.flink.declared import deploy_declared
from datamesh.flink.jobmanager import JobManager
from datamesh.kafka_config import client_config
from datamesh.schema_client import SchemaClient
from datamesh.specs import load_products
from datamesh.specs.product import DataProduct
from tests.integration.flink.conftest import Topics, materialize, wait_for
from tests.integration.sinks.conftest import Source

pytestmark = pytest.mark.integration

OWNER = "team:evolution-test"
DDL = "CREATE TABLE movies (id bigint PRIMARY KEY, title text, status text)"
OPTIONAL = {"type": ["null", "string"], "default": None}
MOVIE: dict[str, Any] = {"type": "record", "name": "Movie", "fields": [
    {"name": "id", "type": "long"}, {"name": "title", **OPTIONAL}, {"name": "status", **OPTIONAL},
]}  # fmt: skip


def _declare(
    root: Path, src: Source, uses_status: bool, required: bool = False
) -> tuple[DataProduct, ...]:
    """The domain's declarations in ``root`` (rewritten), loaded as the platform loads them;
    ``required``: the consumer reads ``status`` as NOT NULL."""
    folder = root / src.domain
    folder.mkdir(parents=True, exist_ok=True)
    columns = ["id", "title", "status"] if uses_status else ["id", "title"]
    movie = copy.deepcopy(MOVIE)
    if required:
        movie["fields"][2] = {"name": "status", "type": "string"}
    out = {**movie, "name": "Catalog", "fields": movie["fields"][: len(columns)]}
    (folder / "movies.avsc").write_text(json.dumps(movie))
    (folder / "catalog.avsc").write_text(json.dumps(out))
    (folder / "catalog.sql").write_text(f"SELECT {', '.join(columns)} FROM `{src.domain}.movies`\n")
    declaration = {
        "domain": src.domain,
        "owners": [OWNER],
        "products": [
            {"name": "movies", "kind": "cdc", "description": "test movies",
             "source": {"database": src.database, "table": "public.movies"},
             "schema": "movies.avsc", "key": ["id"]},
            {"name": "catalog", "kind": "processor", "description": "what it consumes",
             "inputs": [f"{src.domain}.movies"], "sql": "catalog.sql", "schema": "catalog.avsc",
             "key": ["id"], "topic": {"cleanup_policy": "compact"},
             "consumes": {f"{src.domain}.movies": columns},
             "flink": {"checkpoint_interval": "1s"}},
        ],
    }  # fmt: skip
    (folder / "products.yaml").write_text(yaml.safe_dump(declaration, sort_keys=False))
    return load_products(root)


def _version(registry: SchemaClient, subject: str) -> int:
    """The latest version of ``subject`` (0: nothing registered)."""
    latest = registry.latest(subject)
    return latest.version if latest is not None else 0


def _titles(messages: list[Any]) -> dict[Any, Any]:
    """The (id, title) table an upsert topic of catalog rows describes."""
    table = materialize(messages, ("id",))
    return {k: {"id": v["id"], "title": v["title"]} for k, v in table.items()}


def _upstream_check(
    products: tuple[DataProduct, ...], consumer: DataProduct, conn: Connections
) -> Outcome:
    """The ``upstream_schema`` outcome of ``consumer``, gathered from the real systems."""
    by_id = {p.id: p for p in products}

    def no_catalog() -> Any:
        raise RuntimeError("no Iceberg sink here")

    systems = Systems(
        lambda: client_config(conn.bootstrap),
        lambda: SchemaClient(conn.registry_url, conn.registry_user_info),
        lambda: JobManager(conn.flink_rest_url),
        no_catalog,
    )
    observed = gather([consumer], by_id, systems)
    (found,) = [o for o in evaluate([consumer], by_id, observed, {})[consumer.id]
                if o.check == "upstream_schema"]  # fmt: skip
    return found


@pytest.mark.parametrize(
    "required",
    [
        False,  # the job reads the changed events (status null) until it is stopped
        True,  # its task fails on the first one: cancelled, resumed from its last checkpoint
    ],
    ids=["optional-status", "required-status"],
)
def test_a_dropped_consumed_column_pauses_and_the_updated_consumer_resumes_losing_nothing(
    source: Callable[..., Source],
    flink: FlinkJobs,
    topics: Topics,
    conn: Connections,
    tmp_path: Path,
    required: bool,
) -> None:
    src = source(DDL, "movies")
    src.run("INSERT INTO movies VALUES (1, 'Alien', 'released'), (2, 'Heat', 'released')")
    products = _declare(tmp_path / "domains", src, uses_status=True, required=required)
    by_id = {p.id: p for p in products}
    catalog = by_id[f"{src.domain}.catalog"]
    job = names.flink_job(catalog)
    registry = SchemaClient(conn.registry_url, conn.registry_user_info)
    subject = names.value_subject(src.topic("movies"))

    def output_matches_postgres() -> None:
        rows = {(i,): {"id": i, "title": t} for i, t in src.run("SELECT id, title FROM movies")}
        seen = topics.consume(names.topic(catalog), lambda m: _titles(m) == rows, 90)
        assert _titles(seen) == rows, f"output != PostgreSQL {rows}\n{flink.status(job)}"

    try:
        wait_for(lambda: _version(registry, subject), 60, f"{subject} registered")
        assert deploy_declared(flink, catalog, by_id).running
        output_matches_postgres()
        assert reconcile_schemas(products, conn) == []  # nothing changed upstream

        # a column nobody consumes: the change propagates, nothing pauses
        src.run("ALTER TABLE movies ADD COLUMN rating int")
        src.run("INSERT INTO movies VALUES (3, 'Dune', 'production', 8)")
        wait_for(lambda: _version(registry, subject) == 2, 60, f"{subject} version 2 (rating)")
        assert [(a.verb, a.product) for a in reconcile_schemas(products, conn)] == [
            ("update", catalog.id)
        ]
        assert pauses.load(catalog.id) is None and flink.status(job).running

        # the consumed column goes: the pipeline pauses, nothing is lost
        src.run("ALTER TABLE movies DROP COLUMN status")
        # the first change after the DROP registers the new schema. With status required the
        # job's task fails on it and it waits for the resume; with status optional the running
        # job reads it with status null before the pause — what the consumer's WHERE makes of
        # that is a known limit, so that row is changed again while paused below
        src.run("UPDATE movies SET title = 'Heat (1995)' WHERE id = 2")
        wait_for(lambda: _version(registry, subject) == 3, 60, f"{subject} version 3 (no status)")
        (paused,) = reconcile_schemas(products, conn)
        assert (paused.verb, paused.product, paused.params["fields"]) == (
            "pause",
            catalog.id,
            ["status"],
        )
        record = pauses.load(catalog.id)
        assert record is not None and record.savepoint
        assert endpoints.pause_file(catalog.id).is_file()
        assert not flink.status(job).running
        check = _upstream_check(products, catalog, conn)
        assert (check.passed, check.state) == (False, "paused")
        for said in (f"drop column {src.domain}.movies.status", f"breaks {catalog.id}",
                     "consumes status", OWNER, record.savepoint):  # fmt: skip
            assert said in check.summary, check.summary
        assert deploy_declared(flink, catalog, by_id).action == "paused"  # stays stopped
        assert not flink.status(job).running
        assert [a.verb for a in reconcile_schemas(products, conn)] == ["in_sync"]

        # the table keeps changing while the consumer is paused
        if not required:
            src.run("UPDATE movies SET title = 'Heat (1995 film)' WHERE id = 2")
        src.run("INSERT INTO movies (id, title) VALUES (4, 'Tenet'), (5, 'Up')")
        src.run("UPDATE movies SET title = 'Alien (1979)' WHERE id = 1")
        src.run("DELETE FROM movies WHERE id = 3")
        src.run("UPDATE movies SET title = 'Up!' WHERE id = 5")

        # the consumer stops using status: resumed from the savepoint
        products = _declare(tmp_path / "domains", src, uses_status=False)
        (resumed,) = reconcile_schemas(products, conn)
        assert (resumed.verb, resumed.params["savepoint"]) == ("resume", record.savepoint)
        assert pauses.load(catalog.id) is None
        assert flink.status(job).running
        assert _upstream_check(products, catalog, conn).passed
        output_matches_postgres()
        assert reconcile_schemas(products, conn) == []
        dead = topics.consume(names.dlq_topic(names.topic(catalog)), lambda m: False, 3)
        assert dead == [], "a change was dead-lettered instead of waiting for the resume"
    finally:
        flink.cancel(job)
        pauses.remove(catalog.id)


def _declare_pipeline(root: Path, src: Source, sink_db: str) -> tuple[DataProduct, ...]:
    """CDC movies → a typed filter carrying every column (its declared output extended by
    columns added upstream) → a postgres_sink of its output."""
    folder = root / src.domain
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "movies.avsc").write_text(json.dumps(MOVIE))
    (folder / "copy.avsc").write_text(json.dumps({**MOVIE, "name": "Copy"}))
    declaration = {
        "domain": src.domain,
        "owners": [OWNER],
        "products": [
            {"name": "movies", "kind": "cdc", "description": "test movies",
             "source": {"database": src.database, "table": "public.movies"},
             "schema": "movies.avsc", "key": ["id"]},
            {"name": "copy", "kind": "processor", "description": "every movie, every column",
             "inputs": [f"{src.domain}.movies"], "processor": {"type": "filter", "where": "id > 0"},
             "schema": "copy.avsc", "key": ["id"], "topic": {"cleanup_policy": "compact"},
             "flink": {"checkpoint_interval": "1s"}},
            {"name": "serving", "kind": "postgres_sink", "description": "the copy, served",
             "inputs": [f"{src.domain}.copy"],
             "sink": {"database": sink_db, "table": "public.movies"},
             "flink": {"checkpoint_interval": "1s"}},
        ],
    }  # fmt: skip
    (folder / "products.yaml").write_text(yaml.safe_dump(declaration, sort_keys=False))
    return load_products(root)


def test_a_column_added_upstream_flows_to_the_processor_output_and_the_sink_table(
    source: Callable[..., Source],
    flink: FlinkJobs,
    topics: Topics,
    conn: Connections,
    tmp_path: Path,
) -> None:
    src = source(DDL, "movies")
    src.run("INSERT INTO movies VALUES (1, 'Alien', 'released'), (2, 'Heat', 'released')")
    sink_db = f"evo_{uuid.uuid4().hex[:8]}"
    products = _declare_pipeline(tmp_path / "domains", src, sink_db)
    by_id = {p.id: p for p in products}
    copy, serving = by_id[f"{src.domain}.copy"], by_id[f"{src.domain}.serving"]
    registry = SchemaClient(conn.registry_url, conn.registry_user_info)
    subject = names.value_subject(src.topic("movies"))

    def served(columns: str) -> list[tuple[Any, ...]]:
        """The sink table's rows (the deploy creates its database)."""
        db = psycopg2.connect(make_dsn(endpoints.endpoint("postgres"), dbname=sink_db))
        try:
            with db.cursor() as cur:
                cur.execute(f"SELECT {columns} FROM public.movies ORDER BY id")
                rows: list[tuple[Any, ...]] = cur.fetchall()
        finally:
            db.close()
        return rows

    def source_rows(columns: str) -> list[tuple[Any, ...]]:
        return src.run(f"SELECT {columns} FROM movies ORDER BY id")

    try:
        wait_for(lambda: registry.latest(subject), 60, f"{subject} registered")
        assert deploy_declared(flink, copy, by_id).running
        assert deploy_declared(flink, serving, by_id).running
        wait_for(lambda: served("id, title, status") == source_rows("id, title, status"), 90,
                 "the sink table to equal the source")  # fmt: skip

        src.run("ALTER TABLE movies ADD COLUMN rating int")
        src.run("INSERT INTO movies VALUES (3, 'Dune', 'production', 8)")
        src.run("UPDATE movies SET rating = 5 WHERE id = 1")
        wait_for(lambda: _version(registry, subject) == 2, 60, f"{subject} version 2 (rating)")
        actions = reconcile_schemas(products, conn)
        assert [(a.verb, a.product) for a in actions] == [
            ("update", copy.id),  # reads rating (SELECT *): rereads its input
            ("update", serving.id),  # its input, copy's output, gained rating
        ]
        assert actions[0].params["reread"] is True and actions[0].impact[0].fields == ("rating",)
        assert pauses.load(copy.id) is None and pauses.load(serving.id) is None
        out = registry.latest(names.value_subject(names.topic(copy)))
        assert out is not None and "rating" in [f["name"] for f in out.schema["fields"]]
        want = source_rows("id, title, status, rating")
        wait_for(lambda: served("id, title, status, rating") == want, 120,
                 f"the sink table to carry rating: {want}")  # fmt: skip
        assert reconcile_schemas(products, conn) == []
    finally:
        for p in (copy, serving):
            flink.cancel(names.flink_job(p))
        admin = psycopg2.connect(endpoints.endpoint("postgres"))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{sink_db}" WITH (FORCE)')
        admin.close()
