"""A product's catalog card: everything ``mesh catalog show`` prints, as one frozen value."""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from datamesh import names
from datamesh.avro_schema import Column, columns
from datamesh.catalog import facts
from datamesh.specs.product import DataProduct
from datamesh.specs.sink_layout import effective_schema


@dataclass(frozen=True)
class Card:
    """A product as the catalog shows it; ``fields`` are its (effective) schema's columns.

    ``inputs`` are the products it reads (``consumes``: the columns it declares it uses of
    each), ``outputs`` the products that read it.
    ``allow`` lists the other domains an ``internal`` product lets read it.
    ``freshness`` is the declared duration (``15m``) or None; ``health`` is ``unknown``
    until ``mesh catalog`` fills it in from :mod:`.health`.
    """

    id: str
    domain: str
    name: str
    kind: str
    description: str
    owners: tuple[str, ...]
    access: str
    allow: tuple[str, ...]
    tier: int
    key: tuple[str, ...]
    fields: tuple[Column, ...]
    inputs: tuple[str, ...]
    consumes: dict[str, tuple[str, ...]]
    outputs: tuple[str, ...]
    topic: str | None
    schema_subject: str | None
    table: str | None
    freshness: str | None
    max_lag: int | None
    tags: dict[str, str]
    declared_in: str
    health: str = facts.HEALTH_UNKNOWN

    def to_json(self) -> dict[str, Any]:
        """The card as JSON-ready data (tuples as lists, fields as objects)."""
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def card(product: DataProduct, products: Sequence[DataProduct]) -> Card:
    """The card of ``product`` among ``products`` (needed for a sink's schema and consumers)."""
    by_id = {p.id: p for p in products}
    topic = facts.topic(product)
    return Card(
        id=product.id,
        domain=product.domain,
        name=product.name,
        kind=product.kind,
        description=product.description,
        owners=product.owners,
        access=product.access,
        allow=product.allow,
        tier=product.tier,
        key=product.key,
        fields=tuple(columns(effective_schema(product, by_id) or {})),
        inputs=product.inputs,
        consumes=dict(product.consumes),
        outputs=facts.consumers(product, products),
        topic=topic,
        schema_subject=names.value_subject(topic) if topic else None,
        table=facts.table(product),
        freshness=facts.duration(product.slo.freshness),
        max_lag=product.slo.max_lag,
        tags=dict(product.tags),
        declared_in=facts.declared_in(product),
    )


def find(name: str, products: Sequence[DataProduct]) -> DataProduct | None:
    """The product whose id or (unambiguous) name is ``name``, else None."""
    exact = [p for p in products if p.id == name]
    by_name = [p for p in products if p.name == name]
    found = exact or by_name
    return found[0] if len(found) == 1 else None


def suggestions(name: str, products: Sequence[DataProduct]) -> list[str]:
    """Ids of the products whose id or name is closest to ``name`` (difflib, best first)."""
    keys: dict[str, list[str]] = defaultdict(list)
    for p in products:
        keys[p.id].append(p.id)
        keys[p.name].append(p.id)
    close = difflib.get_close_matches(name, list(keys), n=3)
    return list(dict.fromkeys(i for c in close for i in keys[c]))
