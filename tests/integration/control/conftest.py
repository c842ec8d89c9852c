"""A test domain for the controller: a CDC table, a processor copying it and an Iceberg sink of
the copy, declared in YAML the tests edit; the sinks' source-database fixture (a fresh database
per test) provides the table."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from datamesh import names
from datamesh.cdc import running
from datamesh.control.apply import Options, Report, apply
from datamesh.control.observe import observe
from datamesh.control.plan import plan
from datamesh.flink.connections import resolve
from datamesh.flink.jobmanager import JobManager
from datamesh.specs import load_products
from datamesh.specs.product import DataProduct
from tests.integration.flink.conftest import conn, flink, topics
from tests.integration.sinks.conftest import Source, source

# the Flink tests' session clients serve the schema-evolution tests
__all__ = ["DDL", "ITEM", "OWNER", "Mesh", "conn", "flink", "mesh", "source", "topics"]

DDL = "CREATE TABLE items (id bigint PRIMARY KEY, name text)"
ITEM = {"type": "record", "name": "Item", "fields": [
    {"name": "id", "type": "long"}, {"name": "name", "type": ["null", "string"], "default": None},
]}  # fmt: skip
OWNER = "team:control-test"


@dataclass
class Mesh:
    """A test domain declared in YAML and its source database (the controller keeps its state
    in the session's MESH_HOME; a plan only retires products of the domains it is given, so
    tests with their own domains do not see each other)."""

    src: Source
    folder: Path
    declaration: dict[str, Any]

    def products(self) -> tuple[DataProduct, ...]:
        (self.folder / "products.yaml").write_text(yaml.safe_dump(self.declaration))
        return load_products(self.folder.parent)

    def product(self, name: str) -> dict[str, Any]:
        return next(p for p in self.declaration["products"] if p["name"] == name)

    def apply(self, say: Callable[[str], None] = print, **flags: bool) -> Report:
        return apply(self.products(), Options(**flags), say=say)

    def plan_lines(self) -> list[str]:
        products = self.products()
        return [a.describe() for a in plan(products, observe(products))]

    def id(self, name: str) -> str:
        return f"{self.src.domain}.{name}"


@pytest.fixture
def mesh(source: Callable[..., Source], tmp_path: Path) -> Iterator[Mesh]:
    src = source(DDL, capture=False)
    src.run("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 20) g")
    folder = tmp_path / "domains" / src.domain
    folder.mkdir(parents=True)
    (folder / "items.avsc").write_text(json.dumps(ITEM))
    (folder / "copy.avsc").write_text(json.dumps({**ITEM, "name": "Copy"}))
    (folder / "copy.sql").write_text(f"SELECT id, name FROM `{src.domain}.items`\n")
    declaration = {
        "domain": src.domain,
        "owners": [OWNER],
        "products": [
            {"name": "items", "kind": "cdc", "description": "test items",
             "source": {"database": src.database, "table": "public.items"},
             "schema": "items.avsc", "key": ["id"]},
            {"name": "copy", "kind": "processor", "description": "a copy of the items",
             "inputs": [f"{src.domain}.items"], "sql": "copy.sql", "schema": "copy.avsc",
             "key": ["id"], "topic": {"cleanup_policy": "compact"}},
            {"name": "copy_table", "kind": "iceberg_sink", "description": "the copy, in Iceberg",
             "inputs": [f"{src.domain}.copy"]},
        ],
    }  # fmt: skip
    yield Mesh(src, folder, declaration)
    jm = JobManager(resolve().flink_rest_url)
    for job in jm.jobs():
        if job.active and job.name.startswith(f"mesh-{src.domain}-"):
            jm.cancel(job.job_id)
    running.stop(names.connector(src.domain, src.database))
