"""The heartbeat branch of generated jobs (pure SQL text; the real stack runs it in
tests/integration/heartbeat)."""

from __future__ import annotations

import dataclasses

from datamesh.flink import heartbeat_branch as branch
from datamesh.flink.job import JdbcTarget
from tests.unit.flink.test_sql_text import CONN, MOVIES, _job

BEATING = dataclasses.replace(_job(), heartbeats=("studio.public.movies",))
TARGET = JdbcTarget("jdbc:postgresql://h:5/serving?user=u", "serving", "public", "ids", ())


def test_a_job_without_heartbeats_is_unchanged() -> None:
    job = _job()
    assert branch.source_ddl(job, CONN) == ()
    assert branch.sink_ddl(job, CONN) is None
    assert branch.insert(job) is None
    assert branch.statement_set("INSERT INTO x SELECT 1", None) == "INSERT INTO x SELECT 1"


def test_a_processor_forwards_heartbeat_records_to_its_output_topic() -> None:
    (source,) = branch.source_ddl(BEATING, CONN)
    assert f"'topic' = '{MOVIES.topic}'" in source
    for option in (
        "'key.format' = 'raw'",
        "'value.format' = 'raw'",
        "'scan.startup.mode' = 'latest-offset'",
        "'properties.commit.offsets.on.checkpoint' = 'false'",  # the job's offsets stay the user's
    ):
        assert option in source, option
    sink = branch.sink_ddl(BEATING, CONN)
    assert sink is not None and "'topic' = 'studio.ids'" in sink and "'connector' = 'kafka'" in sink
    dml = branch.insert(BEATING)
    assert dml is not None
    assert dml.startswith("INSERT INTO `__mesh_heartbeat_out`\nSELECT `k`, `v`")
    assert "CHR(127) || 'mesh.heartbeat' || CHR(127)" in dml
    both = branch.statement_set("INSERT INTO `studio.ids`\nSELECT 1", dml)
    assert both.startswith("EXECUTE STATEMENT SET\nBEGIN\nINSERT INTO `studio.ids`")
    assert both.endswith(f"{dml};\nEND")


def test_every_input_is_read_by_the_branch() -> None:
    other = dataclasses.replace(MOVIES, product_id="studio.other", topic="studio.public.other")
    job = dataclasses.replace(BEATING, inputs=(MOVIES, other))
    assert len(branch.source_ddl(job, CONN)) == 2
    dml = branch.insert(job)
    assert dml is not None and dml.count("UNION ALL") == 1


def test_a_postgres_sink_writes_heartbeats_to_its_heartbeat_table_not_its_table() -> None:
    job = dataclasses.replace(BEATING, jdbc=TARGET, output_topic="")
    sink = branch.sink_ddl(job, CONN)
    assert sink is not None
    assert "'table-name' = 'public.mesh_heartbeats'" in sink
    assert "PRIMARY KEY (`sink`, `source`, `seq`) NOT ENFORCED" in sink
    dml = branch.insert(job)
    assert dml is not None and dml.startswith(
        "INSERT INTO `__mesh_heartbeat_out`\nSELECT 'studio.ids'"
    )
    assert "CAST(JSON_VALUE(b, '$.commit_ms') AS BIGINT)" in dml
    assert "FROM 17)" in dml  # the JSON after the 16-byte marker
