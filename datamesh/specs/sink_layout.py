"""The columns of a sink table besides its input's fields.

An ``append`` (change-log) table keeps, per record, the envelope's op, the source LSN, the event
time (source commit time, else the Kafka timestamp) and where it came from in the topic. The
names start with ``_`` so they do not collide with a product's own fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datamesh.specs.product import DataProduct

OP, LSN, EVENT_TIME, PARTITION, OFFSET = "_op", "_lsn", "_event_time", "_partition", "_offset"
CHANGELOG_FIELDS: tuple[dict[str, Any], ...] = (
    {"name": OP, "type": "string"},
    {"name": LSN, "type": ["null", "long"], "default": None},
    {
        "name": EVENT_TIME,
        "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}],
        "default": None,
    },
    {"name": PARTITION, "type": "int"},
    {"name": OFFSET, "type": "long"},
)


def table_fields(value_fields: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """The Avro fields of the sink table: the input's fields (+ change-log columns in append)."""
    return [*value_fields, *CHANGELOG_FIELDS] if mode == "append" else list(value_fields)


def effective_schema(
    product: DataProduct, by_id: Mapping[str, DataProduct]
) -> dict[str, Any] | None:
    """The product's own value schema, or (for a sink) its input's, with the change-log columns
    of an append-mode table."""
    if product.value_schema is not None or not product.inputs:
        return product.value_schema
    upstream = by_id.get(product.inputs[0])
    schema = effective_schema(upstream, by_id) if upstream is not None else None
    if schema is None or product.sink is None:
        return schema
    return {**schema, "fields": table_fields(schema["fields"], product.sink.mode)}
