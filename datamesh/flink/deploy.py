"""Deploy, observe, stop, upgrade and cancel Flink jobs — the module the Flink resource wraps.

Jobs are planned and submitted through the SQL Gateway and managed through the JobManager REST
API. Each job carries its identity in its own configuration (``pipeline.name`` = the stable job
name, ``pipeline.global-job-parameters`` = the hash of its statements), so Flink itself is the
record of what runs:

- ``deploy`` is idempotent: the same declaration and SQL (same hash) running → nothing new.
  A different hash running → ``upgrade``. Nothing running → start, restoring the savepoint the
  previous run was stopped with, if any.
- ``upgrade`` stops the running job with a savepoint and starts the new one from it. When the
  savepoint does not fit the new plan (changed stateful operators), the explicit
  ``on_incompatible`` strategy applies and is logged: ``from-offsets`` (default: drop state, resume
  from the offsets the old job committed on its last checkpoint), ``reprocess`` (drop state,
  reread the inputs from the beginning — rebuilds aggregates from compacted CDC topics) or
  ``fail`` (raise; the old job stays stopped with its savepoint).
- A ``postgres_sink`` job (``ProcessorJob.jdbc``) goes the same way; its provisioning creates the
  dead-letter topic and the PostgreSQL database/schema/table, or adds the columns an upstream
  change brought (:mod:`datamesh.sinks.postgres`; a clash raises before anything is stopped or
  started). When columns were added, the new job starts without state from the beginning of its
  input instead of from the savepoint: the changes carrying the new column may already be behind
  the old job's offsets, and rereading converges because the sink upserts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Literal

from datamesh import endpoints, names
from datamesh.flink import ddl
from datamesh.flink.connections import Connections, resolve
from datamesh.flink.errors import JobFailed, JobStateIncompatible
from datamesh.flink.gateway import SqlGateway, StatementError
from datamesh.flink.job import ProcessorJob
from datamesh.flink.jobmanager import JobManager, JobSummary
from datamesh.flink.status import Checkpoint, JobStatus, job_status, read_status
from datamesh.flink.validate import Plan, plan_job
from datamesh.kafka_admin import TopicAdmin
from datamesh.kafka_config import client_config
from datamesh.schema_client import SchemaClient
from datamesh.sinks import postgres
from datamesh.specs.product import TopicSettings
from datamesh.topic_apply import ensure_topic

Strategy = Literal["from-offsets", "reprocess", "fail"]
log = logging.getLogger("datamesh.flink")

_INCOMPATIBLE = (
    "Cannot map checkpoint/savepoint state",
    "StateMigrationException",
    "is not compatible",
    "incompatible",
)
_WEEK_MS = 7 * 86_400_000
_FAILING = frozenset({"FAILED", "FAILING", "RESTARTING", "CANCELED", "CANCELLING"})


class FlinkJobs:
    """Processor jobs on one Flink cluster (embedded or ``MESH_FLINK_REST_URL``)."""

    def __init__(self, conn: Connections | None = None, start_timeout_s: float = 120.0) -> None:
        self.conn = conn or resolve()
        self.gateway = SqlGateway(self.conn.gateway_url)
        self.jm = JobManager(self.conn.flink_rest_url)
        self.start_timeout_s = start_timeout_s

    def validate(self, job: ProcessorJob) -> Plan:
        """Plan ``job`` without deploying anything (raises ``SqlValidationError``)."""
        return plan_job(job, self.gateway, self.conn)

    def deploy(
        self,
        job: ProcessorJob,
        on_incompatible: Strategy = "from-offsets",
        restore_from: str | None = None,
    ) -> JobStatus:
        """Make ``job`` run as declared; see the module docstring for what that does."""
        plan = self.validate(job)
        current = self.jm.latest(job.name)
        if current is not None and current.active:
            status = job_status(self.jm, current)
            if status.sql_hash == plan.sql_hash:
                log.info("%s: already running with hash %s", job.name, plan.sql_hash)
                return status.with_action("unchanged")
            return self._upgrade(plan, current, on_incompatible)
        if self._provision(plan):
            return self._reread(plan)
        savepoint = restore_from or (self._savepoint_of(current) if current else None)
        if savepoint:
            return self._start_from(plan, savepoint, on_incompatible)
        return self._start(plan).with_action("started")

    def upgrade(self, job: ProcessorJob, on_incompatible: Strategy = "from-offsets") -> JobStatus:
        """Stop the running job with a savepoint and start ``job`` from it (even if unchanged)."""
        plan = self.validate(job)
        current = self.jm.latest(job.name)
        if current is None or not current.active:
            return self.deploy(job, on_incompatible)
        return self._upgrade(plan, current, on_incompatible)

    def status(self, name: str) -> JobStatus:
        """State, restarts, last checkpoint and counters of the newest job called ``name``."""
        return read_status(self.jm, name)

    def stop_with_savepoint(self, name: str) -> JobStatus:
        """Stop the running job with a savepoint; the status's ``last_savepoint`` has its path."""
        current = self.jm.latest(name)
        if current is None or not current.active:
            return read_status(self.jm, name).with_action("unchanged")
        path = self.jm.stop_with_savepoint(current.job_id)
        log.info("%s: stopped with savepoint %s", name, path)
        self.jm.wait_for_end(current.job_id)
        deadline = time.monotonic() + 10  # checkpoint statistics are updated asynchronously
        status = read_status(self.jm, name)
        while (status.last_savepoint is None or status.last_savepoint.path != path) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
            status = read_status(self.jm, name)
        if status.last_savepoint is None or status.last_savepoint.path != path:
            status = replace(
                status, last_savepoint=Checkpoint(-1, int(time.time() * 1000), path, True)
            )
        return status.with_action("stopped")

    def cancel(self, name: str) -> JobStatus:
        """Cancel every active job called ``name`` (no savepoint; checkpoints are retained)."""
        for job in self.jm.jobs():
            if job.name == name and job.active:
                self.jm.cancel(job.job_id)
                self.jm.wait_for_end(job.job_id)
                log.info("%s: cancelled job %s", name, job.job_id)
        return read_status(self.jm, name).with_action("cancelled")

    # -- internals ---------------------------------------------------------------------------

    def _upgrade(self, plan: Plan, current: JobSummary, strategy: Strategy) -> JobStatus:
        reread = self._provision(plan)
        savepoint = self.jm.stop_with_savepoint(current.job_id)
        self.jm.wait_for_end(current.job_id)
        log.info("%s: stopped %s with savepoint %s", plan.job.name, current.job_id, savepoint)
        if reread:
            return self._reread(plan)
        return self._start_from(plan, savepoint, strategy)

    def _reread(self, plan: Plan) -> JobStatus:
        """Start without state from the beginning of the input: the sink table gained columns,
        and the changes that carry them may already be behind the old job's offsets. Upserts
        are idempotent, so the table converges."""
        log.warning(
            "%s: the sink table gained columns; rereading the input from the beginning",
            plan.job.name,
        )
        return self._start(plan, reprocess=True).with_action("reprocessed")

    def _start_from(self, plan: Plan, savepoint: str, strategy: Strategy) -> JobStatus:
        try:
            return self._start(plan, restore=savepoint).with_action("upgraded")
        except JobStateIncompatible as exc:
            if strategy == "fail":
                raise
            what = (
                "resuming from the offsets it committed on its last checkpoint"
                if strategy == "from-offsets"
                else "rereading its inputs from the beginning"
            )
            log.warning(
                "%s: the savepoint does not fit the new plan (%s); strategy %r: starting "
                "without state, %s",
                plan.job.name,
                exc.cause.splitlines()[0][:300],
                strategy,
                what,
            )
            action = "restarted-fresh" if strategy == "from-offsets" else "reprocessed"
            return self._start(plan, reprocess=strategy == "reprocess").with_action(action)

    def _start(self, plan: Plan, restore: str | None = None, reprocess: bool = False) -> JobStatus:
        job = plan.job
        config = ddl.with_hash(plan.statements.config, plan.sql_hash, job)
        if restore:
            config["execution.state-recovery.path"] = restore
        statements = list(plan.statements.ddl)
        if reprocess:
            statements[: len(job.inputs)] = [
                ddl.source_ddl(i, job, self.conn, startup="earliest-offset") for i in job.inputs
            ]
        with self.gateway.session(config, name=f"deploy {job.name}") as session:
            for statement in statements:
                session.execute(statement)
            try:
                job_id = session.execute(plan.statements.insert).job_id
            except StatementError as exc:
                # Unmatched operator state is refused at submission, before the job exists.
                if restore and _incompatible(exc.cause):
                    raise JobStateIncompatible(job.name, restore, exc.cause) from exc
                raise
        if not job_id:
            raise JobFailed(job.name, "?", "the gateway returned no job id for the INSERT")
        log.info(
            "%s: submitted job %s (hash %s, restore %s)", job.name, job_id, plan.sql_hash, restore
        )
        self._await_running(job.name, job_id, restore)
        return job_status(self.jm, self._summary(job_id))

    def _await_running(self, name: str, job_id: str, restore: str | None) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            detail = self.jm.get(f"/jobs/{job_id}")
            state = str(detail.get("state"))
            if state == "RUNNING" and _all_tasks_running(detail):
                return
            if state in _FAILING:
                cause = self._root_cause(job_id)
                if cause or state in ("FAILED", "CANCELED"):
                    self._stop_quietly(job_id)
                    if restore and _incompatible(cause):
                        raise JobStateIncompatible(name, restore, cause)
                    raise JobFailed(name, job_id, cause or state)
            time.sleep(0.3)
        self._stop_quietly(job_id)
        raise JobFailed(name, job_id, f"not RUNNING after {self.start_timeout_s:.0f}s")

    def _root_cause(self, job_id: str) -> str:
        info = self.jm.get(f"/jobs/{job_id}/exceptions")
        entries = (info.get("exceptionHistory") or {}).get("entries") or []
        if entries:
            return str(entries[0].get("stacktrace") or entries[0].get("exceptionName") or "")
        return str(info.get("root-exception") or "")

    def _stop_quietly(self, job_id: str) -> None:
        self.jm.cancel(job_id)
        self.jm.wait_for_end(job_id)

    def _summary(self, job_id: str) -> JobSummary:
        return next(j for j in self.jm.jobs() if j.job_id == job_id)

    def _savepoint_of(self, job: JobSummary) -> str | None:
        """The savepoint a finished run was stopped with (while the JobManager remembers it)."""
        if job.state != "FINISHED":
            return None
        status = job_status(self.jm, job)
        return status.last_savepoint.path if status.last_savepoint else None

    def _provision(self, plan: Plan) -> bool:
        """Register the output schemas, then create the output and dead-letter topics; for a
        ``postgres_sink``, the dead-letter topic and the PostgreSQL table (refusals raise here,
        before a running job is stopped or a new one started). True when an existing sink
        table gained columns (the input must then be reread)."""
        job = plan.job
        if job.jdbc is not None:
            return self._provision_table(job)
        registry = SchemaClient(self.conn.registry_url, self.conn.registry_user_info)
        registry.register(names.value_subject(job.output_topic), plan.value_schema)
        if plan.key_schema is not None:
            registry.register(names.key_subject(job.output_topic), plan.key_schema)
        admin = TopicAdmin(client_config(self.conn.bootstrap))
        settings = job.topic or TopicSettings(1, 1, _WEEK_MS, "delete")
        if plan.sink_mode == "upsert" and "compact" not in settings.cleanup_policy:
            log.warning("%s: updating results on a topic without compaction", job.name)
        ensure_topic(admin, job.output_topic, settings, job.declared_in)
        dlq = TopicSettings(1, settings.replication_factor, settings.retention_ms, "delete")
        ensure_topic(admin, job.dlq_topic, dlq, job.declared_in)
        return False

    def _provision_table(self, job: ProcessorJob) -> bool:
        target = job.jdbc
        assert target is not None
        admin = TopicAdmin(client_config(self.conn.bootstrap))
        ensure_topic(admin, job.dlq_topic, TopicSettings(1, 1, _WEEK_MS, "delete"), job.declared_in)
        applied = postgres.ensure_table(
            endpoints.endpoint("postgres"),
            target.database,
            target.schema,
            target.table,
            [(n, pg) for n, _, pg in target.columns],
            job.key,
        )
        for statement in applied:
            log.info("%s: %s", job.name, statement.splitlines()[0])
        return any(s.startswith("ALTER TABLE") for s in applied)


def _incompatible(cause: str) -> bool:
    return any(marker in cause for marker in _INCOMPATIBLE)


def _all_tasks_running(detail: dict[str, object]) -> bool:
    vertices = detail.get("vertices")
    if not isinstance(vertices, list) or not vertices:
        return False
    return all(v["tasks"].get("RUNNING", 0) == v["parallelism"] for v in vertices)
