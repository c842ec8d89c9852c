"""What the catalog says about a product beyond its declaration.

The schema it exposes (a sink's is its input's), where its data lives (topic or table), who
consumes it, where it is declared, and its health. Pure functions of the frozen products.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from datamesh import names
from datamesh.specs.product import DataProduct
from datamesh.stack.paths import PROJECT_ROOT

# Until :mod:`datamesh.catalog.health` fills in a product's last check results.
HEALTH_UNKNOWN = "unknown"


def topic(product: DataProduct) -> str | None:
    """The Kafka topic of a Kafka-backed product, else None."""
    return names.topic(product) if product.is_kafka_backed else None


def table(product: DataProduct) -> str | None:
    """``<namespace>.<table>`` of an Iceberg sink, ``<database>.<schema>.<table>`` of a
    PostgreSQL sink (as in the asset's ``dagster/table_name``), else None."""
    if product.kind == "iceberg_sink":
        return ".".join(names.iceberg_table(product))
    if product.kind == "postgres_sink" and product.sink is not None:
        return f"{product.sink.database}.{product.sink.table}"
    return None


def consumers(product: DataProduct, products: Sequence[DataProduct]) -> tuple[str, ...]:
    """Ids of the products that take ``product`` as an input, sorted."""
    return tuple(sorted(p.id for p in products if product.id in p.inputs))


def declared_in(product: DataProduct) -> str:
    """The declaring file relative to the project, else relative to its domains folder's
    parent (the form of the asset's ``declared_in`` metadata)."""
    path = product.declared_in.absolute()
    if path.is_relative_to(PROJECT_ROOT):
        return str(path.relative_to(PROJECT_ROOT))
    parents = path.parents
    return str(path.relative_to(parents[2])) if len(parents) > 2 else str(path)


def duration(value: timedelta | None) -> str | None:
    """A timedelta in the declarations' units (``90s``, ``15m``, ``1h``, ``7d``), or None."""
    if value is None:
        return None
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
