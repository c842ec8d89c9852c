"""Apply the topic plan: create what is missing, refuse drift before touching anything."""

from __future__ import annotations

import time
from pathlib import Path

from datamesh.control.topics import CreateTopic, Drift, ObservedTopic, plan_topic
from datamesh.errors import DriftError, TerminalError
from datamesh.kafka_admin import TopicAdmin
from datamesh.specs.product import TopicSettings


def ensure_topic(
    admin: TopicAdmin, name: str, desired: TopicSettings, declared_in: Path | str
) -> tuple[ObservedTopic, bool]:
    """Make topic ``name`` match ``desired``; return (its state, whether it was created).

    Raises :class:`DriftError` naming expected and actual when an existing topic differs.
    """
    actions = plan_topic(name, desired, admin.describe(name))
    drifts = [a for a in actions if isinstance(a, Drift)]
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
    created = False
    for action in actions:
        if isinstance(action, CreateTopic):
            admin.create(action)
            created = True
    observed = _await_metadata(admin, name, desired.partitions if created else None)
    if observed is None:
        raise TerminalError(
            f'Topic "{name}" does not exist after creating it',
            fix="check the broker log and its topic-creation policy",
        )
    return observed, created


def _await_metadata(
    admin: TopicAdmin, name: str, partitions: int | None, timeout_s: float = 15.0
) -> ObservedTopic | None:
    """Describe ``name``, waiting for a just-created topic to appear in the broker's metadata."""
    deadline = time.monotonic() + timeout_s
    while True:
        observed = admin.describe(name)
        ready = observed is not None and (partitions is None or observed.partitions >= partitions)
        if ready or time.monotonic() > deadline:
            return observed
        time.sleep(0.2)
