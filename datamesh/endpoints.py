"""Where each service is: an ``MESH_*`` environment variable, else what ``mesh up`` recorded.

This is the one place that decides the environment; resources, the CLI and tests ask here.
"""

from __future__ import annotations

import os
import re

from datamesh.errors import ServiceUnavailable

DAGSTER_URL_VAR = "MESH_DAGSTER_URL"
# user:password every platform client sends to the schema registry (basic authentication)
REGISTRY_USER_INFO_VAR = "MESH_SCHEMA_REGISTRY_USER_INFO"
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"

# component name -> environment variable that points at an existing deployment
ENV_VARS = {
    "kafka": "MESH_KAFKA_BOOTSTRAP",
    "postgres": "MESH_POSTGRES_DSN",
    "schema_registry": "MESH_SCHEMA_REGISTRY_URL",
    "flink": "MESH_FLINK_REST_URL",
    "sql_gateway": "MESH_FLINK_SQL_GATEWAY_URL",
}


def endpoint(component: str) -> str:
    """The endpoint of ``component`` or :class:`ServiceUnavailable` naming the fix."""
    value = os.environ.get(ENV_VARS[component])
    if value:
        return value
    from datamesh.stack import state  # local: keeps this module import-light

    record = state.load().get(component)
    if record is None:
        raise ServiceUnavailable(
            f"{component} is not running",
            fix=f"run `mesh up`, or set {ENV_VARS[component]} to an existing deployment",
        )
    return record.endpoint


def registry_user_info() -> str | None:
    """``user:password`` for the schema registry's basic authentication, if configured."""
    return os.environ.get(REGISTRY_USER_INFO_VAR) or None


_USERINFO = re.compile(r"(://[^:/@]+):[^@/]*@")
_PASSWORD_KV = re.compile(r"(password=)\S+", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide passwords in DSNs and URLs (``user:secret@`` and ``password=secret``)."""
    return _PASSWORD_KV.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))
