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
    """A savepoint cannot be restored into the new job (changed stateful operators)."""

    def __init__(self, job: str, savepoint: str, cause: str) -> None:
        self.job = job
        self.savepoint = savepoint
        self.cause = cause
        super().__init__(
            f"job {job} cannot restore savepoint {savepoint}: {cause}",
            fix="deploy with on_incompatible='from-offsets' (drops state, resumes from committed "
            "offsets) or 'reprocess' (drops state, rereads the inputs from the beginning)",
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
