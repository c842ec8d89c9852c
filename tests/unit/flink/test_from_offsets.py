"""``from-offsets`` starts without state from the group's committed offsets, and says so when an
input has none (it is then read from its beginning); the running job's commit is awaited only on
the inputs it reads."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from datamesh.flink import ddl, offsets, record
from datamesh.flink.connections import Connections
from datamesh.flink.deploy import FlinkJobs
from datamesh.flink.job import InputTable, ProcessorJob
from datamesh.flink.jobmanager import JobSummary
from datamesh.flink.status import JobStatus
from datamesh.flink.submit import Submission
from datamesh.flink.validate import Plan

CONN = Connections(
    "http://gateway", "http://jobmanager", "http://registry", {"bootstrap.servers": "k:9"}
)
NAME = "mesh-d-totals"


def _input(topic: str, mode: str) -> InputTable:
    return InputTable(topic, topic, (("id", "BIGINT"),), ("id",), mode)  # type: ignore[arg-type]


def _plan(*inputs: InputTable) -> Plan:
    job = ProcessorJob(
        "d.totals", NAME, "SELECT 1", "t.sql", inputs, "d.totals", (), None, "p.yaml"
    )
    return Plan(job, (), "append", {}, None, ddl.Statements({}, (), ""))


@pytest.mark.parametrize(
    ("missing", "action"), [([], "restarted-fresh"), (["d.orders"], "reprocessed")]
)
def test_from_offsets_says_which_inputs_are_read_from_their_beginning(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    missing: list[str],
    action: str,
) -> None:
    asked: list[tuple[str, list[str]]] = []

    def uncommitted(conn: Connections, group: str, topics: Sequence[str]) -> list[str]:
        asked.append((group, list(topics)))
        return missing

    monkeypatch.setattr(offsets, "uncommitted", uncommitted)
    monkeypatch.setattr(FlinkJobs, "_start", lambda self, plan, prove: JobStatus(NAME, "RUNNING"))
    plan = _plan(_input("d.orders", "append"), _input("d.users", "upsert"))
    with caplog.at_level(logging.WARNING, logger="datamesh.flink"):
        status = FlinkJobs(CONN)._from_offsets(plan, prove=True)
    assert asked == [(NAME, ["d.orders"])]  # upsert inputs are always reread
    assert status.action == action and status.on_incompatible == "from-offsets"
    said = f"consumer group {NAME} has no committed offsets on d.orders" in caplog.text
    assert said == bool(missing)


def test_the_commit_is_awaited_only_on_inputs_the_running_job_reads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    old = _input("d.orders", "append")
    source = ddl.source_ddl(old, _plan(old).job, CONN)
    statements = Submission(NAME, {}, (source,), "INSERT").to_json()
    record.started(NAME, "j1", "h1", statements, None)
    running = JobSummary("j1", NAME, "RUNNING", 0, -1)
    jobs = FlinkJobs(CONN)
    assert jobs._read_by(running, ["d.orders", "d.returns"]) == ["d.orders"]
    forgotten = JobSummary("j2", NAME, "RUNNING", 0, -1)  # no record of it: wait on every input
    assert jobs._read_by(forgotten, ["d.orders", "d.returns"]) == ["d.orders", "d.returns"]
