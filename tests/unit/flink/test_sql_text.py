"""Pure pieces of the Flink module: type mapping, generated DDL, error locations (no services)."""

from __future__ import annotations

import pytest

from datamesh.flink import ddl
from datamesh.flink.connections import Connections
from datamesh.flink.job import InputTable, JobSettings, ProcessorJob
from datamesh.flink.types import avro_to_sql, parse_sql_type, sql_to_avro
from datamesh.flink.validate import sql_error

CONN = Connections("http://gw", "http://jm", "http://registry", {"bootstrap.servers": "k:9092"})
MOVIES = InputTable(
    "studio.movies", "studio.public.movies", (("id", "BIGINT NOT NULL"),), ("id",), "changelog"
)


def _job(sql: str = "SELECT id FROM `studio.movies`", **settings: object) -> ProcessorJob:
    return ProcessorJob(
        "studio.ids", "mesh-studio-ids", sql, "studio/ids.sql", (MOVIES,), "studio.ids", ("id",),
        None, "studio/products.yaml", JobSettings(**settings),  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("avro", "sql"),
    [
        ("long", "BIGINT NOT NULL"),
        (["null", "string"], "STRING"),
        ({"type": "long", "logicalType": "timestamp-micros"}, "TIMESTAMP(6) NOT NULL"),
        (["null", {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}],
         "DECIMAL(9, 2)"),
        ({"type": "array", "items": "int"}, "ARRAY<INT NOT NULL> NOT NULL"),
    ],
)  # fmt: skip
def test_avro_to_sql_and_back(avro: object, sql: str) -> None:
    assert avro_to_sql(avro) == sql
    assert sql_to_avro(parse_sql_type(sql), "c") == avro


def test_describe_types_parse() -> None:
    t = parse_sql_type("ROW<`a` BIGINT NOT NULL, `b` TIMESTAMP(3) *ROWTIME*>", nullable=False)
    assert str(t) == "ROW<`a` BIGINT NOT NULL, `b` TIMESTAMP(3)> NOT NULL"
    assert parse_sql_type("TIMESTAMP(3) WITH LOCAL TIME ZONE").root == "TIMESTAMP_LTZ"


def test_generated_ddl_and_hash() -> None:
    job = _job()
    source = ddl.source_ddl(MOVIES, job, CONN)
    assert "'value.format' = 'mesh-debezium-avro'" in source
    assert "'value.mesh-debezium-avro.dlq.topic' = 'studio.ids.dlq'" in source
    assert "'properties.group.id' = 'mesh-studio-ids'" in source
    assert "PRIMARY KEY (`id`) NOT ENFORCED" in source
    assert ddl.session_config(job)["parallelism.default"] == "1"
    once = ddl.Statements(ddl.session_config(job), (source,), ddl.insert_statement(job))
    again = ddl.Statements(ddl.session_config(_job()), (source,), ddl.insert_statement(_job()))
    other = _job("SELECT id FROM `studio.movies` WHERE id > 1")
    changed = ddl.Statements(ddl.session_config(other), (source,), ddl.insert_statement(other))
    assert once.sql_hash == again.sql_hash != changed.sql_hash
    exactly = ddl.session_config(_job(delivery="exactly-once"))
    assert exactly["execution.checkpointing.mode"] == "EXACTLY_ONCE"


def test_error_positions_are_shifted_to_the_sql_file() -> None:
    job = _job("SELECT id,\n  nope\nFROM `studio.movies`")
    err = sql_error(
        job, "From line 3, column 3 to line 3, column 6: Column 'nope' not found in any table"
    )
    assert (err.line, err.position, err.column) == (2, 3, "nope")
    assert str(err).startswith("studio.ids: studio/ids.sql:2:3: column 'nope':")
    no_position = sql_error(job, "Sort on a non-time-attribute field is not supported.")
    assert no_position.line is None and "Sort" in no_position.problem
