"""Where a processor job's services are, and the Kafka client properties Flink's connector needs.

Endpoints come from :mod:`datamesh.endpoints` (``MESH_*`` variables, else what ``mesh up``
recorded). The SQL Gateway is found through ``MESH_FLINK_SQL_GATEWAY_URL`` or the stack's record.
Kafka security settings are translated from the platform's librdkafka-style ``MESH_KAFKA_*``
variables to Java client properties.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from datamesh import endpoints
from datamesh.kafka_config import SECURITY_ENV

REGISTRY_AUTH_ENV = "MESH_SCHEMA_REGISTRY_USER_INFO"


@dataclass(frozen=True)
class Connections:
    """Endpoints of one environment, plus Kafka properties for Flink (``properties.*``)."""

    gateway_url: str
    flink_rest_url: str
    registry_url: str
    kafka: dict[str, str] = field(default_factory=dict)
    registry_user_info: str | None = None

    @property
    def bootstrap(self) -> str:
        """Kafka bootstrap servers."""
        return self.kafka["bootstrap.servers"]


def resolve() -> Connections:
    """The connections of the current environment; :class:`ServiceUnavailable` names the fix."""
    return Connections(
        gateway_url=endpoints.endpoint("sql_gateway"),
        flink_rest_url=endpoints.endpoint("flink"),
        registry_url=endpoints.endpoint("schema_registry"),
        kafka=java_kafka_properties(endpoints.endpoint("kafka")),
        registry_user_info=os.environ.get(REGISTRY_AUTH_ENV) or None,
    )


def java_kafka_properties(bootstrap: str) -> dict[str, str]:
    """Java Kafka client properties equivalent to the ``MESH_KAFKA_*`` security settings."""
    env = {key: os.environ.get(var) for key, var in SECURITY_ENV.items()}
    props = {"bootstrap.servers": bootstrap}
    if env["security.protocol"]:
        props["security.protocol"] = str(env["security.protocol"])
    mechanism = env["sasl.mechanism"]
    if mechanism:
        props["sasl.mechanism"] = mechanism
        module = (
            "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule"
            if mechanism.startswith("SCRAM")
            else "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.plain"
            ".PlainLoginModule"
        )
        props["sasl.jaas.config"] = (
            f'{module} required username="{env["sasl.username"]}" '
            f'password="{env["sasl.password"]}";'
        )
    if env["ssl.ca.location"]:
        props["ssl.truststore.type"] = "PEM"
        props["ssl.truststore.location"] = str(env["ssl.ca.location"])
    return props
