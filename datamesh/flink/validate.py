"""Plan a processor's SQL against its inputs before anything is deployed.

In one SQL Gateway session: the input tables are created, the query is created as a view (parse +
validation: unknown columns, type mismatches), ``DESCRIBE`` gives its result types, ``EXPLAIN
CHANGELOG_MODE`` tells whether it only appends or also updates (and plans the streaming
operators: unsupported constructs fail here), and finally ``EXPLAIN INSERT`` plans the whole job
including its sink. Errors name the product, the ``.sql`` file, the line/column and the column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datamesh.flink import ddl
from datamesh.flink import heartbeat_branch as branch
from datamesh.flink.connections import Connections
from datamesh.flink.errors import SqlValidationError
from datamesh.flink.gateway import Session, SqlGateway, StatementError
from datamesh.flink.job import ProcessorJob
from datamesh.flink.schema import output_schemas
from datamesh.flink.types import SqlType, parse_sql_type, quote

_POSITION = re.compile(r"From line (\d+), column (\d+) to line (\d+), column (\d+): (.*)", re.S)
_AT = re.compile(r"at line (\d+), column (\d+)\.?\s*(.*)", re.S)
_NAMED = (
    re.compile(r"Column '([^']+)' not found"),
    re.compile(r"Unknown identifier '([^']+)'"),
    re.compile(r"Object '([^']+)' not found"),
    re.compile(r"Table '([^']+)' not found"),
)
_ROOT_MODE = re.compile(r"changelogMode=\[([A-Z,]+)\]")


@dataclass(frozen=True)
class Plan:
    """A validated job: result columns, how the sink is written, schemas and the statements."""

    job: ProcessorJob
    columns: tuple[tuple[str, SqlType], ...]
    sink_mode: ddl.SinkMode
    value_schema: dict[str, Any]
    key_schema: dict[str, Any] | None
    statements: ddl.Statements

    @property
    def sql_hash(self) -> str:
        """Identity of the deployment."""
        return self.statements.sql_hash


def plan_job(job: ProcessorJob, gateway: SqlGateway, conn: Connections) -> Plan:
    """Validate and plan ``job``; raises :class:`SqlValidationError` and deploys nothing."""
    config = ddl.session_config(job)
    sources = tuple(ddl.source_ddl(i, job, conn) for i in job.inputs)
    with gateway.session(config, name=f"plan {job.name}") as session:
        for statement in sources:
            session.execute(statement)
        _run(session, ddl.view_statement(job), job)
        columns = describe(session)
        mode = _sink_mode(
            _run(session, f"EXPLAIN CHANGELOG_MODE SELECT * FROM {quote(ddl.VIEW)}", job)
        )
        if job.jdbc is not None:  # a postgres_sink: upserts into its table, no topic or schema
            sink = ddl.jdbc_sink_ddl(job)
            session.execute(sink)
            _run(session, f"EXPLAIN {ddl.insert_statement(job)}", job)
            statements = _with_branch(session, job, conn, config, sources, sink)
            row = job.declared_schema or {}
            return Plan(job, tuple(columns), "upsert", row, None, statements)
        if mode == "upsert" and not job.key:
            raise SqlValidationError(
                job.product_id,
                job.sql_file,
                "the query updates or deletes rows it emitted (an aggregate, a join of changelogs"
                " or the like), so its topic must be keyed",
                fix=f"declare `key: [...]` (the result's unique columns) in {job.declared_in}",
            )
        value_schema, key_schema = output_schemas(job, columns)
        sql_columns = [(n, str(t)) for n, t in columns]
        sink = ddl.sink_ddl(job, sql_columns, mode, value_schema, key_schema, conn)
        session.execute(sink)
        _run(session, f"EXPLAIN {ddl.insert_statement(job)}", job)
        statements = _with_branch(session, job, conn, config, sources, sink)
    return Plan(job, tuple(columns), mode, value_schema, key_schema, statements)


def _with_branch(
    session: Session,
    job: ProcessorJob,
    conn: Connections,
    config: dict[str, str],
    sources: tuple[str, ...],
    sink: str,
) -> ddl.Statements:
    """The deployment's statements, with the heartbeat branch (planned here too) when the job's
    inputs carry heartbeats (:mod:`datamesh.flink.heartbeat_branch`). Its tables come after the
    user's, so a reprocess can swap the user's sources by position."""
    extra = (*branch.source_ddl(job, conn), *filter(None, [branch.sink_ddl(job, conn)]))
    for statement in extra:
        session.execute(statement)
    dml = branch.insert(job)
    if dml is not None:
        session.execute(f"EXPLAIN {dml}")
    insert = branch.statement_set(ddl.insert_statement(job), dml)
    return ddl.Statements(config, (*sources, sink, *extra), insert)


def describe(session: Session) -> list[tuple[str, SqlType]]:
    """Result columns of the query view: (name, type with nullability)."""
    rows = session.execute(f"DESCRIBE {quote(ddl.VIEW)}").rows
    return [(str(r[0]), parse_sql_type(str(r[1]), nullable=bool(r[2]))) for r in rows]


def _sink_mode(explain: str) -> ddl.SinkMode:
    """``append`` when the plan's root emits inserts only, else ``upsert``."""
    physical = explain.split("== Optimized Physical Plan ==", 1)[-1]
    match = _ROOT_MODE.search(physical)
    kinds = set(match.group(1).split(",")) if match else {"I"}
    return "append" if kinds == {"I"} else "upsert"


def _run(session: Session, statement: str, job: ProcessorJob) -> str:
    """Execute a statement whose query starts on line 2; map a refusal to the ``.sql`` file."""
    try:
        result = session.execute(statement)
    except StatementError as exc:
        raise sql_error(job, exc.cause) from exc
    return "\n".join(str(r[0]) for r in result.rows) if result.rows else ""


def sql_error(job: ProcessorJob, cause: str) -> SqlValidationError:
    """Turn Flink's message into an error at a line/column of the product's SQL."""
    line = position = None
    problem = cause.strip()
    located = _POSITION.search(problem) or _AT.search(problem)
    if located:
        line, position = int(located.group(1)) - 1, int(located.group(2))
        end = (
            (int(located.group(3)) - 1, int(located.group(4)))
            if located.re is _POSITION
            else (line, position)
        )
        problem = located.group(located.re.groups).strip()
        column = _named(problem) or _snippet(job.sql, line, position, end)
    else:
        column = _named(problem)
    if line is not None and line < 1:
        line = position = None  # the wrapper line the platform added, not the user's SQL
    return SqlValidationError(
        job.product_id,
        job.sql_file,
        problem.splitlines()[0],
        fix="correct the query (input columns: " + _input_columns(job) + ")",
        line=line,
        position=position,
        column=column,
    )


def _named(problem: str) -> str | None:
    for pattern in _NAMED:
        match = pattern.search(problem)
        if match:
            return match.group(1)
    return None


def _snippet(sql: str, line: int, position: int, end: tuple[int, int]) -> str | None:
    lines = sql.splitlines()
    if not 1 <= line <= len(lines):
        return None
    text = lines[line - 1]
    stop = end[1] if end[0] == line else len(text)
    return text[position - 1 : stop].strip() or None


def _input_columns(job: ProcessorJob) -> str:
    return "; ".join(f"{i.product_id}: {', '.join(n for n, _ in i.columns)}" for i in job.inputs)


def explain_columns(columns: Sequence[tuple[str, SqlType]]) -> list[str]:
    """``name TYPE`` lines for logs and metadata."""
    return [f"{n} {t}" for n, t in columns]
