"""The platform's own record of a job's savepoints and checkpoints, and the restore choice."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

from datamesh.flink import record
from datamesh.flink.jobmanager import JobManager
from datamesh.flink.record import JobRecord, StatePoint
from datamesh.flink.status import Checkpoint, JobStatus, _checkpoints

PAYLOADS = Path(__file__).parent / "payloads"


class _Rest:
    """Answers GET with a recorded payload."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def get(self, path: str) -> dict[str, Any]:
        return self.payload


def _checkpoint_dir(root: Path, job_id: str, done: list[int], partial: int | None = None) -> Path:
    job_dir = root / "checkpoints" / job_id
    for n in done:
        (job_dir / f"chk-{n}").mkdir(parents=True)
        (job_dir / f"chk-{n}" / "_metadata").write_bytes(b"x")
    if partial is not None:  # being written: no _metadata yet
        (job_dir / f"chk-{partial}").mkdir(parents=True)
    return job_dir


def test_save_is_atomic_and_round_trips(tmp_path: Path) -> None:
    rec = JobRecord(
        "mesh-a-b",
        "j1",
        "h1",
        savepoint=StatePoint("file:/s/savepoint-1", 5, True),
        statements={"name": "mesh-a-b", "config": {}, "ddl": [], "insert": "INSERT"},
    )
    saved = record.save(rec, tmp_path)
    assert saved.updated_at_ms > 0
    assert record.load("mesh-a-b", tmp_path) == saved
    assert [p.name for p in tmp_path.iterdir()] == ["mesh-a-b.json"]  # no temporary left
    assert json.loads((tmp_path / "mesh-a-b.json").read_text())["sql_hash"] == "h1"
    assert record.load("unknown", tmp_path) is None


def test_observed_records_newer_points_only_and_never_discarded_ones(tmp_path: Path) -> None:
    def status(checkpoint: Checkpoint | None, savepoint: Checkpoint | None = None) -> JobStatus:
        return JobStatus(
            "job", "RUNNING", "j1", "h1", last_checkpoint=checkpoint, last_savepoint=savepoint
        )

    first = record.observed(status(Checkpoint(3, 300, "file:/c/j1/chk-3", False)), tmp_path)
    assert first is not None and first.checkpoint == StatePoint("file:/c/j1/chk-3", 300, False)
    assert first.checkpoint_dir == "file:/c/j1"
    older = record.observed(status(Checkpoint(2, 200, "file:/c/j1/chk-2", False)), tmp_path)
    assert older is not None and older.checkpoint == first.checkpoint
    gone = Checkpoint(4, 400, "file:/c/j1/chk-4", False, discarded=True)
    after = record.observed(status(gone, Checkpoint(5, 500, "file:/s/sp-5", True)), tmp_path)
    assert after is not None and after.checkpoint == first.checkpoint
    assert after.savepoint == StatePoint("file:/s/sp-5", 500, True)


def test_checkpoints_of_a_recorded_rest_payload() -> None:
    jm = cast(JobManager, _Rest(json.loads((PAYLOADS / "checkpoints_after_stop.json").read_text())))
    points = _checkpoints(jm, "a98745462048716840fc81e83464be6d")
    assert points["completed"].discarded and points["completed"].path
    assert points["completed"].path.endswith("/chk-10")
    assert not points["savepoint"].discarded and points["savepoint"].savepoint
    running = cast(
        JobManager, _Rest(json.loads((PAYLOADS / "checkpoints_running.json").read_text()))
    )
    assert not _checkpoints(running, "a98745462048716840fc81e83464be6d")["completed"].discarded


def test_restore_point_is_the_newest_that_still_exists(tmp_path: Path) -> None:
    job_dir = _checkpoint_dir(tmp_path, "j1", [7, 8], partial=9)
    savepoint = tmp_path / "savepoints" / "savepoint-1"
    savepoint.mkdir(parents=True)
    (savepoint / "_metadata").write_bytes(b"x")
    os.utime(job_dir / "chk-8" / "_metadata", (2_000, 2_000))
    rec = JobRecord(
        "job",
        "j1",
        savepoint=StatePoint(f"file:{savepoint}", 1_000_000, True),
        checkpoint=StatePoint(f"file:{job_dir}/chk-3", 900_000, False),  # subsumed: deleted
        checkpoint_dir=f"file://{job_dir}",
    )
    # chk-8 completed (2,000 s) after the savepoint (1,000 s); chk-9 has no _metadata yet.
    point = record.restore_point(rec)
    assert point == StatePoint(f"file:{job_dir}/chk-8", 2_000_000, False)
    assert record.restore_point(JobRecord("job", savepoint=rec.savepoint)) == rec.savepoint
    assert record.restore_point(JobRecord("job", checkpoint=rec.checkpoint)) is None


def test_a_remote_path_is_assumed_to_exist() -> None:
    remote = StatePoint("s3://bucket/flink/j1/chk-4", 10, False)
    assert record.restore_point(JobRecord("job", checkpoint=remote)) == remote
    assert record.newest_checkpoint("s3://bucket/flink/j1") is None


def test_started_keeps_earlier_points_as_fallbacks(tmp_path: Path) -> None:
    sp = StatePoint("file:/s/sp-1", 1, True)
    record.save(JobRecord("job", "j1", "h1", savepoint=sp), tmp_path)
    rec = record.started("job", "j2", "h2", {"insert": "x"}, "file:/c/j2", tmp_path)
    assert (rec.job_id, rec.sql_hash, rec.savepoint, rec.checkpoint_dir) == (
        "j2",
        "h2",
        sp,
        "file:/c/j2",
    )
