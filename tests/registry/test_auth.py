"""Basic authentication of the registry service (``MESH_REGISTRY_AUTH``), on a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from datamesh.registry.auth import SERVER_AUTH_ENV
from datamesh.schema_client import SchemaClient

from .process import RegistryProcess

USER_INFO = "registry-user:pa55:with-colon"
RECORD = '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}'


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("locked")
    server = RegistryProcess(root / "data", root / "server.log", {SERVER_AUTH_ENV: USER_INFO})
    url = server.start()
    try:
        yield url, server.log_path
    finally:
        server.stop()


def test_requests_without_the_credentials_get_401(locked: tuple[str, Path]) -> None:
    url, _ = locked
    for auth in (None, ("registry-user", "wrong"), ("other", "pa55:with-colon")):
        answer = requests.get(f"{url}/subjects", auth=auth, timeout=5)
        assert answer.status_code == 401
        assert answer.json() == {"error_code": 401, "message": "Unauthorized"}
        assert answer.headers["www-authenticate"].startswith("Basic")
    with pytest.raises(SchemaRegistryError) as refused:
        SchemaRegistryClient({"url": url}).get_subjects()
    assert refused.value.http_status_code == 401


def test_clients_with_the_credentials_work_and_the_secret_stays_out_of_the_log(
    locked: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, log = locked
    confluent = SchemaRegistryClient({"url": url, "basic.auth.user.info": USER_INFO})
    schema_id = confluent.register_schema("auth-value", Schema(RECORD, "AVRO"))
    # the platform's client takes MESH_SCHEMA_REGISTRY_USER_INFO from the environment
    monkeypatch.setenv("MESH_SCHEMA_REGISTRY_USER_INFO", USER_INFO)
    latest = SchemaClient(url).latest("auth-value")
    assert latest is not None and latest.id == schema_id
    assert "pa55" not in log.read_text()
