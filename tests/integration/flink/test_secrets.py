"""A processor job authenticates to Kafka (SASL/PLAIN) and to the schema registry (basic auth)
with credentials that are in no statement, job configuration or Flink log.

The SQL names ``${mesh_env:MESH_KAFKA_SASL_PASSWORD}`` (Kafka's EnvVarConfigProvider) and
``${env:MESH_SCHEMA_REGISTRY_USER_INFO}`` (the mesh formats); both are resolved inside Flink from
the environment the session exported before ``mesh up``. The registry here is a second,
authenticating instance (``MESH_REGISTRY_AUTH``) started by the test.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from datamesh import names
from datamesh.endpoints import REGISTRY_USER_INFO_VAR
from datamesh.flink import FlinkJobs, ProcessorJob
from datamesh.flink.connections import Connections, java_kafka_properties
from datamesh.kafka_config import SECURITY_ENV
from datamesh.registry.auth import SERVER_AUTH_ENV
from tests.integration.flink.conftest import Topics, product, record
from tests.registry.process import RegistryProcess

pytestmark = pytest.mark.integration

EVENTS = [("id", "long"), ("amount", "long")]


@pytest.fixture
def locked_registry(mesh_home: Path) -> Iterator[str]:
    """A registry that demands the session's MESH_SCHEMA_REGISTRY_USER_INFO."""
    user_info = os.environ[REGISTRY_USER_INFO_VAR]
    root = mesh_home / "locked-registry"
    root.mkdir(exist_ok=True)
    server = RegistryProcess(root / "data", root / "registry.log", {SERVER_AUTH_ENV: user_info})
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def test_a_job_authenticates_everywhere_without_a_secret_in_sight(
    conn: Connections,
    domain: str,
    jobs: Callable[..., ProcessorJob],
    sasl_bootstrap: str,
    locked_registry: str,
    mesh_home: Path,
) -> None:
    secrets = [os.environ[SECURITY_ENV["sasl.password"]], os.environ[REGISTRY_USER_INFO_VAR]]
    assert requests.get(f"{locked_registry}/subjects", timeout=5).status_code == 401
    # the test's own clients: plaintext Kafka, the locked registry with credentials
    plain = dataclasses.replace(conn, registry_url=locked_registry)
    topics = Topics(plain)
    # the job's: SASL listener, locked registry
    flink = FlinkJobs(dataclasses.replace(plain, kafka=java_kafka_properties(sasl_bootstrap)))

    events = product(domain, "events", "processor", record("Event", domain, EVENTS))
    topics.create(names.topic(events))
    doubled = product(
        domain,
        "doubled",
        "processor",
        None,
        inputs=(events.id,),
        sql=f"SELECT id, amount * 2 AS amount FROM `{events.id}`",
    )
    job = jobs(doubled, [events])
    plan = flink.validate(job)
    statements = "\n".join([*plan.statements.ddl, plan.statements.insert])
    assert "${mesh_env:MESH_KAFKA_SASL_PASSWORD}" in statements
    assert "${env:MESH_SCHEMA_REGISTRY_USER_INFO}" in statements
    assert all(secret not in statements for secret in secrets)

    status = flink.deploy(job)
    assert status.running
    values: list[Any] = [{"id": i, "amount": i} for i in range(5)]
    topics.produce(names.topic(events), events.value_schema, values)
    out = topics.read(names.topic(doubled), lambda m: len(m) >= 5)
    assert [v for _, v, _ in out] == [{"id": i, "amount": 2 * i} for i in range(5)]

    seen = [requests.get(f"{conn.flink_rest_url}/jobs/{status.job_id}/config", timeout=10).text]
    for path in [*(mesh_home / "flink").rglob("*"), *(mesh_home / "sql_gateway").rglob("*")]:
        if path.is_file() and path.suffix in (".log", ".out"):
            seen.append(path.read_text(errors="replace"))
    assert all(secret not in text for secret in secrets for text in seen)
