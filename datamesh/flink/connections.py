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
from datamesh.errors import ServiceUnavailable
from datamesh.kafka_config import SECURITY_ENV

GATEWAY_ENV = "MESH_FLINK_SQL_GATEWAY_URL"
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
        gateway_url=gateway_url(),
        flink_rest_url=endpoints.endpoint("flink"),
        registry_url=endpoints.endpoint("schema_registry"),
        kafka=java_kafka_properties(endpoints.endpoint("kafka")),
        registry_user_info=os.environ.get(REGISTRY_AUTH_ENV) or None,
    )


def gateway_url() -> str:
    """The SQL Gateway: ``MESH_FLINK_SQL_GATEWAY_URL`` or the one ``mesh up`` started."""
    value = os.environ.get(GATEWAY_ENV)
    if value:
        return value
    from datamesh.stack import state  # local: keeps this module import-light

    record = state.load().get("sql_gateway")
    if record is None:
        raise ServiceUnavailable(
            "the Flink SQL Gateway is not running",
            fix=f"run `mesh up`, or set {GATEWAY_ENV} to an existing gateway",
        )
    return record.endpoint


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
