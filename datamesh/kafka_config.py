"""Kafka client configuration: bootstrap servers plus SASL/SSL settings passed through as-is."""

from __future__ import annotations

from typing import Any

from datamesh import endpoints

# librdkafka key -> environment variable read when no explicit value is given.
SECURITY_ENV: dict[str, str] = {
    "security.protocol": "MESH_KAFKA_SECURITY_PROTOCOL",
    "sasl.mechanism": "MESH_KAFKA_SASL_MECHANISM",
    "sasl.username": "MESH_KAFKA_SASL_USERNAME",
    "sasl.password": "MESH_KAFKA_SASL_PASSWORD",
    "ssl.ca.location": "MESH_KAFKA_SSL_CA_LOCATION",
    "ssl.certificate.location": "MESH_KAFKA_SSL_CERTIFICATE_LOCATION",
    "ssl.key.location": "MESH_KAFKA_SSL_KEY_LOCATION",
    "ssl.key.password": "MESH_KAFKA_SSL_KEY_PASSWORD",
}
SECRET_KEYS = frozenset({"sasl.password", "ssl.key.password"})


def client_config(bootstrap: str, explicit: dict[str, str | None] | None = None) -> dict[str, Any]:
    """librdkafka config: explicit values win, then ``MESH_KAFKA_*`` variables; None is unset.

    SASL credentials are passed only with a ``sasl.mechanism`` (librdkafka warns about them
    otherwise): a shell that exports them for the embedded broker's SASL listener (see
    :mod:`datamesh.stack.kafka`) leaves plaintext clients as they are.
    """
    config: dict[str, Any] = {"bootstrap.servers": bootstrap}
    for key, var in SECURITY_ENV.items():
        value = (explicit or {}).get(key) or endpoints.setting(var)
        if value:
            config[key] = value
    if "sasl.mechanism" not in config:
        config.pop("sasl.username", None)
        config.pop("sasl.password", None)
    return config


def safe_view(config: dict[str, Any]) -> dict[str, Any]:
    """The config with secrets masked, for logs and metadata."""
    return {k: ("***" if k in SECRET_KEYS else v) for k, v in config.items()}
