"""Kafka admin as a Dagster resource: provisions and validates product topics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from datamesh import endpoints, kafka_observer
from datamesh.kafka_admin import TopicAdmin
from datamesh.kafka_config import client_config
from datamesh.specs.product import TopicSettings
from datamesh.topic_apply import ensure_topic
from datamesh.topic_plan import CLEANUP, RETENTION


class KafkaResource(dg.ConfigurableResource):
    """A Kafka cluster. Unset fields fall back to ``MESH_KAFKA_*`` variables / ``mesh up``."""

    bootstrap_servers: str | None = None
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca_location: str | None = None

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings for producers, consumers and admin clients."""
        return client_config(
            self.bootstrap_servers or endpoints.endpoint("kafka"),
            {
                "security.protocol": self.security_protocol,
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.username": self.sasl_username,
                "sasl.password": self.sasl_password,
                "ssl.ca.location": self.ssl_ca_location,
            },
        )

    def admin(self) -> TopicAdmin:
        """Topic admin over this cluster."""
        return TopicAdmin(self.client_config())

    def ensure_topic(
        self, name: str, settings: TopicSettings, declared_in: Path | str
    ) -> dict[str, Any]:
        """Create or validate topic ``name``; return its metadata (drift raises DriftError)."""
        observed, created = ensure_topic(self.admin(), name, settings, declared_in)
        return {
            "topic": name,
            "partitions": observed.partitions,
            "replication_factor": observed.replication_factor,
            CLEANUP: observed.configs.get(CLEANUP, ""),
            RETENTION: int(observed.configs.get(RETENTION, "0")),
            "created": created,
        }

    def end_offsets(self, topic: str) -> dict[int, int] | None:
        """High watermark per partition, or None when the topic does not exist."""
        return kafka_observer.end_offsets(self.client_config(), topic)
