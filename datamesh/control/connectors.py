"""CDC connector control: one connector process per (domain, source database).

``plan`` is pure: the CDC products of one domain and database become one connector that captures
all their tables. ``ensure_running`` starts it when its process is not alive (idempotent) and
``stop_all`` stops every connector of the work directory; their files live in
``<MESH_HOME>/cdc/<connector>/`` (``pid``, ``status.json``, ``connector.log``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datamesh import names
from datamesh.cdc import supervisor
from datamesh.cdc.config import ConnectorConfig, default_slot
from datamesh.errors import TerminalError, TransientError
from datamesh.specs.product import DataProduct
from datamesh.stack.paths import mesh_home

READY_STATES = frozenset({"streaming", "paused"})


@dataclass(frozen=True)
class ConnectorSpec:
    """The desired connector of one source database."""

    domain: str
    database: str
    tables: tuple[str, ...]

    @property
    def name(self) -> str:
        """``<domain>-<database>-cdc``."""
        return names.connector(self.domain, self.database)


def plan(products: Sequence[DataProduct]) -> list[ConnectorSpec]:
    """Group CDC products into connectors (tables sorted, connectors by name)."""
    groups: dict[tuple[str, str], set[str]] = {}
    for p in products:
        if p.kind == "cdc" and p.source is not None:
            table = f"{p.source.schema}.{p.source.table}"
            groups.setdefault((p.domain, p.source.database), set()).add(table)
    return [ConnectorSpec(d, db, tuple(sorted(t))) for (d, db), t in sorted(groups.items())]


def spec_for(product: DataProduct, products: Sequence[DataProduct]) -> ConnectorSpec:
    """The connector that captures ``product``'s table."""
    assert product.source is not None
    return next(
        s
        for s in plan(products)
        if (s.domain, s.database) == (product.domain, product.source.database)
    )


def workdir(name: str) -> Path:
    """Files of connector ``name``."""
    return mesh_home() / "cdc" / name


def config(spec: ConnectorSpec, dsn: str, bootstrap: str, registry: str) -> ConnectorConfig:
    """The connector process configuration of ``spec``."""
    slot = default_slot(spec.domain, spec.database)
    return ConnectorConfig(
        dsn=dsn,
        database=spec.database,
        tables=spec.tables,
        domain=spec.domain,
        bootstrap=bootstrap,
        registry=registry,
        slot=slot,
        publication=slot,
        status_file=workdir(spec.name) / "status.json",
    )


def pid_of(name: str) -> int | None:
    """PID of the running connector ``name`` (None when not running)."""
    path = workdir(name) / "pid"
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if supervisor.running(pid) else None


def status(name: str) -> dict[str, Any] | None:
    """The connector's last status document."""
    return supervisor.read_status(workdir(name) / "status.json")


def ensure_running(cfg: ConnectorConfig, timeout_s: float = 90.0) -> dict[str, Any]:
    """Start the connector unless it runs; wait until it streams; return its status.

    A connector that stopped with an error raises :class:`TerminalError` carrying its message.
    """
    home = workdir(cfg.name)
    home.mkdir(parents=True, exist_ok=True)
    if pid_of(cfg.name) is None:
        (home / "status.json").unlink(missing_ok=True)
        pid = supervisor.start_connector(cfg, home / "connector.log")
        (home / "pid").write_text(str(pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        current = status(cfg.name) or {}
        if current.get("state") in READY_STATES:
            return current
        if current.get("state") == "failed" or pid_of(cfg.name) is None:
            raise TerminalError(
                f"CDC connector {cfg.name} stopped: "
                f"{current.get('error') or 'see ' + str(home / 'connector.log')}",
                fix="fix the cause above, then materialize again",
            )
        time.sleep(0.5)
    raise TransientError(
        f"CDC connector {cfg.name} is not streaming after {timeout_s:.0f}s",
        fix=f"read {home / 'connector.log'}",
    )


def stop(name: str) -> bool:
    """Stop connector ``name`` gracefully; True when one was running."""
    pid = pid_of(name)
    if pid is None:
        return False
    supervisor.stop_connector(pid)
    return True


def stop_all() -> list[str]:
    """Stop every connector of this work directory; return their names."""
    root = mesh_home() / "cdc"
    stopped = (
        [d.name for d in sorted(root.iterdir()) if d.is_dir() and stop(d.name)]
        if root.exists()
        else []
    )
    return stopped
