"""Dagster resources: one ``ConfigurableResource`` per external system.

Assets call domain-level methods (``ensure_topic``, ``ensure_table``); they never touch a client
library directly. :func:`resources_for` wires them for the current environment in one place.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from datamesh import endpoints
from datamesh.endpoints import REGISTRY_USER_INFO_VAR
from resources.cdc import CdcResource
from resources.flink import FlinkResource
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from resources.schema_registry import SchemaRegistryResource


def _secret(var: str) -> Any:
    # EnvVar keeps the value out of the UI and run config; only wired when the variable exists.
    return dg.EnvVar(var) if endpoints.setting(var) else None


def resources_for() -> dict[str, Any]:
    """Resources keyed as the assets expect them. Endpoints resolve lazily (no I/O here)."""
    return {
        "kafka": KafkaResource(sasl_password=_secret("MESH_KAFKA_SASL_PASSWORD")),
        "schema_registry": SchemaRegistryResource(
            basic_auth_user_info=_secret(REGISTRY_USER_INFO_VAR)
        ),
        "flink": FlinkResource(),
        "cdc": CdcResource(postgres_dsn=_secret("MESH_POSTGRES_DSN")),
        "iceberg": IcebergResource(),
    }


__all__ = [
    "CdcResource",
    "FlinkResource",
    "IcebergResource",
    "KafkaResource",
    "SchemaRegistryResource",
    "resources_for",
]
