"""Deploy, observe, stop, upgrade and cancel Flink jobs — the module the Flink resource wraps.

Jobs are planned and submitted through the SQL Gateway and managed through the JobManager REST
API. Each job carries its identity in its own configuration (``pipeline.name`` = the stable job
name, ``pipeline.global-job-parameters`` = the hash of its statements), and the platform keeps
its own record of every job's savepoints and checkpoints (:mod:`datamesh.flink.record`), which
outlives the JobManager's memory:

- ``deploy`` is idempotent: the same declaration and SQL (same hash) running → nothing new.
  A different hash running → ``upgrade``. Nothing running (stopped, cancelled, or forgotten by a
  restarted JobManager) → start, restoring the newest recorded savepoint or retained checkpoint.
- ``upgrade`` stops the running job with a savepoint and starts the new one from it; under
  ``from-offsets`` it first waits (bounded) until the job's group committed the end of its inputs,
  since Flink's Kafka source commits late and a stop drops the pending commit. When the
  state does not fit the new plan (changed stateful operators or state types, recognised from
  Flink's exception classes), the declared ``on_incompatible`` strategy applies, and the log and
  the returned status (``on_incompatible``) say so: ``from-offsets`` (default: start without
  state from the offsets the job's group committed to Kafka; inputs without committed offsets,
  and ``upsert`` inputs, are read from their beginning and the status says ``reprocessed``),
  ``reprocess`` (start without state, rereading the inputs from the beginning —
  rebuilds aggregates from compacted CDC topics) or ``fail`` (raise;
  the previous deployment is started again from the same state, so nothing is lost). A stateful
  job is never started without its state otherwise.
- A way back: however an upgrade (or a deploy restoring a changed deployment from a recorded
  savepoint) starts the new job, the new job must prove itself before the platform records it —
  RUNNING with every task and its first checkpoint completed, with no failure meanwhile, within a
  few checkpoint intervals (:mod:`datamesh.flink.first_checkpoint`). When it fails (a runtime
  error on real data, a failed checkpoint, never RUNNING), it is cancelled, the previous
  deployment runs again from the same savepoint (its recorded statements; its offsets are in
  that state, so every input record is still processed) and :class:`UpgradeFailed` names the
  cause. A first deploy, or the same deployment restored again, has nothing to go back to: it
  waits for RUNNING only, as a wait could only report what ``status`` reports too.
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
from datamesh.errors import MeshError
from datamesh.flink import ddl, first_checkpoint, offsets, record
from datamesh.flink.connections import Connections, resolve
from datamesh.flink.errors import JobFailed, JobStateIncompatible, UpgradeFailed
from datamesh.flink.gateway import SqlGateway, StatementError
from datamesh.flink.job import ProcessorJob
from datamesh.flink.jobmanager import JobManager, JobSummary
from datamesh.flink.status import Checkpoint, JobStatus, job_status, read_status
from datamesh.flink.submit import Submission, submit
from datamesh.flink.validate import Plan, plan_job
from datamesh.kafka_admin import TopicAdmin
from datamesh.kafka_config import client_config
from datamesh.schema_client import SchemaClient
from datamesh.sinks import postgres
from datamesh.specs.product import TopicSettings
from datamesh.topic_apply import ensure_topic

Strategy = Literal["from-offsets", "reprocess", "fail"]
log = logging.getLogger("datamesh.flink")

_WEEK_MS = 7 * 86_400_000
_WHAT = {
    "from-offsets": "starting without state from the offsets committed to Kafka",
    "reprocess": "starting without state, rereading its inputs from the beginning",
    "fail": "refusing the change",
}


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
        began = time.monotonic()
        plan = self.validate(job)
        log.info("%s: planned through the SQL Gateway in %.1fs", job.name, time.monotonic() - began)
        current = self.jm.latest(job.name)
        if current is not None and current.active:
            status = self._observe(job_status(self.jm, current))
            if status.sql_hash == plan.sql_hash:
                log.info("%s: already running with hash %s", job.name, plan.sql_hash)
                return status.with_action("unchanged")
            return self._upgrade(plan, current, on_incompatible)
        if current is not None:  # its last savepoint and retained checkpoint, while known
            self._observe(job_status(self.jm, current))
        if self._provision(plan):
            return self._reread(plan)
        point = restore_from or self._recorded_point(job.name, current)
        if point:
            return self._start_from(plan, point, on_incompatible)
        return self._start(plan).with_action("started")

    def upgrade(self, job: ProcessorJob, on_incompatible: Strategy = "from-offsets") -> JobStatus:
        """Stop the running job with a savepoint and start ``job`` from it (even if unchanged)."""
        plan = self.validate(job)
        current = self.jm.latest(job.name)
        if current is None or not current.active:
            return self.deploy(job, on_incompatible)
        return self._upgrade(plan, current, on_incompatible)

    def status(self, name: str) -> JobStatus:
        """State, restarts, last checkpoint and counters of the newest job called ``name``; a
        completed checkpoint or savepoint it shows is recorded."""
        return self._observe(read_status(self.jm, name))

    def stop_with_savepoint(self, name: str) -> JobStatus:
        """Stop the running job with a savepoint; the status's ``last_savepoint`` has its path."""
        current = self.jm.latest(name)
        if current is None or not current.active:
            return self.status(name).with_action("unchanged")
        path = self._stop(name, current)
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
        return self._observe(status).with_action("stopped")

    def cancel(self, name: str) -> JobStatus:
        """Cancel every active job called ``name`` (no savepoint; checkpoints are retained and
        the last one is recorded)."""
        for job in self.jm.jobs():
            if job.name == name and job.active:
                self.jm.cancel(job.job_id)
                self.jm.wait_for_end(job.job_id)
                log.info("%s: cancelled job %s", name, job.job_id)
        return self.status(name).with_action("cancelled")

    def reprocess(self, job: ProcessorJob) -> JobStatus:
        """Stop the running job with a savepoint (recorded, a fallback) and start ``job``
        without state, rereading its inputs from the beginning. For an input that gained a
        column the job carries: the changes carrying it may lie behind the running job's
        offsets already. Meant for keyed (upserting) outputs, which converge."""
        plan = self.validate(job)
        current = self.jm.latest(job.name)
        if current is not None and current.active:
            self._stop(job.name, current)
        self._provision(plan)
        return self._start(plan, reprocess=True).with_action("reprocessed")

    # -- internals ---------------------------------------------------------------------------

    def _observe(self, status: JobStatus) -> JobStatus:
        """Record the savepoint and checkpoint ``status`` shows; the status is returned as is."""
        try:
            record.observed(status)
        except OSError as exc:  # the job runs on; a later observation records it
            log.warning("%s: could not record its checkpoint: %s", status.name, exc)
        return status

    def _stop(self, name: str, current: JobSummary) -> str:
        path = self.jm.stop_with_savepoint(current.job_id)
        self.jm.wait_for_end(current.job_id)
        record.savepoint_taken(name, current.job_id, path)
        log.info("%s: stopped %s with savepoint %s", name, current.job_id, path)
        return path

    def _upgrade(self, plan: Plan, current: JobSummary, strategy: Strategy) -> JobStatus:
        reread = self._provision(plan)
        if strategy == "from-offsets" and not reread:
            self._await_commit(plan.job, current)
        savepoint = self._stop(plan.job.name, current)
        if reread:
            try:
                return self._reread(plan, prove=True)
            except (JobFailed, StatementError) as exc:
                raise self._upgrade_failed(plan, savepoint, exc) from exc
        return self._start_from(plan, savepoint, strategy)

    def _await_commit(self, job: ProcessorJob, current: JobSummary) -> None:
        """Let the running job commit what it read before it is stopped, so that a fresh start
        under ``from-offsets`` neither loses nor rereads input: the commit lags a checkpoint by
        up to the source's poll timeout, and a stop inside that window drops it (see
        :mod:`datamesh.flink.offsets`). Input arriving meanwhile may still be reread."""
        plain = self._read_by(current, [i.topic for i in job.inputs if i.mode != "upsert"])
        interval_s = job.settings.checkpoint_interval_ms / 1000
        timeout_s = offsets.SOURCE_POLL_TIMEOUT_S + 2 * interval_s + 5
        began = time.monotonic()
        behind = offsets.wait_committed(self.conn, job.name, plain, timeout_s)
        waited_s = time.monotonic() - began
        if behind:
            log.warning(
                "%s: consumer group %s has not committed the end of %s after %.0fs; should "
                "the new plan not fit the state, 'from-offsets' rereads what followed its last "
                "commit",
                job.name,
                job.name,
                ", ".join(behind),
                waited_s,
            )
        else:
            log.info("%s: its offsets were committed (waited %.1fs)", job.name, waited_s)

    def _read_by(self, current: JobSummary, topics: list[str]) -> list[str]:
        """The ``topics`` the running job reads, as its recorded statements say (all of them
        when it has no record): a topic it does not read gets no commit to wait for."""
        rec = record.load(current.name)
        if rec is None or rec.job_id != current.job_id or rec.statements is None:
            return topics
        text = "\n".join(Submission.from_json(rec.statements).ddl)
        return [t for t in topics if f"'topic' = {ddl.literal(t)}" in text]

    def _recorded_point(self, name: str, current: JobSummary | None) -> str | None:
        """The newest recorded savepoint or retained checkpoint of job ``name``, if any."""
        rec = record.load(name)
        point = record.restore_point(rec) if rec else None
        if rec is None or point is None:
            if rec is not None and rec.job_id:
                log.warning("%s: job %s left no savepoint or checkpoint", name, rec.job_id)
            return None
        kind = "savepoint" if point.savepoint else "checkpoint"
        if current is None:
            log.warning(
                "%s: the JobManager no longer knows job %s; restoring its recorded %s %s",
                name,
                rec.job_id,
                kind,
                point.path,
            )
        return point.path

    def _reread(self, plan: Plan, prove: bool = False) -> JobStatus:
        """Start without state from the beginning of the input: the sink table gained columns,
        and the changes that carry them may already be behind the old job's offsets. Upserts
        are idempotent, so the table converges."""
        log.warning(
            "%s: the sink table gained columns; rereading the input from the beginning",
            plan.job.name,
        )
        return self._start(plan, reprocess=True, prove=prove).with_action("reprocessed")

    def _start_from(self, plan: Plan, path: str, strategy: Strategy) -> JobStatus:
        """Start ``plan`` restoring ``path``. A changed deployment must prove itself (RUNNING and a
        first checkpoint); when it fails, the previous one runs again from ``path`` and
        :class:`UpgradeFailed` is raised. The same deployment again has nothing to go back to,
        so RUNNING is enough for it."""
        rec = record.load(plan.job.name)
        same = rec is not None and rec.sql_hash == plan.sql_hash
        try:
            status = self._start(plan, restore=path, prove=not same)
        except JobStateIncompatible as exc:
            return self._incompatible(plan, path, strategy, exc, prove=not same)
        except (JobFailed, StatementError) as exc:
            if same:
                raise
            raise self._upgrade_failed(plan, path, exc) from exc
        return status.with_action("restored" if same else "upgraded")

    def _incompatible(
        self, plan: Plan, path: str, strategy: Strategy, exc: JobStateIncompatible, prove: bool
    ) -> JobStatus:
        """Apply ``strategy`` because the state at ``path`` does not fit ``plan``; a new job
        started without state is proven like any other, and rolled back when it fails."""
        name = plan.job.name
        log.warning(
            "%s: the state at %s does not fit the new plan (%s); on_incompatible strategy %r: %s",
            name,
            path,
            exc.cause,
            strategy,
            _WHAT[strategy],
        )
        if strategy == "fail":
            _, kept = self._roll_back(plan, path)
            log.warning("%s: %s", name, kept)
            raise JobStateIncompatible(name, path, exc.cause, strategy, kept) from None
        try:
            if strategy == "from-offsets":
                return self._from_offsets(plan, prove)
            status = self._start(plan, reprocess=True, prove=prove)
        except (JobFailed, StatementError) as failed:
            raise self._upgrade_failed(plan, path, failed) from failed
        return replace(status, action="reprocessed", on_incompatible=strategy)

    def _from_offsets(self, plan: Plan, prove: bool) -> JobStatus:
        """Start without state from the offsets the job's group committed to Kafka; inputs
        without them (and ``upsert`` inputs, always) are read from their beginning, and the
        status says ``reprocessed`` then."""
        job = plan.job
        plain = [i.topic for i in job.inputs if i.mode != "upsert"]
        missing = offsets.uncommitted(self.conn, job.name, plain)
        status = self._start(plan, prove=prove)
        if missing:
            log.warning(
                "%s: on_incompatible 'from-offsets': consumer group %s has no committed offsets "
                "on %s, so those inputs are read from their beginning",
                job.name,
                job.name,
                ", ".join(missing),
            )
            return replace(status, action="reprocessed", on_incompatible="from-offsets")
        return replace(status, action="restarted-fresh", on_incompatible="from-offsets")

    def _upgrade_failed(
        self, plan: Plan, path: str, exc: JobFailed | StatementError
    ) -> UpgradeFailed:
        """The new job failed before it proved itself (and was cancelled): run the previous
        deployment again from ``path`` and say so."""
        failed_id = exc.job_id if isinstance(exc, JobFailed) else None
        log.warning(
            "%s: the new job %s failed before its first checkpoint: %s; restarting the previous "
            "deployment from %s",
            plan.job.name,
            failed_id or "(not created)",
            exc.cause,
            path,
        )
        running, kept = self._roll_back(plan, path)
        log.warning("%s: %s", plan.job.name, kept)
        return UpgradeFailed(plan.job.name, failed_id, exc.cause, path, kept, running)

    def _roll_back(self, plan: Plan, path: str) -> tuple[str | None, str]:
        """Start the previous deployment again from ``path`` and record it; return its job id
        (None when there is none or it failed too) and what runs now."""
        rec = record.load(plan.job.name)
        if rec is None or rec.statements is None or rec.sql_hash == plan.sql_hash:
            return None, (
                f"the previous job stays stopped; its state is kept at {path} (deploy the "
                "previous declaration to restore it)"
            )
        previous = Submission.from_json(rec.statements)
        try:
            job_id = submit(self.gateway, self.jm, previous, path, self.start_timeout_s)
        except MeshError as exc:  # the original failure is the one to report
            return None, (
                f"the previous deployment (hash {rec.sql_hash}) could not be started again "
                f"either ({exc}); its state is kept at {path} (deploy the previous declaration "
                "to restore it)"
            )
        record.started(
            previous.name, job_id, rec.sql_hash or "", rec.statements, self._ckpt_dir(job_id)
        )
        return job_id, (
            f"the previous deployment (hash {rec.sql_hash}) runs again as job {job_id}, "
            f"restored from {path}"
        )

    def _start(
        self, plan: Plan, restore: str | None = None, reprocess: bool = False, prove: bool = False
    ) -> JobStatus:
        """Submit ``plan`` and wait until every task runs; with ``prove``, also until its first
        checkpoint completes (a failure meanwhile cancels it and raises :class:`JobFailed`). The
        record names the job only once it got that far."""
        job = plan.job
        config = ddl.with_hash(plan.statements.config, plan.sql_hash, job)
        declared = Submission(job.name, config, plan.statements.ddl, plan.statements.insert)
        run = declared
        if reprocess:
            sources = [
                ddl.source_ddl(i, job, self.conn, startup="earliest-offset") for i in job.inputs
            ]
            run = replace(declared, ddl=(*sources, *declared.ddl[len(job.inputs) :]))
        began = time.monotonic()
        job_id = submit(self.gateway, self.jm, run, restore, self.start_timeout_s)
        running_s = time.monotonic() - began
        if prove:
            log.info(
                "%s: job %s RUNNING after %.1fs; waiting for its first checkpoint",
                job.name,
                job_id,
                running_s,
            )
            interval_ms = job.settings.checkpoint_interval_ms
            checkpoint = first_checkpoint.await_first_checkpoint(
                self.jm, job.name, job_id, interval_ms, restore
            )
            log.info(
                "%s: job %s proven: first checkpoint %d completed %.1fs after its submission",
                job.name,
                job_id,
                checkpoint,
                time.monotonic() - began,
            )
        log.info(
            "%s: job %s runs hash %s (submitted and RUNNING in %.1fs)",
            job.name,
            job_id,
            plan.sql_hash,
            running_s,
        )
        record.started(job.name, job_id, plan.sql_hash, declared.to_json(), self._ckpt_dir(job_id))
        status = job_status(self.jm, self._summary(job_id))
        return replace(status, restored_from=restore)

    def _ckpt_dir(self, job_id: str) -> str | None:
        """Where the cluster writes ``job_id``'s checkpoints (``<checkpointing dir>/<job id>``)."""
        try:
            base = self.jm.cluster_config().get("execution.checkpointing.dir")
        except MeshError as exc:
            log.warning("could not read the cluster's checkpoint directory: %s", exc)
            return None
        return f"{base.rstrip('/')}/{job_id}" if base else None

    def _summary(self, job_id: str) -> JobSummary:
        return next(j for j in self.jm.jobs() if j.job_id == job_id)

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
        if job.heartbeats:
            postgres.ensure_heartbeat_table(
                endpoints.endpoint("postgres"), target.database, target.schema
            )
        for statement in applied:
            log.info("%s: %s", job.name, statement.splitlines()[0])
        return any(s.startswith("ALTER TABLE") for s in applied)
