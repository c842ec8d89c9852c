"""The Iceberg catalog the sinks write to: pyiceberg's SQL catalog on SQLite with a warehouse
under the work directory by default; ``MESH_ICEBERG_CATALOG_URI`` / ``MESH_ICEBERG_WAREHOUSE``
point at another one. One function, used by the Dagster resource and the controller."""

from __future__ import annotations

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog

from datamesh import endpoints


def open_catalog(uri: str | None = None, warehouse: str | None = None) -> Catalog:
    """The catalog (``uri``/``warehouse`` override the environment), creating the local
    warehouse directory when embedded."""
    home = endpoints.mesh_home() / "iceberg"
    uri = uri or endpoints.setting(endpoints.ICEBERG_CATALOG_URI_VAR)
    warehouse = warehouse or endpoints.setting(endpoints.ICEBERG_WAREHOUSE_VAR)
    if not uri:
        home.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{home / 'catalog.db'}"
    return SqlCatalog("mesh", uri=uri, warehouse=warehouse or f"file://{home / 'warehouse'}")
