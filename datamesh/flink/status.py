"""What a processor job is doing, read from the JobManager REST API."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from datamesh.flink.ddl import HASH_KEY
from datamesh.flink.jobmanager import JobManager, JobSummary

DEAD_LETTER_METRIC = "meshDeadLetters"


@dataclass(frozen=True)
class Checkpoint:
    """A completed checkpoint or savepoint; ``discarded`` once Flink deleted its files (a
    subsumed checkpoint, or the last one of a job that finished)."""

    id: int
    completed_at_ms: int
    path: str | None
    savepoint: bool
    discarded: bool = False


@dataclass(frozen=True)
class JobStatus:
    """A job's state and counters; ``state`` is ``NOT_FOUND`` when no job has the name.

    ``action`` says what the call that returned it did: ``observed``, ``started``,
    ``unchanged``, ``upgraded`` (a changed job restored from a savepoint or checkpoint),
    ``restored`` (the same job restored after the JobManager forgot it), ``restarted-fresh``
    (state dropped, resumed from committed offsets), ``reprocessed`` (state dropped, inputs
    reread), ``stopped``, ``cancelled``. ``restored_from`` is the savepoint or checkpoint the job
    started from; ``on_incompatible`` the declared strategy that was applied because that state
    did not fit (None when it was not needed).
    """

    name: str
    state: str
    job_id: str | None = None
    sql_hash: str | None = None
    restarts: int = 0
    last_checkpoint: Checkpoint | None = None
    last_savepoint: Checkpoint | None = None
    records_in: int = 0
    records_out: int = 0
    dead_letters: int = 0
    action: str = "observed"
    restored_from: str | None = None
    on_incompatible: str | None = None

    @property
    def running(self) -> bool:
        """True while the job is RUNNING."""
        return self.state == "RUNNING"

    def with_action(self, action: str) -> JobStatus:
        """The same status labelled with what was done."""
        return replace(self, action=action)


def read_status(jm: JobManager, name: str) -> JobStatus:
    """The status of the newest job called ``name``."""
    job = jm.latest(name)
    if job is None:
        return JobStatus(name, "NOT_FOUND")
    return job_status(jm, job)


def job_status(jm: JobManager, job: JobSummary) -> JobStatus:
    """Status of one job: hash from its config, counters from its vertices and metrics."""
    detail = jm.get(f"/jobs/{job.job_id}")
    config = jm.get(f"/jobs/{job.job_id}/config").get("execution-config", {})
    checkpoints = _checkpoints(jm, job.job_id)
    records_in = records_out = 0
    dead = 0
    for vertex in detail.get("vertices", []):
        metrics = vertex.get("metrics", {})
        if vertex["name"].startswith("Source:"):
            records_in += int(metrics.get("read-records", 0))
            if job.active:
                dead += _dead_letters(jm, job.job_id, vertex["id"])
        if ": Writer" in vertex["name"]:
            records_out += int(metrics.get("write-records", 0))
    restarts = 0
    if job.active:
        restarts = int(jm.metrics(job.job_id, ["numRestarts"]).get("numRestarts", 0))
    return JobStatus(
        name=job.name,
        state=job.state,
        job_id=job.job_id,
        sql_hash=config.get("user-config", {}).get(HASH_KEY),
        restarts=restarts,
        last_checkpoint=checkpoints.get("completed"),
        last_savepoint=checkpoints.get("savepoint"),
        records_in=records_in,
        records_out=records_out,
        dead_letters=dead,
    )


def _checkpoints(jm: JobManager, job_id: str) -> dict[str, Checkpoint]:
    latest: dict[str, Any] = jm.get(f"/jobs/{job_id}/checkpoints").get("latest", {})
    out = {}
    for kind in ("completed", "savepoint"):
        c = latest.get(kind)
        if c:
            out[kind] = Checkpoint(
                int(c["id"]),
                int(c.get("latest_ack_timestamp", 0)),
                c.get("external_path"),
                bool(c.get("is_savepoint", kind == "savepoint")),
                bool(c.get("discarded", False)),
            )
    return out


def _dead_letters(jm: JobManager, job_id: str, vertex_id: str) -> int:
    names = [m for m in jm.vertex_metric_ids(job_id, vertex_id) if m.endswith(DEAD_LETTER_METRIC)]
    return int(sum(jm.vertex_metric_sums(job_id, vertex_id, names).values()))
