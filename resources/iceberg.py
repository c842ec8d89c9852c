"""Iceberg catalog as a Dagster resource: runs sink batches and reads what they committed.

The embedded default is pyiceberg's SQL catalog on SQLite with a local warehouse under the work
directory; ``MESH_ICEBERG_CATALOG_URI`` / ``MESH_ICEBERG_WAREHOUSE`` point elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.schema import Schema

from datamesh.schema_client import SchemaClient
from datamesh.sinks import offsets
from datamesh.sinks.catalog import open_catalog
from datamesh.sinks.iceberg_sink import IcebergSink, SinkJob, SinkReport


class IcebergResource(dg.ConfigurableResource):
    """An Iceberg catalog (SQL catalog by default)."""

    catalog_uri: str | None = None
    warehouse: str | None = None

    def catalog(self) -> Catalog:
        """The pyiceberg catalog, creating the local warehouse when embedded."""
        return open_catalog(self.catalog_uri, self.warehouse)

    def run_sink(
        self,
        job: SinkJob,
        kafka_config: dict[str, Any],
        registry: SchemaClient,
        progress: Callable[[str], None],
    ) -> SinkReport:
        """Apply everything new on the sink's input topic to its table in one snapshot."""
        return IcebergSink(self.catalog(), kafka_config, registry).run(job, progress)

    def committed_offsets(self, ident: str, topic: str) -> dict[int, int]:
        """Next offset per partition the table has applied ({} when it does not exist)."""
        try:
            table = self.catalog().load_table(ident)
        except NoSuchTableError:
            return {}
        return offsets.committed(table, topic)

    def table_schema(self, ident: str) -> Schema | None:
        """The table's current schema (None when it does not exist)."""
        try:
            return self.catalog().load_table(ident).schema()
        except NoSuchTableError:
            return None
