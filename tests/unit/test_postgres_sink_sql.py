"""The postgres_sink's pure parts: Avro → PostgreSQL types, table DDL, column plans, the job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from datamesh.errors import SpecError
from datamesh.flink import ddl
from datamesh.flink.sink_job import jdbc_url, row_schema, sink_job
from datamesh.sinks.postgres import (
    SinkTableMismatch,
    add_column_sql,
    create_table_sql,
    pg_type,
    plan_columns,
    table_columns,
)
from datamesh.specs.product import CdcSource, DataProduct, SinkSettings, Slo, TopicSettings

DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}
ROW = {
    "type": "record",
    "name": "Value",
    "namespace": "studio.public.movies",
    "fields": [
        {"name": "id", "type": ["null", "long"], "default": None},
        {"name": "title", "type": ["null", "string"], "default": None},
        {"name": "budget", "type": ["null", DECIMAL], "default": None},
        {"name": "tags", "type": ["null", {"type": "array", "items": "string"}], "default": None},
    ],
}
ENVELOPE = {
    "type": "record",
    "name": "Envelope",
    "namespace": "studio.public.movies",
    "fields": [
        {"name": "before", "type": ["null", ROW], "default": None},
        {"name": "after", "type": ["null", "Value"], "default": None},
        {"name": "source", "type": {"type": "record", "name": "Source", "fields": []}},
        {"name": "op", "type": "string"},
    ],
}


@pytest.mark.parametrize(
    ("avro", "pg"),
    [
        ("int", "integer"),
        (["null", "long"], "bigint"),
        ("string", "text"),
        ("boolean", "boolean"),
        ("float", "real"),
        ("double", "double precision"),
        ("bytes", "bytea"),
        (DECIMAL, "numeric(12,2)"),
        ({"type": "int", "logicalType": "date"}, "date"),
        ({"type": "long", "logicalType": "timestamp-micros"}, "timestamp without time zone"),
        ({"type": "long", "logicalType": "timestamp-millis"}, "timestamp without time zone"),
        ({"type": "long", "logicalType": "time-micros"}, "time without time zone"),
        ({"type": "string", "logicalType": "uuid"}, "text"),
        ({"type": "enum", "name": "S", "symbols": ["a"]}, "text"),
        ({"type": "array", "items": "int"}, "text"),
        (["null", "int", "string"], "text"),
    ],
)
def test_pg_type(avro: Any, pg: str) -> None:
    assert pg_type(avro) == pg


def test_create_table_sql_keys_not_null_and_primary() -> None:
    columns = table_columns(ROW)
    assert create_table_sql("public", "movie copy", columns, ("id",)) == (
        'CREATE TABLE IF NOT EXISTS "public"."movie copy" (\n'
        '  "id" bigint NOT NULL,\n  "title" text,\n  "budget" numeric(12,2),\n  "tags" text,\n'
        '  PRIMARY KEY ("id")\n)'
    )
    assert add_column_sql("public", "t", ("rating", "integer")) == (
        'ALTER TABLE "public"."t" ADD COLUMN IF NOT EXISTS "rating" integer'
    )


WANTED = [("id", "bigint"), ("title", "text"), ("rating", "integer")]


@pytest.mark.parametrize(
    ("existing", "to_add"),
    [
        ({"id": "bigint", "title": "text", "rating": "integer"}, []),
        ({"id": "bigint", "title": "text"}, [("rating", "integer")]),
        ({"id": "bigint", "title": "text", "rating": "bigint", "extra": "date"}, []),  # wider
    ],
)
def test_plan_columns_adds_only_missing(existing: dict[str, str], to_add: list[Any]) -> None:
    assert plan_columns("db.public.t", existing, ("id",), WANTED, ("id",)) == to_add


def test_plan_columns_refuses_a_type_clash() -> None:
    with pytest.raises(SinkTableMismatch) as err:
        plan_columns("db.public.t", {"id": "bigint", "title": "integer"}, ("id",), WANTED, ("id",))
    text = str(err.value)
    assert all(s in text for s in ("db.public.t", '"title"', "integer", "text", "fix:"))


@pytest.mark.parametrize("existing_key", [(), ("title",), ("id", "title")])
def test_plan_columns_refuses_another_key(existing_key: tuple[str, ...]) -> None:
    with pytest.raises(SinkTableMismatch, match=r"primary key .* upserts on \(id\)"):
        plan_columns("db.public.t", {"id": "bigint"}, existing_key, WANTED, ("id",))


def test_row_schema_is_the_envelopes_after_record_else_declared() -> None:
    assert row_schema(ENVELOPE, None) is ROW
    assert row_schema(ROW, {"fields": []}) is ROW
    assert row_schema(None, ROW) is ROW


def test_jdbc_url_never_carries_the_password() -> None:
    url, user, has_password = jdbc_url(
        "postgresql://svc:s3cret@db.example:6432/postgres?sslmode=require", "serving"
    )
    assert url == "jdbc:postgresql://db.example:6432/serving?user=svc&sslmode=require"
    assert (user, has_password) == ("svc", True)
    assert "s3cret" not in url


def _product(name: str, kind: str, **kw: Any) -> DataProduct:
    return DataProduct(
        domain="studio", name=name, kind=kind, description="d", owners=("team:t",),  # type: ignore[arg-type]
        access="internal", tier=2, slo=Slo(), compatibility="BACKWARD",
        declared_in=Path("studio/products.yaml"), **kw,
    )  # fmt: skip


MOVIES = _product(
    "movies", "cdc", key=("id",), inputs=(), value_schema=ROW,
    topic=TopicSettings(1, 1, -1, "compact"), source=CdcSource("studio", "public", "movies"),
)  # fmt: skip
SERVING = _product(
    "serving", "postgres_sink", key=("id",), inputs=("studio.movies",), value_schema=None,
    topic=None, sink=SinkSettings("upsert", database="serving", table="public.movies"),
)  # fmt: skip
BY_ID = {MOVIES.id: MOVIES, SERVING.id: SERVING}
DSN = "postgresql://svc:s3cret@db:5432/postgres"


def test_sink_job_from_the_registered_envelope() -> None:
    job = sink_job(SERVING, BY_ID, ENVELOPE, DSN)
    assert job.name == "mesh-studio-serving" and job.dlq_topic == "studio.serving.dlq"
    assert job.inputs[0].mode == "changelog" and job.inputs[0].columns[0] == (
        "id",
        "BIGINT NOT NULL",
    )
    assert job.sql == (
        "SELECT `id`, `title`, `budget`, CAST(`tags` AS STRING) AS `tags`\nFROM `studio.movies`"
    )
    assert job.jdbc is not None and job.jdbc.qualified == "public.movies"
    sink = ddl.jdbc_sink_ddl(job)
    assert "'connector' = 'jdbc'" in sink and "PRIMARY KEY (`id`) NOT ENFORCED" in sink
    assert "`tags` STRING" in sink and "s3cret" not in sink and "password" not in sink


def test_sink_job_follows_the_latest_schema() -> None:
    grown = {**ROW, "fields": [*ROW["fields"], {"name": "rating", "type": ["null", "int"]}]}
    before = sink_job(SERVING, BY_ID, ROW, DSN)
    after = sink_job(SERVING, BY_ID, grown, DSN)
    assert "`rating`" in after.sql and ("rating", "INT", "integer") in after.jdbc.columns  # type: ignore[union-attr]
    assert ddl.jdbc_sink_ddl(before) != ddl.jdbc_sink_ddl(after)


def test_sink_job_refuses_a_key_the_input_lacks() -> None:
    other = {**ROW, "fields": ROW["fields"][1:]}
    with pytest.raises(SpecError, match="key column 'id'"):
        sink_job(SERVING, BY_ID, other, DSN)
