"""CDC connectors as a Dagster resource: start, inspect and stop the platform's connectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from datamesh import endpoints
from datamesh.control import connectors
from datamesh.control.connector_apply import converge
from datamesh.specs.product import DataProduct


class CdcResource(dg.ConfigurableResource):
    """Supervises one connector per source database (PostgreSQL logical replication)."""

    postgres_dsn: str | None = None

    def ensure(self, product: DataProduct, products: Sequence[DataProduct]) -> dict[str, Any]:
        """Make the connector capturing ``product`` follow exactly its declared tables and
        run (a newly declared table is added and snapshotted, a removed one dropped: the
        controller's :func:`~datamesh.control.connector_apply.converge`); its status document.
        Drift is repaired only when ``product`` declares ``repair: auto``."""
        spec = connectors.spec_for(product, products)
        cfg = connectors.config(
            spec,
            self.postgres_dsn or endpoints.endpoint("postgres"),
            endpoints.endpoint("kafka"),
            endpoints.endpoint("schema_registry"),
        )
        owners = connectors.products_by_table(spec, products)
        return converge(spec, cfg, owners.get, repair=product.repair == "auto")

    @staticmethod
    def metadata(product: DataProduct, status: dict[str, Any]) -> dict[str, Any]:
        """Asset metadata of one CDC product from its connector's status (no secrets)."""
        assert product.source is not None
        table = f"{product.source.schema}.{product.source.table}"
        snap = (status.get("snapshot") or {}).get(table) or {}
        tables = status.get("tables") or {}
        paused = (tables.get(table) or {}).get("paused")
        return {
            "connector": status.get("connector", ""),
            "connector_state": status.get("state", ""),
            "slot_lag_bytes": int(status.get("slot_lag_bytes") or 0),
            "last_lsn": str(status.get("last_lsn") or ""),
            "events_sent": int(status.get("events_sent") or 0),
            "snapshot_status": str(snap.get("status", "none")),
            "snapshot_rows_done": int(snap.get("rows_done") or 0),
            "snapshot_rows_estimate": int(snap.get("total_estimate") or 0),
            "paused_reason": str(paused or ""),
            "connector_restarts": int(status.get("connector_restarts") or 0),
            "connector_last_exit": str(status.get("connector_last_exit") or ""),
        }
