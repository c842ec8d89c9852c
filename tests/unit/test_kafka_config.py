"""Kafka security settings: what each client gets from the ``MESH_KAFKA_*`` variables (pure)."""

from __future__ import annotations

import pytest

from datamesh.flink.connections import ENV_PROVIDER, java_kafka_properties
from datamesh.kafka_config import client_config, safe_view

SASL = {
    "MESH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "MESH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "MESH_KAFKA_SASL_USERNAME": "svc-mesh",
    "MESH_KAFKA_SASL_PASSWORD": "s3cr3t-value",
    "MESH_KAFKA_SSL_CA_LOCATION": "/etc/ssl/ca.pem",
}


@pytest.fixture
def sasl_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in SASL.items():
        monkeypatch.setenv(var, value)


def test_librdkafka_clients_get_every_setting(sasl_env: None) -> None:
    config = client_config("b:9092")
    assert config["sasl.password"] == "s3cr3t-value" and config["security.protocol"] == "SASL_SSL"
    assert safe_view(config)["sasl.password"] == "***"
    assert client_config("b:9092", {"sasl.username": "other"})["sasl.username"] == "other"


def test_credentials_without_a_mechanism_are_not_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_KAFKA_SASL_USERNAME", "svc-mesh")
    monkeypatch.setenv("MESH_KAFKA_SASL_PASSWORD", "s3cr3t-value")
    assert client_config("b:9092") == {"bootstrap.servers": "b:9092"}


def test_flink_properties_reference_the_password_instead_of_holding_it(sasl_env: None) -> None:
    props = java_kafka_properties("b:9092")
    assert "s3cr3t-value" not in repr(props)
    assert props["config.providers"] == "mesh_env"
    assert props["config.providers.mesh_env.class"] == ENV_PROVIDER
    assert props["sasl.jaas.config"] == (
        "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule "
        'required username="svc-mesh" password="${mesh_env:MESH_KAFKA_SASL_PASSWORD}";'
    )
    assert props["ssl.truststore.type"] == "PEM"


def test_plaintext_flink_properties_are_only_the_bootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in SASL:
        monkeypatch.delenv(var, raising=False)
    assert java_kafka_properties("b:9092") == {"bootstrap.servers": "b:9092"}
