"""What one audit compares, from the declarations, and running it.

:func:`target_for` resolves an auditable sink into an :class:`AuditTarget` (source table, sink
table, key and column pairs, grace, the connector's slot); :func:`run_audit` opens both sides
and compares them. The grace is the sink's freshness SLO, else the nearest upstream product's,
else :data:`DEFAULT_GRACE`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from psycopg2.extensions import make_dsn

from datamesh import names
from datamesh.audit.auditability import Auditability, Pairs, analyse
from datamesh.audit.compare import compare
from datamesh.audit.iceberg_side import IcebergSide
from datamesh.audit.pg_side import PgSide
from datamesh.audit.result import AuditResult
from datamesh.audit.scope import excluded_rows
from datamesh.audit.sides import Progress, Side
from datamesh.cdc.config import default_slot
from datamesh.errors import TerminalError
from datamesh.specs.product import DataProduct

DEFAULT_GRACE = timedelta(minutes=15)


@dataclass(frozen=True)
class AuditTarget:
    """One auditable sink. ``source_dsn`` / ``sink_dsn`` name the databases; ``iceberg_table``
    (``namespace.table``) is set for an Iceberg sink, ``sink_table`` (``schema.table``) for a
    PostgreSQL one. ``key`` and ``columns`` pair sink columns with source columns."""

    product: str
    owners: tuple[str, ...]
    grace_s: float
    source_dsn: str
    source_table: str
    key: Pairs
    columns: Pairs
    slot: str
    sink_dsn: str = ""
    sink_table: str = ""
    iceberg_table: str = ""
    topic: str = ""

    @property
    def source_label(self) -> str:
        """``<database>.<schema>.<table>`` of the source."""
        return f"{_dbname(self.source_dsn)}.{self.source_table}"

    @property
    def sink_label(self) -> str:
        """``<database>.<schema>.<table>`` or ``iceberg:<namespace>.<table>``."""
        if self.iceberg_table:
            return f"iceberg:{self.iceberg_table}"
        return f"{_dbname(self.sink_dsn)}.{self.sink_table}"


def _dbname(dsn: str) -> str:
    from psycopg2.extensions import parse_dsn

    return str(parse_dsn(dsn).get("dbname", ""))


def grace(product: DataProduct, by_id: Mapping[str, DataProduct]) -> timedelta:
    """The sink's freshness SLO, else the nearest upstream's, else DEFAULT_GRACE."""
    current: DataProduct | None = product
    while current is not None:
        if current.slo.freshness is not None:
            return current.slo.freshness
        current = by_id.get(current.inputs[0]) if current.inputs else None
    return DEFAULT_GRACE


def auditable_or_raise(product: DataProduct, by_id: Mapping[str, DataProduct]) -> Auditability:
    """``product``'s auditability; TerminalError naming the reason when not auditable."""
    found = analyse(product, by_id)
    if not found.auditable or found.source is None or product.sink is None:
        raise TerminalError(
            f"{product.id} is not auditable: {found.reason}",
            fix="`mesh validate` lists the auditable sinks; an audit compares a sink with the "
            "CDC table it copies through key-preserving steps",
        )
    return found


def target_for(
    product: DataProduct, by_id: Mapping[str, DataProduct], postgres_dsn: str
) -> AuditTarget:
    """The audit of sink ``product``; TerminalError naming the reason when not auditable."""
    found = auditable_or_raise(product, by_id)
    assert found.source is not None and product.sink is not None
    source = found.source
    cdc = by_id[found.source_product]
    iceberg = product.kind == "iceberg_sink"
    return AuditTarget(
        product=product.id,
        owners=product.owners,
        grace_s=grace(product, by_id).total_seconds(),
        source_dsn=make_dsn(postgres_dsn, dbname=source.database),
        source_table=f"{source.schema}.{source.table}",
        key=found.key,
        columns=found.columns,
        slot=default_slot(cdc.domain, source.database),
        sink_dsn="" if iceberg else make_dsn(postgres_dsn, dbname=product.sink.database),
        sink_table="" if iceberg else product.sink.table,
        iceberg_table=".".join(names.iceberg_table(product)) if iceberg else "",
        topic=names.topic(by_id[product.inputs[0]]),
    )


def open_sides(target: AuditTarget, catalog: Any = None) -> tuple[PgSide, Side]:
    """The source side and the sink side of ``target`` (``catalog``: the Iceberg catalog)."""
    sink_cols = [a for a, _ in target.columns]
    source_cols = [b for _, b in target.columns]
    schema, table = target.source_table.split(".", 1)
    source = PgSide(
        target.source_dsn,
        schema,
        table,
        [b for _, b in target.key],
        source_cols,
        excluded_rows(source_cols),
        "source",
    )
    if target.iceberg_table:
        if catalog is None:
            from datamesh.sinks.catalog import open_catalog

            catalog = open_catalog()
        loader: Callable[[], Any] = lambda: catalog.load_table(target.iceberg_table)  # noqa: E731
        key = [a for a, _ in target.key]
        return source, IcebergSide(loader, key, sink_cols, excluded_rows(sink_cols), "sink")
    sschema, stable = target.sink_table.split(".", 1)
    sink = PgSide(
        target.sink_dsn,
        sschema,
        stable,
        [a for a, _ in target.key],
        sink_cols,
        excluded_rows(sink_cols),
        "sink",
    )
    return source, sink


def run_audit(
    target: AuditTarget,
    catalog: Any = None,
    chunk_rows: int = 2_000,
    recheck_s: float = 2.0,
    progress: Progress | None = None,
) -> AuditResult:
    """Audit ``target`` once (see :mod:`datamesh.audit.compare` for the in-flight rule)."""
    started = time.monotonic()
    source, sink = open_sides(target, catalog)
    try:
        comparison = compare(
            source,
            sink,
            [a for a, _ in target.columns],
            target.grace_s,
            chunk_rows=chunk_rows,
            recheck_s=min(recheck_s, max(target.grace_s / 4, 0.2)),
            progress=progress,
        )
    finally:
        source.close()
        if isinstance(sink, PgSide):
            sink.close()
    return AuditResult(
        product=target.product,
        owners=target.owners,
        source=target.source_label,
        sink=target.sink_label,
        key_names=tuple(a for a, _ in target.key),
        comparison=comparison,
        grace_s=target.grace_s,
        seconds=time.monotonic() - started,
    )
