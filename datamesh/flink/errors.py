"""Errors of processor jobs: a query that does not plan, an output that breaks its contract."""

from __future__ import annotations

from datamesh.errors import TerminalError


class SqlValidationError(TerminalError):
    """A processor's SQL does not plan against its inputs; nothing was deployed.

    ``line``/``position`` are 1-based in the product's ``.sql`` file (None when Flink gave no
    position); ``column`` is the column (or expression) at fault when it can be named.
    """

    def __init__(
        self,
        product: str,
        sql_file: str,
        problem: str,
        fix: str,
        line: int | None = None,
        position: int | None = None,
        column: str | None = None,
    ) -> None:
        self.product = product
        self.sql_file = sql_file
        self.problem = problem
        self.line = line
        self.position = position
        self.column = column
        where = sql_file + (f":{line}:{position}" if line else "")
        named = f" column '{column}':" if column else ""
        super().__init__(f"{product}: {where}:{named} {problem}", fix=fix)


class JobStateIncompatible(TerminalError):
    """A savepoint or checkpoint cannot be restored into the new job (changed stateful operators
    or state types). ``cause`` names the exception class that says so; ``strategy`` is set when
    the declared ``on_incompatible`` refused the change (``fail``), and ``kept`` then says what
    runs instead (the previous deployment, restored from the same state) or how to restore it."""

    def __init__(
        self,
        job: str,
        savepoint: str,
        cause: str,
        strategy: str | None = None,
        kept: str = "",
    ) -> None:
        self.job = job
        self.savepoint = savepoint
        self.cause = cause
        self.strategy = strategy
        self.kept = kept
        refused = (
            f"; on_incompatible {strategy!r} refused to start it without state" if strategy else ""
        )
        super().__init__(
            f"job {job} cannot restore {savepoint}: {cause}{refused}{'; ' + kept if kept else ''}",
            fix="make the change state-compatible, or declare flink.on_incompatible: from-offsets "
            "(drops state, resumes from committed offsets) or reprocess (drops state, rereads "
            "the inputs from the beginning)",
        )


class JobFailed(TerminalError):
    """A submitted job did not reach RUNNING; it was cancelled."""

    def __init__(self, job: str, job_id: str, cause: str) -> None:
        self.job = job
        self.job_id = job_id
        self.cause = cause
        super().__init__(
            f"job {job} ({job_id}) failed to start: {cause}", fix="see the cause; fix and redeploy"
        )


class UpgradeFailed(TerminalError):
    """A new deployment started from the previous one's savepoint failed before it proved itself
    (never RUNNING, failing or restarting, or no first checkpoint); it was cancelled. ``cause`` is
    the root cause Flink reported, ``failed_job_id`` the cancelled job, ``savepoint`` the state both
    started from, ``running_job_id`` the previous deployment restarted from it (None when it
    could not be), and ``kept`` says what runs now. ``failed_job_id`` is None when the gateway
    refused the new job before it was created."""

    def __init__(
        self,
        job: str,
        failed_job_id: str | None,
        cause: str,
        savepoint: str,
        kept: str,
        running_job_id: str | None,
    ) -> None:
        self.job = job
        self.failed_job_id = failed_job_id
        self.cause = cause
        self.savepoint = savepoint
        self.kept = kept
        self.running_job_id = running_job_id
        new = f"the new job {failed_job_id}" if failed_job_id else "the new job"
        super().__init__(
            f"upgrade of job {job} failed: {new} failed before its first checkpoint: {cause}. "
            f"It was cancelled; {kept}",
            fix="fix the SQL (or the data it fails on) and deploy again; until then the previous "
            "deployment processes every input from where its savepoint left off",
        )
