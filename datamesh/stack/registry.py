"""Embedded schema registry: the platform's Confluent-compatible REST service
(:mod:`datamesh.registry`), its state in a SQLite file under the work directory."""

from __future__ import annotations

import sys

import requests

from datamesh.endpoints import Record
from datamesh.process import spawn
from datamesh.stack.component import Component


class SchemaRegistry(Component):
    """Schema registry; endpoint is ``http://127.0.0.1:<port>``."""

    name = "schema_registry"
    status_key = "schema_registry_url"
    deadline_s = 30.0
    fix = "read the log; the registry is `python -m datamesh.registry`"

    def start(self) -> Record:
        (port,) = self.ports(["HTTP"])
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "datamesh.registry",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(self.home / "data"),
        ]
        pid = spawn(argv, self.log_path())
        return Record(self.name, f"http://127.0.0.1:{port}", [pid], [port], str(self.log_path()))

    def ready(self, endpoint: str) -> bool:
        try:
            # 401: serving, behind MESH_REGISTRY_AUTH (clients need MESH_SCHEMA_REGISTRY_USER_INFO)
            return requests.get(f"{endpoint}/subjects", timeout=2).status_code in (200, 401)
        except requests.RequestException:
            return False
