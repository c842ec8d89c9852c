"""CDC connector control: one connector per (domain, source database).

``plan`` is pure: the CDC products of one domain and database become one connector that captures
all their tables; ``config`` is its process configuration. Running it — start under a lock,
supervise, wait until it streams, stop — is :mod:`datamesh.cdc.running`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from datamesh import names
from datamesh.cdc.config import ConnectorConfig, default_slot
from datamesh.cdc.running import workdir
from datamesh.specs.product import DataProduct


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
