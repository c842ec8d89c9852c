"""Schema registry as a Dagster resource (Confluent REST API)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from datamesh import endpoints
from datamesh.control import schemas
from datamesh.schema_client import SchemaClient
from datamesh.specs.product import DataProduct


class SchemaRegistryResource(dg.ConfigurableResource):
    """A schema registry (``MESH_SCHEMA_REGISTRY_URL`` or the one ``mesh up`` started)."""

    url: str | None = None
    basic_auth_user_info: str | None = None

    def client(self) -> SchemaClient:
        """A client for this registry."""
        return SchemaClient(
            self.url or endpoints.endpoint("schema_registry"), self.basic_auth_user_info
        )

    def check(self, product: DataProduct) -> None:
        """Set subject levels and check compatibility; raises IncompatibleSchema."""
        schemas.check_all(self.client(), product)

    def register(self, product: DataProduct) -> dict[str, Any]:
        """Register the product's schemas; metadata of the registered versions."""
        out: dict[str, Any] = {}
        for reg in schemas.register_all(self.client(), product):
            kind = "key" if reg.subject.endswith("-key") else "value"
            out[f"{kind}_schema_id"] = reg.id
            out[f"{kind}_schema_version"] = reg.version
        return out
