"""Iceberg sinks against the real stack: PostgreSQL → CDC connector → Kafka → sink → Iceberg.

The table read back with pyiceberg must equal the PostgreSQL table row for row, through
updates, deletes, a key updated several times in one batch, a key deleted and re-inserted,
a truncate, crashes, concurrent runs and a column added at the source.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from datamesh.sinks.iceberg_sink import IcebergSink, SinkJob
from datamesh.stack.paths import PROJECT_ROOT
from resources.iceberg import IcebergResource
from tests.integration.sinks.conftest import (
    Source,
    await_caught_up,
    normalize,
    snapshot_offsets,
    table_rows,
)

pytestmark = pytest.mark.integration

MOVIES = (
    "CREATE TABLE movies (id bigint PRIMARY KEY, title text NOT NULL, status text,"
    " budget numeric(12,2), updated_at timestamp NOT NULL DEFAULT now())"
)
SCRIPT = [
    "INSERT INTO movies (id, title, status, budget) SELECT g, 'movie ' || g, 'development',"
    " g * 1000.5 FROM generate_series(1, 200) g",
    "UPDATE movies SET status = 'production' WHERE id % 3 = 0",
    "DELETE FROM movies WHERE id % 10 = 0",
    # one key updated several times within the batch: the last image wins
    "UPDATE movies SET title = 'v1' WHERE id = 7",
    "UPDATE movies SET title = 'v2', budget = NULL WHERE id = 7",
    "UPDATE movies SET title = 'v3', status = 'post' WHERE id = 7",
    # deleted and re-inserted within the batch
    "DELETE FROM movies WHERE id = 11",
    "INSERT INTO movies (id, title, status) VALUES (11, 'back again', 'released')",
    # re-inserted a key deleted above (id 20)
    "INSERT INTO movies (id, title, status) VALUES (20, 'twenty', 'released')",
    # primary key change: a delete of 5 and a create of 5000
    "UPDATE movies SET id = 5000 WHERE id = 5",
]


def job_for(src: Source, table: str = "movies", mode: str = "upsert", **kw: Any) -> SinkJob:
    return SinkJob(
        product_id=f"{src.domain}.{table}_table",
        table=f"{src.domain}.{table}_{mode}",
        topic=src.topic(table),
        key=("id",),
        mode=mode,
        envelope=True,
        dlq_topic=f"{src.domain}.{table}_{mode}.dlq",
        **kw,
    )


def source_rows(
    src: Source, columns: str = "id, title, status, budget"
) -> dict[Any, dict[str, Any]]:
    names = [c.strip() for c in columns.split(",")]
    rows = src.run(f"SELECT {columns} FROM movies")
    return {r[0]: {n: normalize(v) for n, v in zip(names, r, strict=True)} for r in rows}


def sink_rows(
    job: SinkJob, columns: str = "id, title, status, budget"
) -> dict[Any, dict[str, Any]]:
    names = [c.strip() for c in columns.split(",")]
    return {k: {n: normalize(row.get(n)) for n in names} for k, row in table_rows(job).items()}


def assert_equal(src: Source, job: SinkJob, columns: str = "id, title, status, budget") -> None:
    want, have = source_rows(src, columns), sink_rows(job, columns)
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    differing = [k for k in want if k in have and want[k] != have[k]]
    assert not (missing or extra or differing), (
        f"missing {missing[:10]}, extra {extra[:10]}, differing "
        f"{[(want[k], have[k]) for k in differing[:5]]}"
    )


def test_upsert_sink_equals_source(
    source: Callable[..., Source], sinks: Callable[..., IcebergSink]
) -> None:
    src = source(MOVIES, "movies")
    job = job_for(src)
    sink = sinks()
    first = SCRIPT[:3]
    for statement in first:
        src.run(statement)
    await_caught_up(src)
    report = sink.run(job)
    assert report.created and report.snapshot_id and report.changes > 0
    assert_equal(src, job)
    for statement in SCRIPT[3:]:
        src.run(statement)
    await_caught_up(src)
    report = sink.run(job)
    # one snapshot per batch, carrying the offsets it consumed
    table = IcebergResource().catalog().load_table(job.table)
    assert len(table.metadata.snapshots) == 2
    assert snapshot_offsets(table) == {str(p): o for p, o in report.offsets_to.items()}
    assert report.upserted and report.deleted and report.newest_event_ms
    assert_equal(src, job)
    assert report.row_count == len(source_rows(src))
    # nothing new: no snapshot
    again = sink.run(job)
    assert again.changes == 0 and again.snapshot_id is None
    assert len(IcebergResource().catalog().load_table(job.table).metadata.snapshots) == 2


def test_append_sink_keeps_every_change(
    source: Callable[..., Source], sinks: Callable[..., IcebergSink]
) -> None:
    src = source(MOVIES, "movies")
    job = job_for(src, mode="append")
    for statement in SCRIPT:
        src.run(statement)
    await_caught_up(src)
    report = sinks().run(job)
    table = IcebergResource().catalog().load_table(job.table)
    rows = table.scan().to_arrow().to_pylist()
    assert report.appended == len(rows)
    ops = [r["_op"] for r in rows]
    assert ops.count("c") == 200 + 2 + 1  # 200 + id 11 + id 20, + the key change's create
    assert ops.count("d") == 20 + 1 + 1  # id % 10, id 11, the key change's delete
    assert len({(r["_partition"], r["_offset"]) for r in rows}) == len(rows)
    assert all(r["_lsn"] and r["_event_time"] for r in rows)
    history_of_7 = [r["title"] for r in sorted(rows, key=lambda r: r["_offset"]) if r["id"] == 7]
    assert history_of_7[-3:] == ["v1", "v2", "v3"]


def test_kill_before_commit_then_rerun(
    source: Callable[..., Source], sinks: Callable[..., IcebergSink], tmp_path: Path
) -> None:
    src = source(MOVIES, "movies")
    job = job_for(src)
    for statement in SCRIPT:
        src.run(statement)
    await_caught_up(src)
    marker = tmp_path / "staged"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(job.__dict__), str(marker)],
        cwd=PROJECT_ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert marker.exists(), "the sink run never reached its commit"
        child.kill()  # SIGKILL: read and staged (data files written), not committed
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    table = IcebergResource().catalog().load_table(job.table)
    assert table.current_snapshot() is None, "a killed run must leave no snapshot"
    sinks().run(job)
    assert_equal(src, job)


_CHILD = """
import json, sys, time
from pathlib import Path
from datamesh import endpoints
from datamesh.kafka_config import client_config
from datamesh.schema_client import SchemaClient
from datamesh.sinks.iceberg_sink import IcebergSink, SinkJob
from resources.iceberg import IcebergResource

def stall():
    Path(sys.argv[2]).touch()
    time.sleep(120)

job = SinkJob(**{k: tuple(v) if isinstance(v, list) else v
                 for k, v in json.loads(sys.argv[1]).items()})
IcebergSink(IcebergResource().catalog(), client_config(endpoints.endpoint("kafka")),
            SchemaClient(endpoints.endpoint("schema_registry")), before_commit=stall).run(job)
"""


@pytest.mark.parametrize("mode", ["upsert", "append"])
def test_concurrent_runs_apply_each_offset_once(
    source: Callable[..., Source], sinks: Callable[..., IcebergSink], mode: str
) -> None:
    src = source(MOVIES, "movies")
    job = job_for(src, mode=mode)
    for statement in SCRIPT:
        src.run(statement)
    await_caught_up(src)
    sinks().ensure_table(job)
    both_staged = threading.Barrier(2, timeout=60)
    reports: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        # Each run waits at its commit for the other: they staged the same offsets, so exactly
        # one commit may win and the other must redo its batch from the new offsets.
        first = {"wait": True}

        def hold() -> None:
            if first.pop("wait", False):
                both_staged.wait()

        try:
            reports.append(sinks(before_commit=hold).run(job))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sorted(r.attempts for r in reports) == [1, 2]
    assert sorted(r.changes for r in reports)[0] == 0  # the loser found nothing left to do
    if mode == "upsert":
        assert_equal(src, job)
    else:
        rows = IcebergResource().catalog().load_table(job.table).scan().to_arrow().to_pylist()
        positions = [(r["_partition"], r["_offset"]) for r in rows]
        assert len(positions) == len(set(positions)) == max(r.appended for r in reports)
