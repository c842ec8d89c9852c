"""Fixtures for audits on the real stack: a captured source database (the sink tests'), Flink
and Kafka handles (the Flink tests'), and products built in memory around them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2.extensions import make_dsn

from datamesh import endpoints
from datamesh.flink import FlinkJobs
from datamesh.specs.product import CdcSource, DataProduct, SinkSettings, Slo
from tests.integration.flink.conftest import conn, flink, product, record, topics  # noqa: F401
from tests.integration.sinks.conftest import Source, await_caught_up, sinks, source  # noqa: F401

MOVIES_DDL = (
    "CREATE TABLE movies (id bigint PRIMARY KEY, title text NOT NULL, status text,"
    " budget numeric(12,2), updated_at timestamp NOT NULL DEFAULT now())"
)
MOVIE_FIELDS: list[tuple[str, Any]] = [
    ("id", "long"),
    ("title", "string"),
    ("status", ["null", "string"]),
    (
        "budget",
        ["null", {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}],
    ),
    ("updated_at", {"type": "long", "logicalType": "timestamp-micros"}),
]
COLUMNS = tuple(name for name, _ in MOVIE_FIELDS)
GRACE = timedelta(seconds=8)


def seed(src: Source, rows: int) -> None:
    src.run(
        "INSERT INTO movies (id, title, status, budget) SELECT g, 'movie ' || g, "
        f"CASE WHEN g % 3 = 0 THEN NULL ELSE 'development' END, g * 10.5 "
        f"FROM generate_series(1, {rows}) g"
    )


def movies_product(src: Source) -> DataProduct:
    """The CDC product of ``src``'s movies table (domain and database of its connector)."""
    movies = product(
        src.domain,
        "movies",
        "cdc",
        record("Movie", src.domain, MOVIE_FIELDS),
        key=("id",),
        table="movies",
    )
    return replace(movies, source=CdcSource(src.database, "public", "movies"))


def sink_product(movies: DataProduct, kind: str, **sink: Any) -> DataProduct:
    """An upsert sink of ``movies`` as the loader resolves it, with a short freshness SLO."""
    base = product(movies.domain, f"movies_{kind}", kind, inputs=(movies.id,), key=movies.key)
    return replace(
        base,
        topic=None,
        slo=Slo(freshness=GRACE),
        owners=("team:audit-test",),
        sink=SinkSettings(mode="upsert", **sink),
    )


@pytest.fixture
def sink_db(mesh_stack: object) -> Iterator[str]:
    """A sink database name (created by the PostgreSQL sink's deploy; dropped afterwards)."""
    name = f"asink_{uuid.uuid4().hex[:8]}"
    yield name
    admin = psycopg2.connect(endpoints.endpoint("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def cancel_jobs(flink: FlinkJobs) -> Iterator[list[str]]:  # noqa: F811
    """Names of Flink jobs to cancel after the test."""
    names: list[str] = []
    yield names
    for name in names:
        flink.cancel(name)


def write_domain(root: Path, src: Source, sink_db: str) -> Path:
    """A domains folder declaring ``src``'s movies (cdc) and an audited ``postgres_sink`` of it
    (``<domain>.movies_serving`` into ``sink_db``), as a team would write them."""
    folder = root / src.domain
    folder.mkdir(parents=True)
    (folder / "movies.avsc").write_text(json.dumps(record("Movie", src.domain, MOVIE_FIELDS)))
    (folder / "products.yaml").write_text(
        f"""domain: {src.domain}
owners: [team:audit-test]
products:
  - name: movies
    kind: cdc
    description: Movies captured from the test database.
    source: {{database: {src.database}, table: public.movies}}
    schema: movies.avsc
    key: [id]
  - name: movies_serving
    kind: postgres_sink
    description: Movies for serving.
    inputs: [{src.domain}.movies]
    sink: {{database: {sink_db}, table: public.movies}}
    slo: {{freshness: {int(GRACE.total_seconds())}s}}
    audit: {{every: 1h}}
"""
    )
    return root


def sink_dsn(database: str) -> str:
    return str(make_dsn(endpoints.endpoint("postgres"), dbname=database))
