"""The Iceberg schema of a sink table, and how it follows its input's Avro schema — pure.

A table is created from its input's value fields (the ``after`` record of a CDC envelope), key
fields required and marked as Iceberg identifier fields. When a writer schema brings a field the
table lacks, :func:`plan_evolution` adds it (optional); ``int→long``, ``float→double`` and a wider
decimal widen the column; any other type difference, or a writer without a key field, is refused
with :class:`SchemaRefused` naming the field and both types — before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyiceberg.schema import Schema
from pyiceberg.types import (
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
)
from pyiceberg.utils.schema_conversion import AvroSchemaConversion

from datamesh.errors import TerminalError
from datamesh.sinks.changes import is_envelope
from datamesh.specs import sink_layout as layout


class SchemaRefused(TerminalError):
    """The input's schema changed in a way the table cannot take."""

    def __init__(self, table: str, column: str, table_type: str, writer_type: str) -> None:
        self.table, self.column = table, column
        self.table_type, self.writer_type = table_type, writer_type
        super().__init__(
            f'Iceberg table "{table}" cannot take the input\'s change to column "{column}": '
            f"the table has {table_type}, the input now writes {writer_type}; nothing was written",
            fix="revert the source change, or migrate the table (new sink product) on purpose",
        )


@dataclass(frozen=True)
class AddColumn:
    """A new optional top-level column."""

    name: str
    type: IcebergType


@dataclass(frozen=True)
class Widen:
    """A legal type promotion of an existing column."""

    name: str
    type: IcebergType


Evolution = AddColumn | Widen


def value_fields(writer: dict[str, Any]) -> list[dict[str, Any]]:
    """The row fields a writer schema carries (a CDC envelope's ``after``/``before`` record)."""
    if not is_envelope(writer):
        return list(writer["fields"])
    for f in writer["fields"]:
        if f["name"] in ("before", "after"):
            branches = f["type"] if isinstance(f["type"], list) else [f["type"]]
            for branch in branches:
                if isinstance(branch, dict) and branch.get("type") == "record":
                    return list(branch["fields"])
    raise ValueError("a Debezium envelope without a row record in before/after")


def iceberg_schema(fields: list[dict[str, Any]], key: tuple[str, ...], mode: str) -> Schema:
    """The table schema: ``fields`` (+ change-log columns in append mode).

    Upsert keys are required identifier fields; every other input column is optional, whatever
    the writer says, so a dropped source column or a key-only delete image still fits.
    """
    record = {"type": "record", "name": "row", "fields": layout.table_fields(fields, mode)}
    converted = AvroSchemaConversion().avro_to_iceberg(_with_ids(record))
    keyed = key if mode == "upsert" else ()
    known = {f.name for f in converted.fields}
    missing = [k for k in keyed if k not in known]
    if missing:
        raise ValueError(f"key field(s) {missing} are not in the input's schema")
    own = {f["name"] for f in layout.CHANGELOG_FIELDS if mode == "append"}
    out = [
        NestedField(
            f.field_id,
            f.name,
            f.field_type,
            required=f.name in keyed or (f.name in own and f.required),
            doc=f.doc,
        )
        for f in converted.fields
    ]
    ids = [f.field_id for f in out if f.name in keyed]
    return Schema(*out, identifier_field_ids=ids)


def plan_evolution(
    table: str, have: Schema, latest: Schema, writers: Sequence[Schema], key: tuple[str, ...]
) -> list[Evolution]:
    """What makes table schema ``have`` take the batch (raises SchemaRefused, changes nothing).

    ``latest`` is what the input writes now (its latest registered schema): the table follows
    it — new fields become columns, ``int→long``/``float→double``/wider decimals widen them — and
    a narrowed or retyped field, or a key field gone, is refused. ``writers`` are the schemas
    of the batch's records: older ones may be narrower (written before a widening: their values
    fit); a field only they carry is added too, so nothing they hold is dropped.
    """
    current = {f.name: f.field_type for f in have.fields}
    offered = {f.name for f in latest.fields}
    for k in key:
        if k not in offered:
            raise SchemaRefused(table, k, f"key {current.get(k, '?')}", "no such field")
    steps: list[Evolution] = []
    for f in latest.fields:
        old = current.get(f.name)
        if old is None:
            steps.append(AddColumn(f.name, f.field_type))
        elif old != f.field_type:
            if f.name in key or not _widens(old, f.field_type):
                raise SchemaRefused(table, f.name, str(old), str(f.field_type))
            steps.append(Widen(f.name, f.field_type))
        current[f.name] = f.field_type
    for writer in writers:
        for f in writer.fields:
            now = current.get(f.name)
            if now is None:
                steps.append(AddColumn(f.name, f.field_type))
                current[f.name] = f.field_type
            elif now != f.field_type and not _widens(f.field_type, now):
                raise SchemaRefused(table, f.name, str(now), str(f.field_type))
    return steps


def _widens(old: IcebergType, new: IcebergType) -> bool:
    if isinstance(old, IntegerType) and isinstance(new, LongType):
        return True
    if isinstance(old, FloatType) and isinstance(new, DoubleType):
        return True
    return (
        isinstance(old, DecimalType)
        and isinstance(new, DecimalType)
        and new.scale == old.scale
        and new.precision >= old.precision
    )


def _with_ids(avro_schema: dict[str, Any]) -> dict[str, Any]:
    """A copy with Iceberg field ids (pyiceberg's Avro conversion needs them; a new table or
    column gets fresh ids anyway). Named-type references are resolved to their definitions."""
    schema = json.loads(json.dumps(avro_schema))
    counter = iter(range(1, 1_000_000))
    named: dict[str, Any] = {}

    def visit(node: Any) -> Any:
        if isinstance(node, str) and node in named:
            return json.loads(json.dumps(named[node]))
        if isinstance(node, list):
            return [visit(b) for b in node]
        if isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "enum", "fixed") and "name" in node:
                named[node["name"]] = node
                if node.get("namespace"):
                    named[f"{node['namespace']}.{node['name']}"] = node
            if kind == "record":
                for f in node["fields"]:
                    f["field-id"] = next(counter)
                    f["type"] = visit(f["type"])
            elif kind == "array":
                node["element-id"] = next(counter)
                node["items"] = visit(node["items"])
            elif kind == "map":
                node["key-id"], node["value-id"] = next(counter), next(counter)
                node["values"] = visit(node["values"])
        return node

    return dict(visit(schema))
