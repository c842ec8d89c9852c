"""Fixtures: one real registry server per test session, and unique subject names.

Set ``MESH_SCHEMA_REGISTRY_URL`` to run the API tests against an already running registry
(for instance a real Confluent one) instead of starting ours.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from .process import RegistryProcess

ENV_URL = "MESH_SCHEMA_REGISTRY_URL"


@pytest.fixture(scope="session")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running registry: ``$MESH_SCHEMA_REGISTRY_URL`` or a fresh local server."""
    external = os.environ.get(ENV_URL)
    if external:
        yield external.rstrip("/")
        return
    root: Path = tmp_path_factory.mktemp("registry")
    server = RegistryProcess(root / "data", root / "server.log")
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def client(registry_url: str) -> SchemaRegistryClient:
    """A fresh Confluent client (fresh caches) per test."""
    return SchemaRegistryClient({"url": registry_url})


@pytest.fixture
def new_subject() -> Callable[[str], str]:
    """Factory of subject names unique to this test run: ``new_subject("orders")``."""

    def make(prefix: str = "subject") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    return make
