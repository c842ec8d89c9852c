"""Submit a job's statements through the SQL Gateway and wait until every task runs.

A restore the state does not fit is raised as :class:`JobStateIncompatible`, recognised from the
structure of Flink's answer (:mod:`datamesh.flink.incompatible`): the gateway's refusal of the
INSERT (the JobMaster could not map the state), else the failed job's ``/jobs/{id}/exceptions``
(a task could not restore it). Any other failure is :class:`JobFailed`; a job that fails to start
is cancelled either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datamesh.flink import incompatible
from datamesh.flink.errors import JobFailed, JobStateIncompatible
from datamesh.flink.first_checkpoint import all_tasks_running, failure_cause
from datamesh.flink.gateway import SqlGateway, StatementError
from datamesh.flink.jobmanager import JobManager

log = logging.getLogger("datamesh.flink")
_FAILING = frozenset({"FAILED", "FAILING", "RESTARTING", "CANCELED", "CANCELLING"})


@dataclass(frozen=True)
class Submission:
    """What one deployment runs: session configuration (with its hash), DDL, then the INSERT."""

    name: str
    config: Mapping[str, str]
    ddl: tuple[str, ...]
    insert: str

    def to_json(self) -> dict[str, Any]:
        """Plain JSON form (kept in the job's record to roll back to)."""
        return {
            "name": self.name,
            "config": dict(self.config),
            "ddl": list(self.ddl),
            "insert": self.insert,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Submission:
        """Inverse of :meth:`to_json`."""
        return cls(str(data["name"]), dict(data["config"]), tuple(data["ddl"]), str(data["insert"]))


def submit(
    gateway: SqlGateway,
    jm: JobManager,
    sub: Submission,
    restore: str | None,
    timeout_s: float,
) -> str:
    """Run ``sub`` (restoring ``restore`` when set) and return the job id once it runs."""
    config = dict(sub.config)
    if restore:
        config["execution.state-recovery.path"] = restore
    submitted_at_ms = int(time.time() * 1000)
    with gateway.session(config, name=f"deploy {sub.name}") as session:
        for statement in sub.ddl:
            session.execute(statement)
        try:
            job_id = session.execute(sub.insert).job_id
        except StatementError as exc:
            # State the new plan has no operator for is refused while the JobMaster starts.
            cause = incompatible.state_incompatibility(exc.trace)
            cause = cause or _failed_job_incompatibility(jm, sub.name, submitted_at_ms)
            if restore and cause:
                raise JobStateIncompatible(sub.name, restore, incompatible.describe(cause)) from exc
            raise
    if not job_id:
        raise JobFailed(sub.name, "?", "the gateway returned no job id for the INSERT")
    log.info("%s: submitted job %s (restore %s)", sub.name, job_id, restore)
    _await_running(jm, sub.name, job_id, restore, timeout_s)
    return job_id


def _await_running(
    jm: JobManager, name: str, job_id: str, restore: str | None, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        detail = jm.get(f"/jobs/{job_id}")
        state = str(detail.get("state"))
        if state == "RUNNING" and all_tasks_running(detail):
            return
        if state in _FAILING:
            exceptions = jm.get(f"/jobs/{job_id}/exceptions")
            first = next(incompatible.traces(exceptions), "")
            if first or state in ("FAILED", "CANCELED"):
                _stop_quietly(jm, job_id)
                cause = incompatible.job_incompatibility(exceptions)
                if restore and cause:
                    raise JobStateIncompatible(name, restore, incompatible.describe(cause))
                raise JobFailed(name, job_id, failure_cause(exceptions) or f"the job went {state}")
        time.sleep(0.3)
    _stop_quietly(jm, job_id)
    raise JobFailed(name, job_id, f"not RUNNING after {timeout_s:.0f}s")


def _failed_job_incompatibility(
    jm: JobManager, name: str, since_ms: int
) -> incompatible.Cause | None:
    """The incompatibility reported by the job the refused INSERT created, if it exists."""
    for job in jm.jobs():
        if job.name == name and job.state == "FAILED" and job.start_time_ms >= since_ms - 1000:
            return incompatible.job_incompatibility(jm.get(f"/jobs/{job.job_id}/exceptions"))
    return None


def _stop_quietly(jm: JobManager, job_id: str) -> None:
    jm.cancel(job_id)
    jm.wait_for_end(job_id)
