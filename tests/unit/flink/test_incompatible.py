"""State incompatibility is recognised from exception classes in Flink 2.2's real REST payloads
(recorded in payloads/), not from the wording of messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from datamesh.flink import incompatible
from datamesh.flink.incompatible import Cause

PAYLOADS = Path(__file__).parent / "payloads"


def _payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def test_unmapped_operator_state_from_the_job_exceptions() -> None:
    found = incompatible.job_incompatibility(_payload("exceptions_unmapped_operator.json"))
    assert found == Cause(
        "java.lang.IllegalStateException",
        "org.apache.flink.runtime.checkpoint.Checkpoints.throwNonRestoredStateException",
    )


def test_changed_state_serializer_from_the_job_exceptions() -> None:
    found = incompatible.job_incompatibility(_payload("exceptions_state_migration.json"))
    assert found is not None and found.exception == "org.apache.flink.util.StateMigrationException"
    assert found.thrown_at and found.thrown_at.startswith("org.apache.flink.runtime.state.heap.")


def test_unmapped_operator_state_from_the_gateways_refusal() -> None:
    trace = "\n".join(_payload("gateway_unmapped_operator.json")["errors"])
    found = incompatible.state_incompatibility(trace)
    assert found is not None and found.exception == "java.lang.IllegalStateException"
    chain = [c.exception for c in incompatible.causes(trace)]
    assert chain[0] == "org.apache.flink.table.gateway.api.utils.SqlGatewayException"
    assert "org.apache.flink.runtime.client.JobInitializationException" in chain


@pytest.mark.parametrize(
    "trace",
    [
        # The words of an incompatibility, from classes that do not mean one.
        "java.io.FileNotFoundException: Cannot map checkpoint/savepoint state: incompatible\n"
        "\tat org.apache.flink.core.fs.local.LocalFileSystem.getFileStatus(LocalFileSystem.java:1)",
        # An IllegalStateException thrown outside Flink's checkpoint restore validation.
        "java.lang.RuntimeException: boom\n\tat a.B.c(B.java:1)\n"
        "Caused by: java.lang.IllegalStateException: StateMigrationException is not compatible\n"
        "\tat org.apache.flink.connector.kafka.source.KafkaSource.open(KafkaSource.java:9)",
        "",
    ],
)
def test_other_failures_are_not_incompatibility(trace: str) -> None:
    assert incompatible.state_incompatibility(trace) is None


def test_flink_1_root_exception_is_read_too() -> None:
    legacy = {"root-exception": "org.apache.flink.util.StateMigrationException: x\n\tat a.B.c(B:1)"}
    found = incompatible.job_incompatibility(legacy)
    assert found is not None and found.exception == incompatible.STATE_MIGRATION


def test_describe_names_class_and_thrower() -> None:
    cause = Cause("java.lang.IllegalStateException", "org.x.Checkpoints.validate")
    assert incompatible.describe(cause) == (
        "java.lang.IllegalStateException thrown by org.x.Checkpoints.validate"
    )
