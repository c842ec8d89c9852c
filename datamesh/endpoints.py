"""Where each service is: an ``MESH_*`` environment variable, else what ``mesh up`` recorded.

This is the one place that reads the environment: every variable the platform honours is named
below, and the rest of the code asks :func:`setting` (or a function here) instead of reading
``os.environ`` (``tests/unit/test_layering.py`` fails on any other reader), so a variable is
looked up, documented and faked in one place. Tests and benchmarks set variables; they don't
read them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datamesh.errors import ServiceUnavailable

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The demo domains, read when MESH_DOMAINS_DIR is unset.
DEMO_DOMAINS_DIR = PROJECT_ROOT / "mesh_assets" / "domains"

# Every other variable the platform reads (service endpoints: ENV_VARS below; Kafka client
# security: datamesh.kafka_config.SECURITY_ENV).
MESH_HOME_VAR = "MESH_HOME"  # the embedded stack's work directory (default <project>/.mesh)
JARS_DIR_VAR = "MESH_JARS_DIR"  # Maven-resolved jars (default <project>/.mesh/jars)
DOMAINS_DIR_VAR = "MESH_DOMAINS_DIR"  # declarations (default: the demo domains)
FLINK_DIST_VAR = "MESH_FLINK_DIST"  # a Flink distribution instead of the PyFlink wheel's
PG_BIN_VAR = "MESH_PG_BIN"  # PostgreSQL 15 server binaries (default: Debian's)
EMBEDDED_SASL_VAR = "MESH_KAFKA_EMBEDDED_SASL"  # 1: the embedded broker adds a SASL listener
# more users of that listener, ``name:password,...`` (e.g. products' principals, to try ACLs)
EMBEDDED_SASL_USERS_VAR = "MESH_KAFKA_EMBEDDED_SASL_USERS"
# 1: the embedded broker enforces ACLs (StandardAuthorizer; the platform's own user is super)
EMBEDDED_AUTHORIZER_VAR = "MESH_KAFKA_EMBEDDED_AUTHORIZER"
REGISTRY_SERVER_AUTH_VAR = "MESH_REGISTRY_AUTH"  # user:password the registry service demands
CDC_DSN_VAR = "MESH_CDC_DSN"  # a connector's source DSN (keeps its password off the cmdline)
DAGSTER_HOME_VAR = "DAGSTER_HOME"  # mesh dev's Dagster instance (default <MESH_HOME>/dagster)
ICEBERG_CATALOG_URI_VAR = "MESH_ICEBERG_CATALOG_URI"  # an existing Iceberg SQL catalog
ICEBERG_WAREHOUSE_VAR = "MESH_ICEBERG_WAREHOUSE"  # and its warehouse

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


def setting(var: str) -> str | None:
    """The value of environment variable ``var``; None when it is unset or empty."""
    return os.environ.get(var) or None


def flag(var: str) -> bool:
    """True when ``var`` is ``1``, ``true`` or ``yes`` (any case)."""
    return (setting(var) or "").lower() in ("1", "true", "yes")


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process the platform spawns: this one's, plus ``extra``."""
    return {**os.environ, **(extra or {})}


def mesh_home() -> Path:
    """Work directory of the embedded stack: ``$MESH_HOME`` or ``<project>/.mesh``."""
    return Path(setting(MESH_HOME_VAR) or PROJECT_ROOT / ".mesh").resolve()


def jars_dir() -> Path:
    """Maven-resolved jars (``make jars``): ``$MESH_JARS_DIR`` or ``<project>/.mesh/jars``."""
    return Path(setting(JARS_DIR_VAR) or PROJECT_ROOT / ".mesh" / "jars").resolve()


def domains_dir() -> Path:
    """Where declarations are read: ``$MESH_DOMAINS_DIR``, else the demo domains."""
    return Path(setting(DOMAINS_DIR_VAR) or DEMO_DOMAINS_DIR)


def control_dir() -> Path:
    """The controller's own state (what it applied, its journal): ``<MESH_HOME>/control``."""
    return mesh_home() / "control"


def state_file() -> Path:
    """The JSON record of what ``mesh up`` started: ``<MESH_HOME>/state.json``."""
    return mesh_home() / "state.json"


def paused_dir() -> Path:
    """The platform's record of paused pipelines: ``<MESH_HOME>/paused``, one JSON per product."""
    return mesh_home() / "paused"


def pause_file(product_id: str) -> Path:
    """The pause record of ``product_id``: ``<MESH_HOME>/paused/<domain>.<product>.json``."""
    return paused_dir() / f"{product_id}.json"


def deployed_inputs_file(product_id: str) -> Path:
    """The input schemas ``product_id``'s job was last deployed against:
    ``<MESH_HOME>/deployed-inputs/<domain>.<product>.json``."""
    return mesh_home() / "deployed-inputs" / f"{product_id}.json"


@dataclass
class Record:
    """What ``mesh up`` started for one component: its endpoint, processes, ports and log."""

    name: str
    endpoint: str
    pids: list[int] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    log: str = ""
    external: bool = False
    extra: dict[str, str] = field(default_factory=dict)  # more endpoints, e.g. sasl_bootstrap

    def to_json(self) -> dict[str, Any]:
        """Plain JSON form for ``state.json``."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        """Inverse of :meth:`to_json`."""
        return cls(**data)


def load_records(path: Path | None = None) -> dict[str, Record]:
    """The records of ``state.json`` by component name; empty when nothing was started."""
    path = path or state_file()
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {name: Record.from_json(rec) for name, rec in data.get("components", {}).items()}


def save_records(records: dict[str, Record], path: Path | None = None) -> None:
    """Write the records atomically (rename), so a crash never leaves half a file."""
    path = path or state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"components": {n: r.to_json() for n, r in records.items()}}, indent=2)
    )
    os.replace(tmp, path)


def external(component: str) -> str | None:
    """The endpoint of an existing deployment of ``component`` its variable names, if set."""
    return setting(ENV_VARS[component])


def endpoint(component: str) -> str:
    """The endpoint of ``component`` or :class:`ServiceUnavailable` naming the fix."""
    value = external(component)
    if value:
        return value
    record = load_records().get(component)
    if record is None:
        raise ServiceUnavailable(
            f"{component} is not running",
            fix=f"run `mesh up`, or set {ENV_VARS[component]} to an existing deployment",
        )
    return record.endpoint


def registry_user_info() -> str | None:
    """``user:password`` for the schema registry's basic authentication, if configured."""
    return setting(REGISTRY_USER_INFO_VAR)


_USERINFO = re.compile(r"(://[^:/@]+):[^@/]*@")
_PASSWORD_KV = re.compile(r"(password=)\S+", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide passwords in DSNs and URLs (``user:secret@`` and ``password=secret``)."""
    return _PASSWORD_KV.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))
