"""The connector's topics: created when missing (the broker does not auto-create), never changed.

The control plane normally creates CDC topics from the declarations; the connector only fills
the gap for topics nobody declared, with ``--partitions`` and ``--cleanup-policy`` (compact by
default) and infinite retention, and reads back whether a topic is compacted (truncate events
carry a null key, which compacted topics refuse).
"""

from __future__ import annotations

from datamesh.kafka_admin import TopicAdmin
from datamesh.kafka_config import client_config
from datamesh.specs.product import TopicSettings
from datamesh.topic_apply import create_topic
from datamesh.topic_plan import CreateTopic


class ConnectorTopics:
    """Create-if-missing and describe for the connector's topics."""

    def __init__(self, bootstrap: str, settings: TopicSettings) -> None:
        self._admin = TopicAdmin(client_config(bootstrap))
        self._settings = settings

    def ensure(self, topic: str) -> tuple[bool, int]:
        """Create ``topic`` if it does not exist; returns (is it compacted, its partitions)."""
        observed = self._admin.describe(topic)
        if observed is None:
            observed = create_topic(self._admin, CreateTopic(topic, self._settings))
        return "compact" in observed.configs.get("cleanup.policy", ""), observed.partitions

    def compacted(self, topic: str) -> bool:
        """Whether ``topic``'s cleanup.policy includes compact (True if it is missing)."""
        observed = self._admin.describe(topic)
        return observed is None or "compact" in observed.configs.get("cleanup.policy", "")
