"""Iceberg catalog as a Dagster resource: creates and validates sink tables with pyiceberg.

The embedded default is pyiceberg's SQL catalog on SQLite with a local warehouse under the work
directory; ``MESH_ICEBERG_CATALOG_URI`` / ``MESH_ICEBERG_WAREHOUSE`` point elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import dagster as dg
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.utils.schema_conversion import AvroSchemaConversion

from datamesh.errors import DriftError
from datamesh.stack.paths import mesh_home


class IcebergResource(dg.ConfigurableResource):
    """An Iceberg catalog (SQL catalog by default)."""

    catalog_uri: str | None = None
    warehouse: str | None = None

    def catalog(self) -> Catalog:
        """The pyiceberg catalog, creating the local warehouse when embedded."""
        home = mesh_home() / "iceberg"
        uri = self.catalog_uri or os.environ.get("MESH_ICEBERG_CATALOG_URI")
        warehouse = self.warehouse or os.environ.get("MESH_ICEBERG_WAREHOUSE")
        if not uri:
            home.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{home / 'catalog.db'}"
        return SqlCatalog("mesh", uri=uri, warehouse=warehouse or f"file://{home / 'warehouse'}")

    def ensure_table(
        self, namespace: str, table: str, avro_schema: dict[str, Any]
    ) -> dict[str, Any]:
        """Create ``namespace.table`` from an Avro record schema, or check the existing one."""
        catalog = self.catalog()
        schema = AvroSchemaConversion().avro_to_iceberg(with_field_ids(avro_schema))
        with contextlib.suppress(NamespaceAlreadyExistsError):
            catalog.create_namespace(namespace)
        ident = f"{namespace}.{table}"
        try:
            existing = catalog.load_table(ident)
            created = False
        except NoSuchTableError:
            existing = catalog.create_table(ident, schema=schema)
            created = True
        have = [f.name for f in existing.schema().fields]
        want = [f.name for f in schema.fields]
        if have != want:
            raise DriftError(
                f'Iceberg table "{ident}"',
                "columns",
                want,
                have,
                fix="evolve the table to the declared schema or fix the declaration",
            )
        return {
            "table": ident,
            "location": existing.location(),
            "columns": len(have),
            "created": created,
        }


def with_field_ids(avro_schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``avro_schema`` with Iceberg ids on every field, element, key and value.

    pyiceberg's Avro conversion needs the ids Iceberg writes into Avro files; a product schema
    has none, so they are numbered depth-first from 1 (a new table gets fresh ids anyway).
    """
    schema = json.loads(json.dumps(avro_schema))
    counter = iter(range(1, 1_000_000))

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for branch in node:
                visit(branch)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind == "record":
                for f in node["fields"]:
                    f["field-id"] = next(counter)
                    visit(f["type"])
            elif kind == "array":
                node["element-id"] = next(counter)
                visit(node["items"])
            elif kind == "map":
                node["key-id"], node["value-id"] = next(counter), next(counter)
                visit(node["values"])

    visit(schema)
    return dict(schema)
