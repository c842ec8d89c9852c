"""Kafka security settings: what each client gets from the ``MESH_KAFKA_*`` variables (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamesh.errors import StackError
from datamesh.flink.connections import ENV_PROVIDER, java_kafka_properties
from datamesh.kafka_config import client_config, safe_view
from datamesh.stack.kafka import (
    EMBEDDED_SASL_ENV,
    EMBEDDED_SASL_USERS_ENV,
    STANDARD_AUTHORIZER,
    SaslListener,
    server_properties,
)

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


def test_the_embedded_sasl_listener_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EMBEDDED_SASL_ENV, raising=False)
    monkeypatch.setenv("MESH_KAFKA_SASL_USERNAME", "svc-mesh")
    monkeypatch.setenv("MESH_KAFKA_SASL_PASSWORD", "s3cr3t-value")
    assert SaslListener.from_env(9999) is None  # credentials meant for another cluster
    monkeypatch.setenv(EMBEDDED_SASL_ENV, "1")
    listener = SaslListener.from_env(9999)
    assert listener is not None and "s3cr3t-value" not in repr(listener)
    props = server_properties(Path("/d"), 1, 2, listener)
    assert "SASL_PLAINTEXT://127.0.0.1:9999" in props
    assert 'user_svc-mesh="s3cr3t-value"' in props


@pytest.mark.parametrize(
    ("username", "password"),
    [("svc@corp", "pw-Zq1"), ("svc", 'pw"Zq2'), ("svc", "pw\\Zq3"), ("", "")],
)
def test_bad_embedded_credentials_name_the_fix(
    monkeypatch: pytest.MonkeyPatch, username: str, password: str
) -> None:
    monkeypatch.setenv(EMBEDDED_SASL_ENV, "1")
    monkeypatch.setenv("MESH_KAFKA_SASL_USERNAME", username)
    monkeypatch.setenv("MESH_KAFKA_SASL_PASSWORD", password)
    with pytest.raises(StackError) as info:
        SaslListener.from_env(9999)
    assert "MESH_KAFKA_SASL_" in str(info.value.fix)
    assert not password or password not in str(info.value)


def test_more_sasl_users_and_the_authorizer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EMBEDDED_SASL_ENV, "1")
    monkeypatch.setenv("MESH_KAFKA_SASL_USERNAME", "svc-mesh")
    monkeypatch.setenv("MESH_KAFKA_SASL_PASSWORD", "s3cr3t-value")
    monkeypatch.setenv(EMBEDDED_SASL_USERS_ENV, "studio.catalog:pw-1, content.sink:pw-2")
    listener = SaslListener.from_env(9999)
    assert listener is not None and "pw-1" not in repr(listener)
    plain = server_properties(Path("/d"), 1, 2, listener)
    jaas = next(line for line in plain.splitlines() if "jaas.config" in line)
    assert jaas.endswith(
        'required user_svc-mesh="s3cr3t-value" user_studio.catalog="pw-1" user_content.sink="pw-2";'
    )
    assert "authorizer" not in plain  # opt-in
    props = server_properties(Path("/d"), 1, 2, listener, authorizer=True)
    assert f"authorizer.class.name={STANDARD_AUTHORIZER}" in props.splitlines()
    assert "super.users=User:ANONYMOUS;User:svc-mesh" in props.splitlines()


@pytest.mark.parametrize("users", ["studio.catalog", "studio catalog:pw", 'a:pw,b:p"w'])
def test_bad_extra_sasl_users_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, users: str
) -> None:
    monkeypatch.setenv(EMBEDDED_SASL_ENV, "1")
    monkeypatch.setenv("MESH_KAFKA_SASL_USERNAME", "svc-mesh")
    monkeypatch.setenv("MESH_KAFKA_SASL_PASSWORD", "s3cr3t-value")
    monkeypatch.setenv(EMBEDDED_SASL_USERS_ENV, users)
    with pytest.raises(StackError) as info:
        SaslListener.from_env(9999)
    assert EMBEDDED_SASL_USERS_ENV in str(info.value.fix)
    assert 'p"w' not in str(info.value)


def test_the_authorizer_needs_the_sasl_listener() -> None:
    with pytest.raises(StackError) as info:
        server_properties(Path("/d"), 1, 2, None, authorizer=True)
    assert EMBEDDED_SASL_ENV in str(info.value.fix)
