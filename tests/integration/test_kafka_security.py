"""SASL settings pass through the platform's Kafka clients; the password stays private.

Runs against the embedded broker's SASL_PLAINTEXT (PLAIN) listener, which the session enables
by exporting ``MESH_KAFKA_SASL_USERNAME``/``PASSWORD`` before ``mesh up``.
"""

from __future__ import annotations

import os
import stat
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient

from datamesh.endpoints import Record
from datamesh.kafka_config import SECURITY_ENV, client_config, safe_view
from datamesh.specs.product import TopicSettings
from datamesh.stack import stack
from resources.kafka import KafkaResource

pytestmark = pytest.mark.integration


def test_the_sasl_listener_takes_the_exported_user_and_refuses_others(
    sasl_bootstrap: str,
) -> None:
    config = client_config(sasl_bootstrap)
    assert config["sasl.mechanism"] == "PLAIN" and config["sasl.username"] == "mesh-test"
    assert AdminClient(config).list_topics(timeout=15).brokers
    errors: list[KafkaError] = []
    wrong = {**config, "sasl.password": "not-the-password", "error_cb": errors.append}
    producer = Producer(wrong)  # connects at once; error_cb is served by poll()
    deadline = time.monotonic() + 15
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert safe_view(config)["sasl.password"] == "***"


def test_the_dagster_kafka_resource_provisions_through_sasl(sasl_bootstrap: str) -> None:
    resource = KafkaResource(bootstrap_servers=sasl_bootstrap)
    topic = f"sasl_{uuid.uuid4().hex[:10]}"
    meta = resource.ensure_topic(topic, TopicSettings(1, 1, 3_600_000, "delete"), "test.yaml")
    assert meta and topic in AdminClient(client_config(sasl_bootstrap)).list_topics().topics
    assert os.environ[SECURITY_ENV["sasl.password"]] not in repr(meta)


def test_plaintext_clients_ignore_exported_credentials(mesh_stack: dict[str, Record]) -> None:
    # the session exports a username and password but no mechanism: plaintext as before
    config = client_config(mesh_stack["kafka"].endpoint)
    assert set(config) == {"bootstrap.servers"}


def test_the_broker_keeps_the_password_in_an_owner_only_file(
    mesh_stack: dict[str, Record], mesh_home: Path
) -> None:
    assert stack.status()["kafka_sasl_bootstrap"] == mesh_stack["kafka"].extra["sasl_bootstrap"]
    password = os.environ[SECURITY_ENV["sasl.password"]]
    props = mesh_home / "kafka" / "server.properties"
    assert stat.S_IMODE(props.stat().st_mode) == 0o600
    assert password in props.read_text()  # the broker needs it somewhere: only here
    for log in (mesh_home / "kafka").glob("*.log"):
        assert password not in log.read_text(errors="replace"), log
