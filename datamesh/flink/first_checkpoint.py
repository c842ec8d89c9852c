"""Prove a new job before its predecessor is given up: RUNNING with every task, and a first
completed checkpoint of its own after the restore, with no failure meanwhile.

What Flink 2.2 shows while a restored job starts (recorded in tests/unit/flink/payloads/restore_*):

- ``GET /jobs/{id}``: ``state`` is RUNNING before every vertex is — a stateful operator stays
  INITIALIZING while it restores its state; each vertex counts its subtasks per state in ``tasks``.
- ``GET /jobs/{id}/checkpoints``: ``latest.restored`` is the savepoint the job started from and
  ``latest.completed`` stays null until the job's own first checkpoint completes. A checkpoint
  triggered while a task still restores fails as declined ("tasks not ready") and is simply
  retried, so a failed checkpoint is no verdict by itself: one Flink counts against the job
  (``execution.checkpointing.tolerable-failed-checkpoints`` defaults to 0) fails the job, which
  the states and exceptions below show; one that keeps failing leaves no completed checkpoint
  before the deadline, and the last failure message is named then.
- ``GET /jobs/{id}/exceptions``: every failure of the job (``exceptionHistory.entries``, newest
  first). A task failing on a record — a division by zero, a CAST of a string that is no number —
  is an entry whose root cause names it, wrapped by the operator chain it ran in
  (``java.io.IOException: Failed to deserialize consumer record`` when chained to the Kafka
  source), and the job goes RESTARTING (exponential-delay restarts, without end).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from datamesh.flink import incompatible
from datamesh.flink.errors import JobFailed, JobStateIncompatible
from datamesh.flink.jobmanager import JobManager

Outcome = Literal["waiting", "proven", "failed"]

# Job states a new job passes through on its way to RUNNING; any other state is a failure.
STARTING = frozenset({"INITIALIZING", "CREATED", "RUNNING", "RECONCILING"})
# How long a job may take to complete its first checkpoint once submitted: the first one is
# triggered after a random delay of up to one interval, a declined one is retried an interval
# later, and restoring large state or a slow checkpoint needs a margin.
INTERVALS = 3
MARGIN_S = 30.0


@dataclass(frozen=True)
class Verdict:
    """``proven`` (``checkpoint_id`` is the first completed checkpoint), ``failed`` (``detail``
    is the cause) or ``waiting`` (``detail`` says on what)."""

    outcome: Outcome
    detail: str
    checkpoint_id: int | None = None


def deadline_s(checkpoint_interval_ms: int) -> float:
    """How long a new job gets to complete its first checkpoint."""
    return INTERVALS * checkpoint_interval_ms / 1000 + MARGIN_S


def verdict(
    job: Mapping[str, Any], checkpoints: Mapping[str, Any], exceptions: Mapping[str, Any]
) -> Verdict:
    """Judge a new job from ``/jobs/{id}``, ``/jobs/{id}/checkpoints`` and
    ``/jobs/{id}/exceptions``: any reported failure or a state off the way to RUNNING fails it;
    RUNNING with every task and a completed checkpoint of its own proves it."""
    state = str(job.get("state"))
    cause = failure_cause(exceptions)
    if cause is not None:
        return Verdict("failed", cause)
    if state not in STARTING:
        return Verdict("failed", f"the job went {state}")
    if state != "RUNNING" or not all_tasks_running(job):
        return Verdict("waiting", f"{state}, tasks {_task_states(job)}")
    # A new job's own checkpoints only: the one it restored is ``latest.restored``.
    latest = checkpoints.get("latest") or {}
    completed = latest.get("completed")
    if completed:
        return Verdict("proven", f"checkpoint {completed['id']}", int(completed["id"]))
    failed = latest.get("failed")
    last = f"; checkpoint {failed['id']} failed: {failed.get('failure_message')}" if failed else ""
    return Verdict("waiting", f"no checkpoint completed yet{last}")


def failure_cause(exceptions: Mapping[str, Any]) -> str | None:
    """The first failure a job reported, as its root cause's line and the task it happened in
    (``java.lang.ArithmeticException: / by zero (in Source: a.orders[38] -> Calc[39] ...)``);
    None when the job reported none."""
    entries = (exceptions.get("exceptionHistory") or {}).get("entries") or []
    if not entries:
        return None
    first = entries[-1]  # newest first: the last entry is what went wrong first
    trace = str(first.get("stacktrace") or first.get("exceptionName") or "unknown failure")
    heads = [
        line.strip().removeprefix("Caused by: ")
        for line in trace.splitlines()
        if line.strip() and not line.strip().startswith(("at ", "..."))
    ]
    root = heads[-1] if heads else trace.strip()
    task = first.get("taskName")
    return f"{root} (in {task})" if task else root


def all_tasks_running(job: Mapping[str, Any]) -> bool:
    """True when every subtask of every vertex of ``/jobs/{id}`` is RUNNING."""
    vertices = job.get("vertices")
    if not isinstance(vertices, list) or not vertices:
        return False
    return all(v["tasks"].get("RUNNING", 0) == v["parallelism"] for v in vertices)


def await_first_checkpoint(
    jm: JobManager, name: str, job_id: str, interval_ms: int, restore: str | None
) -> int:
    """Poll job ``job_id`` until :func:`verdict` proves it; return its first checkpoint's id.
    A failure, or no checkpoint by :func:`deadline_s`, cancels the job and raises
    :class:`JobFailed` naming the cause — :class:`JobStateIncompatible` when the job failed
    because the state it restored from ``restore`` does not fit it."""
    timeout_s = deadline_s(interval_ms)
    deadline = time.monotonic() + timeout_s
    seen = Verdict("waiting", "not observed")
    exceptions: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = jm.get(f"/jobs/{job_id}")
        checkpoints = jm.get(f"/jobs/{job_id}/checkpoints")
        exceptions = jm.get(f"/jobs/{job_id}/exceptions")
        seen = verdict(job, checkpoints, exceptions)
        if seen.outcome == "proven":
            assert seen.checkpoint_id is not None
            return seen.checkpoint_id
        if seen.outcome == "failed":
            break
        time.sleep(0.3)
    jm.cancel(job_id)
    jm.wait_for_end(job_id)
    if seen.outcome != "failed":
        timed_out = f"no checkpoint completed within {timeout_s:.0f}s ({seen.detail})"
        raise JobFailed(name, job_id, timed_out)
    misfit = incompatible.job_incompatibility(exceptions)
    if restore and misfit:
        raise JobStateIncompatible(name, restore, incompatible.describe(misfit))
    raise JobFailed(name, job_id, seen.detail)


def _task_states(job: Mapping[str, Any]) -> str:
    counts: dict[str, int] = {}
    for vertex in job.get("vertices") or []:
        for state, n in (vertex.get("tasks") or {}).items():
            if n:
                counts[state] = counts.get(state, 0) + int(n)
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"
