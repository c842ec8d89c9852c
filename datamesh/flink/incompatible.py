"""Recognise "this state does not fit the new job" from the structure of Flink's errors.

Flink 2.2 reports a failed restore in two shapes, both recorded in tests/unit/flink/payloads:

- operator state the new plan has no operator for (a changed GROUP BY, join, window):
  ``java.lang.IllegalStateException`` thrown by ``org.apache.flink.runtime.checkpoint.Checkpoints``
  while the JobMaster starts; the job is FAILED with a ``JobInitializationException`` whose cause
  chain holds it, and the SQL Gateway refuses the INSERT with the same chain (frames elided);
- keyed state whose serializer changed (another accumulator, another type):
  ``org.apache.flink.util.StateMigrationException`` from the state backend while a task restores;
  the job restarts over and over, each attempt an ``exceptionHistory`` entry.

``GET /jobs/{id}/exceptions`` (Flink 2.x: ``exceptionHistory.entries[]`` with ``exceptionName``,
``stacktrace`` and ``concurrentExceptions``; 1.x also had ``root-exception``) carries the whole
cause chain with its frames. A cause is matched by its class name, and an ``IllegalStateException``
only when Flink's checkpoint restore code threw it — never by the wording of a message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

STATE_MIGRATION = "org.apache.flink.util.StateMigrationException"
ILLEGAL_STATE = "java.lang.IllegalStateException"
# Where Flink validates a checkpoint against the new job graph: unmapped operator state
# (Checkpoints.loadAndValidateCheckpoint / throwNonRestoredStateException) and a max parallelism
# the state cannot be redistributed to (StateAssignmentOperation.checkParallelismPreconditions).
RESTORE_VALIDATORS = (
    "org.apache.flink.runtime.checkpoint.Checkpoints.",
    "org.apache.flink.runtime.checkpoint.StateAssignmentOperation.",
)
_HEAD = re.compile(r"^(?:Caused by: )?([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+)(?::|$)")
_FRAME = re.compile(r"^at ([\w$.<>]+)\(")


@dataclass(frozen=True)
class Cause:
    """One exception of a Java cause chain: its class and the method that threw it (if shown)."""

    exception: str
    thrown_at: str | None


def causes(trace: str) -> list[Cause]:
    """The cause chain of a Java stack trace, outermost first."""
    out: list[Cause] = []
    pending: str | None = None
    for raw in trace.splitlines():
        line = raw.strip().lstrip("<")
        frame = _FRAME.match(line)
        if frame:
            if pending is not None:
                out.append(Cause(pending, frame.group(1)))
                pending = None
            continue
        head = _HEAD.match(line)
        if head and ("Exception" in head.group(1) or "Error" in head.group(1)):
            if pending is not None:
                out.append(Cause(pending, None))
            pending = head.group(1)
    if pending is not None:
        out.append(Cause(pending, None))
    return out


def state_incompatibility(trace: str) -> Cause | None:
    """The cause that says the restored state does not fit the job, if the trace has one."""
    for cause in causes(trace):
        if cause.exception == STATE_MIGRATION:
            return cause
        if cause.exception == ILLEGAL_STATE and (cause.thrown_at or "").startswith(
            RESTORE_VALIDATORS
        ):
            return cause
    return None


def traces(exceptions: Mapping[str, Any]) -> Iterator[str]:
    """Every stack trace of a ``/jobs/{id}/exceptions`` answer, newest first."""
    history = exceptions.get("exceptionHistory") or {}
    for entry in history.get("entries") or []:
        yield str(entry.get("stacktrace") or entry.get("exceptionName") or "")
        for concurrent in entry.get("concurrentExceptions") or []:
            yield str(concurrent.get("stacktrace") or concurrent.get("exceptionName") or "")
    if exceptions.get("root-exception"):  # Flink 1.x
        yield str(exceptions["root-exception"])


def job_incompatibility(exceptions: Mapping[str, Any]) -> Cause | None:
    """The state incompatibility among a job's reported exceptions, if any."""
    for trace in traces(exceptions):
        found = state_incompatibility(trace)
        if found:
            return found
    return None


def describe(cause: Cause) -> str:
    """``<class> thrown by <method>`` for logs and errors."""
    where = f" thrown by {cause.thrown_at}" if cause.thrown_at else ""
    return f"{cause.exception}{where}"
