"""Where a processor job's services are, and the Kafka client properties Flink's connector needs.

Endpoints come from :mod:`datamesh.endpoints` (``MESH_*`` variables, else what ``mesh up``
recorded). The SQL Gateway is found through ``MESH_FLINK_SQL_GATEWAY_URL`` or the stack's record.
Kafka security settings are translated from the platform's librdkafka-style ``MESH_KAFKA_*``
variables to Java client properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datamesh import endpoints
from datamesh.kafka_config import SECURITY_ENV


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
        registry_user_info=endpoints.registry_user_info(),
    )


# Kafka's EnvVarConfigProvider (KIP-887), under the connector jar's shaded package name.
ENV_PROVIDER = (
    "org.apache.flink.kafka.shaded.org.apache.kafka.common.config.provider.EnvVarConfigProvider"
)
SHADED_SECURITY = "org.apache.flink.kafka.shaded.org.apache.kafka.common.security"


def java_kafka_properties(bootstrap: str) -> dict[str, str]:
    """Java Kafka client properties equivalent to the ``MESH_KAFKA_*`` security settings.

    The SASL password is never written into the job: the JAAS line holds
    ``${mesh_env:MESH_KAFKA_SASL_PASSWORD}``, which Kafka's client resolves from the environment
    of the Flink process that opens the connection (the embedded cluster inherits ``mesh up``'s
    environment; on Kubernetes, map the secret to that variable on the JobManager and
    TaskManagers). So it appears neither in the SQL, nor in Flink's job configuration, nor in
    the SQL Gateway's logs.
    """
    env = {key: endpoints.setting(var) for key, var in SECURITY_ENV.items()}
    props = {"bootstrap.servers": bootstrap}
    if env["security.protocol"]:
        props["security.protocol"] = str(env["security.protocol"])
    mechanism = env["sasl.mechanism"]
    if mechanism:
        props["sasl.mechanism"] = mechanism
        module = (
            f"{SHADED_SECURITY}.scram.ScramLoginModule"
            if mechanism.startswith("SCRAM")
            else f"{SHADED_SECURITY}.plain.PlainLoginModule"
        )
        password_var = SECURITY_ENV["sasl.password"]
        props.update(
            {
                "config.providers": "mesh_env",
                "config.providers.mesh_env.class": ENV_PROVIDER,
                # the provider may read the platform's Kafka variables only
                "config.providers.mesh_env.param.allowlist.pattern": "^MESH_KAFKA_.*$",
                "sasl.jaas.config": (
                    f'{module} required username="{env["sasl.username"]}" '
                    f'password="${{mesh_env:{password_var}}}";'
                ),
            }
        )
    if env["ssl.ca.location"]:
        props["ssl.truststore.type"] = "PEM"
        props["ssl.truststore.location"] = str(env["ssl.ca.location"])
    return props
