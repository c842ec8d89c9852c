"""Apply the topic plan: create what is missing, refuse drift before touching anything (used by
``mesh apply`` and by the connectors, Flink jobs and sinks that create their own topics)."""

from __future__ import annotations

from pathlib import Path

from datamesh.errors import DriftError, TerminalError
from datamesh.kafka_admin import TopicAdmin
from datamesh.polling import poll
from datamesh.specs.product import TopicSettings
from datamesh.topic_plan import CreateTopic, Drift, ObservedTopic, plan_topic


def ensure_topic(
    admin: TopicAdmin, name: str, desired: TopicSettings, declared_in: Path | str
) -> tuple[ObservedTopic, bool]:
    """Make topic ``name`` match ``desired``; return (its state, whether it was created).

    Raises :class:`DriftError` naming expected and actual when an existing topic differs.
    """
    observed = admin.describe(name)
    drifts = [a for a in plan_topic(name, desired, observed) if isinstance(a, Drift)]
    if drifts:
        first = drifts[0]
        also = (
            "; also " + ", ".join(f"{d.setting}={d.actual}" for d in drifts[1:])
            if drifts[1:]
            else ""
        )
        raise DriftError(
            f'Topic "{name}"',
            first.setting,
            first.expected,
            first.actual,
            fix=f"edit {declared_in} to match, or migrate the topic by hand "
            f"(the platform never changes an existing topic){also}",
        )
    if observed is not None:  # in sync (the plan found no drift)
        return observed, False
    return create_topic(admin, CreateTopic(name, desired)), True


def create_topic(admin: TopicAdmin, action: CreateTopic, timeout_s: float = 15.0) -> ObservedTopic:
    """Create the topic ("already exists" is fine) and wait until the broker's metadata shows
    all its partitions (creation is asynchronous); :class:`TerminalError` if it never does."""
    admin.create(action)

    def complete() -> ObservedTopic | None:
        observed = admin.describe(action.name)
        if observed is not None and observed.partitions >= action.settings.partitions:
            return observed
        return None

    observed = poll(complete, timeout_s)
    if observed is None:
        raise TerminalError(
            f'Topic "{action.name}" does not exist after creating it',
            fix="check the broker log and its topic-creation policy",
        )
    return observed
