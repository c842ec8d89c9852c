"""What a topic needs to match its declaration: ``plan_topic`` is pure; drift is reported, never
silently fixed. A leaf module: the controller (``mesh plan``), the broker adapter
(:mod:`datamesh.kafka_admin`) and the data plane, which creates its own output and DLQ topics
(:mod:`datamesh.topic_apply`), all use these types without importing one another.

Kafka topics are keyed by primary key, so changing the partition count would move keys between
partitions and break per-key order: any partition difference is drift, as is a different
retention or cleanup policy. The fix is always to edit the declaration (or migrate by hand).
"""

from __future__ import annotations

from dataclasses import dataclass

from datamesh.specs.product import TopicSettings

RETENTION = "retention.ms"
CLEANUP = "cleanup.policy"


@dataclass(frozen=True)
class ObservedTopic:
    """What the broker reports about a topic."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


@dataclass(frozen=True)
class CreateTopic:
    """Create ``name`` with ``settings``."""

    name: str
    settings: TopicSettings

    def describe(self) -> str:
        """One plan line."""
        s = self.settings
        return (
            f"create topic {self.name} (partitions={s.partitions}, "
            f"replication={s.replication_factor}, {CLEANUP}={s.cleanup_policy}, "
            f"{RETENTION}={s.retention_ms})"
        )


@dataclass(frozen=True)
class Drift:
    """A setting of an existing topic that differs from its declaration."""

    name: str
    setting: str
    expected: str
    actual: str

    def describe(self) -> str:
        """One plan line."""
        return f"DRIFT topic {self.name}: {self.setting} is {self.actual}, declared {self.expected}"


@dataclass(frozen=True)
class InSync:
    """Nothing to do."""

    name: str

    def describe(self) -> str:
        """One plan line."""
        return f"topic {self.name} is up to date"


TopicAction = CreateTopic | Drift | InSync


def desired_configs(settings: TopicSettings) -> dict[str, str]:
    """Topic configs the platform owns, as Kafka spells them."""
    return {CLEANUP: settings.cleanup_policy, RETENTION: str(settings.retention_ms)}


def plan_topic(
    name: str, desired: TopicSettings, observed: ObservedTopic | None
) -> list[TopicAction]:
    """Actions that bring topic ``name`` to ``desired``; ``Drift`` entries block the apply."""
    if observed is None:
        return [CreateTopic(name, desired)]
    drifts: list[TopicAction] = []
    if observed.partitions != desired.partitions:
        drifts.append(Drift(name, "partitions", str(desired.partitions), str(observed.partitions)))
    if observed.replication_factor != desired.replication_factor:
        drifts.append(
            Drift(
                name,
                "replication_factor",
                str(desired.replication_factor),
                str(observed.replication_factor),
            )
        )
    for key, want in desired_configs(desired).items():
        have = observed.configs.get(key)
        if have != want:
            drifts.append(Drift(name, key, want, str(have)))
    return drifts or [InSync(name)]
