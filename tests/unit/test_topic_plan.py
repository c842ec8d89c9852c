"""The topic plan is pure: a table of (desired, observed) -> actions."""

from __future__ import annotations

import pytest

from datamesh.specs.durations import parse_duration, retention_ms
from datamesh.specs.product import TopicSettings
from datamesh.topic_plan import CreateTopic, Drift, InSync, ObservedTopic, plan_topic

WANT = TopicSettings(
    partitions=3, replication_factor=1, retention_ms=604800000, cleanup_policy="compact"
)
SAME = {"cleanup.policy": "compact", "retention.ms": "604800000", "segment.bytes": "1073741824"}


def observed(
    partitions: int = 3, rf: int = 1, configs: dict[str, str] | None = None
) -> ObservedTopic:
    return ObservedTopic("t", partitions, rf, {**SAME, **(configs or {})})


CASES = [
    ("missing topic is created", None, [CreateTopic("t", WANT)]),
    ("identical topic is in sync", observed(), [InSync("t")]),
    ("unmanaged configs are ignored", observed(configs={"segment.bytes": "1"}), [InSync("t")]),
    ("fewer partitions is drift", observed(partitions=1), [Drift("t", "partitions", "3", "1")]),
    (
        "more partitions is drift (never shrink)",
        observed(partitions=6),
        [Drift("t", "partitions", "3", "6")],
    ),
    ("replication differs", observed(rf=3), [Drift("t", "replication_factor", "1", "3")]),
    (
        "retention differs",
        observed(configs={"retention.ms": "1000"}),
        [Drift("t", "retention.ms", "604800000", "1000")],
    ),
    (
        "cleanup differs",
        observed(configs={"cleanup.policy": "delete"}),
        [Drift("t", "cleanup.policy", "compact", "delete")],
    ),
    (
        "several drifts are all reported",
        observed(partitions=1, configs={"cleanup.policy": "delete"}),
        [Drift("t", "partitions", "3", "1"), Drift("t", "cleanup.policy", "compact", "delete")],
    ),
]


@pytest.mark.parametrize(("case", "seen", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plan(case: str, seen: ObservedTopic | None, expected: list[object]) -> None:
    assert plan_topic("t", WANT, seen) == expected


def test_plan_lines_are_readable() -> None:
    assert "create topic t (partitions=3" in CreateTopic("t", WANT).describe()
    assert "partitions is 1, declared 3" in Drift("t", "partitions", "3", "1").describe()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("5m", 300), ("2h", 7200), ("7d", 604800), (45, 45)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_retention_infinite_and_bad() -> None:
    assert retention_ms("infinite") == -1
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 minutes")
