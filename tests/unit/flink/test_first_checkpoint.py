"""A new job proves itself from Flink 2.2.1's REST payloads (recorded in payloads/restore_*: a
restored job checkpointing, one still restoring its aggregate, and two failing on real data),
and an upgrade that failed reads as a failed materialization naming its cause."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from datamesh.flink import UpgradeFailed
from datamesh.flink.first_checkpoint import Verdict, deadline_s, failure_cause, verdict
from resources.flink import upgrade_failure

PAYLOADS = Path(__file__).parent / "payloads"
DIVISION = "java.lang.ArithmeticException: / by zero (in Source: ft97a3ad0d.orders[38] -> Calc[39]"
TIMEOUT = "java.util.concurrent.TimeoutException"
CAST = "java.lang.NumberFormatException: For input string: 'u0'. Invalid character found. (in "


def _payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return data


def _judge(payload: dict[str, Any]) -> Verdict:
    return verdict(payload["job"], payload["checkpoints"], payload["exceptions"])


def _no_checkpoint_yet(failed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpointed job as it was before its first checkpoint completed (every task
    RUNNING), optionally with a checkpoint declined meanwhile (the real one of the cast job)."""
    payload = copy.deepcopy(_payload("restore_checkpointed"))
    payload["checkpoints"]["latest"]["completed"] = None
    payload["checkpoints"]["latest"]["failed"] = failed
    return payload


def _state(state: str) -> dict[str, Any]:
    payload = _no_checkpoint_yet()
    payload["job"]["state"] = state
    return payload


DECLINED = _payload("restore_restarting_cast")["checkpoints"]["latest"]["failed"]


@pytest.mark.parametrize(
    ("payload", "outcome", "detail", "checkpoint_id"),
    [
        (_payload("restore_checkpointed"), "proven", "checkpoint 6", 6),
        # RUNNING, but the aggregate still restores its state: not yet proven, not failed.
        (_payload("restore_initializing"), "waiting", "RUNNING, tasks 1 INITIALIZING, 1 RUNNING",
         None),
        (_no_checkpoint_yet(), "waiting", "no checkpoint completed yet", None),
        # A checkpoint declined while a task restored is retried, not a failure.
        (_no_checkpoint_yet(DECLINED), "waiting",
         "no checkpoint completed yet; checkpoint 15 failed: Checkpoint was declined (tasks not "
         "ready)",
         None),
        # Failing on real data: the root cause under the source's wrapper, and where.
        (_payload("restore_restarting_division_by_zero"), "failed", DIVISION, None),
        (_payload("restore_restarting_cast"), "failed", CAST, None),
        # Off the way to RUNNING without a reported exception.
        (_state("FAILED"), "failed", "the job went FAILED", None),
        (_state("CANCELLING"), "failed", "the job went CANCELLING", None),
        (_state("INITIALIZING"), "waiting", "INITIALIZING, tasks 2 RUNNING", None),
    ],
)  # fmt: skip
def test_verdict(
    payload: dict[str, Any], outcome: str, detail: str, checkpoint_id: int | None
) -> None:
    found = _judge(payload)
    assert (found.outcome, found.checkpoint_id) == (outcome, checkpoint_id)
    assert found.detail.startswith(detail), found.detail


def test_the_first_failure_is_named_with_its_task() -> None:
    cause = failure_cause(_payload("restore_restarting_division_by_zero")["exceptions"])
    assert cause == (
        "java.lang.ArithmeticException: / by zero (in Source: ft97a3ad0d.orders[38] -> Calc[39] "
        "(1/1) - execution #0)"  # the first of two attempts; the newest is listed first
    )


@pytest.mark.parametrize(
    ("exceptions", "cause"),
    [
        ({"exceptionHistory": {"entries": [], "truncated": False}}, None),
        ({}, None),
        # A global failure: no task, and only the exception's name.
        ({"exceptionHistory": {"entries": [{"exceptionName": TIMEOUT}]}}, TIMEOUT),
        (_payload("restore_checkpointed")["exceptions"], None),
    ],
)  # fmt: skip
def test_failure_cause(exceptions: dict[str, Any], cause: str | None) -> None:
    assert failure_cause(exceptions) == cause


@pytest.mark.parametrize(("interval_ms", "seconds"), [(1000, 33.0), (10_000, 60.0)])
def test_a_few_checkpoint_intervals_and_a_margin(interval_ms: int, seconds: float) -> None:
    assert deadline_s(interval_ms) == seconds


def test_a_failed_upgrade_is_a_failed_materialization_naming_cause_and_savepoint() -> None:
    exc = UpgradeFailed(
        "d.totals",
        "f00d",
        "java.lang.ArithmeticException: / by zero (in Calc)",
        "file:/sp/savepoint-1",
        "the previous deployment (hash h1) runs again as job beef, restored from "
        "file:/sp/savepoint-1",
        "beef",
    )
    failure = upgrade_failure(exc)
    assert isinstance(failure, dg.Failure)
    assert failure.description is not None
    assert failure.description.startswith(
        "upgrade of job d.totals failed: the new job f00d failed before its first checkpoint: "
        "java.lang.ArithmeticException: / by zero (in Calc). It was cancelled; the previous "
        "deployment (hash h1) runs again as job beef, restored from file:/sp/savepoint-1"
    )
    assert {k: v.value for k, v in failure.metadata.items()} == {
        "flink_job": "d.totals",
        "job_action": "rolled-back",
        "failed_job_id": "f00d",
        "cause": "java.lang.ArithmeticException: / by zero (in Calc)",
        "restored_from": "file:/sp/savepoint-1",
        "job_id": "beef",
    }
