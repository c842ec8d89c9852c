"""Avro schemas of a captured table, Debezium style: ``<topic>.Key``, ``.Value``, ``.Envelope``.

Nullability is not in pgoutput's Relation message, so every ``Value`` field is optional
(``["null", T]``, default null); that also keeps ADD COLUMN / DROP COLUMN compatible under
BACKWARD and FORWARD. ``Key`` fields (the primary key) are required. Names that Avro rejects
(``order-id``, ``1st``) are sanitized like Debezium does: invalid characters become ``_``.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from datamesh.cdc.errors import SourceConfigError
from datamesh.cdc.pgoutput import Column
from datamesh.cdc.pgtypes import avro_column_type

CONNECTOR = "postgresql"
SOURCE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Source",
    "namespace": "io.debezium.connector.postgresql",
    "fields": [
        {"name": "version", "type": "string"},
        {"name": "connector", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "ts_ms", "type": "long"},
        {"name": "snapshot", "type": "string", "default": "false"},
        {"name": "db", "type": "string"},
        {"name": "schema", "type": "string"},
        {"name": "table", "type": "string"},
        {"name": "txId", "type": ["null", "long"], "default": None},
        {"name": "lsn", "type": ["null", "long"], "default": None},
    ],
}
_INVALID = re.compile(r"[^A-Za-z0-9_]")


class TableShape(NamedTuple):
    """What the schemas of a table derive from: its columns (in order) and primary key."""

    schema: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def qualified(self) -> str:
        """``schema.table``."""
        return f"{self.schema}.{self.table}"

    def signature(self) -> tuple[tuple[str, int, int], ...]:
        """What changes the schemas: column names, type OIDs and typmods, and the key."""
        cols = tuple((c.name, c.type_oid, c.typmod) for c in self.columns)
        return (*cols, ("", len(self.key), 0), *((k, 0, 0) for k in self.key))


def avro_name(text: str) -> str:
    """A valid Avro name for ``text`` (``[A-Za-z_][A-Za-z0-9_]*``)."""
    name = _INVALID.sub("_", text)
    return f"_{name}" if not name or name[0].isdigit() else name


def namespace(topic: str) -> str:
    """Avro namespace of a topic's records: each dotted part sanitized."""
    return ".".join(avro_name(part) for part in topic.split("."))


def _field_names(shape: TableShape) -> list[str]:
    names = [avro_name(c.name) for c in shape.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SourceConfigError(
            f"table {shape.qualified}: columns {dupes} collide once made valid Avro names",
            fix="rename the columns so they differ in letters, digits or underscores",
        )
    return names


def value_schema(topic: str, shape: TableShape) -> dict[str, Any]:
    """``<topic>.Value``: one optional field per column, in column order."""
    fields = [
        {
            "name": name,
            "type": ["null", avro_column_type(c.type_oid, c.typmod).avro],
            "default": None,
        }
        for name, c in zip(_field_names(shape), shape.columns, strict=True)
    ]
    return {"type": "record", "name": "Value", "namespace": namespace(topic), "fields": fields}


def key_schema(topic: str, shape: TableShape) -> dict[str, Any]:
    """``<topic>.Key``: the primary-key columns, required, in key order."""
    by_name = {c.name: c for c in shape.columns}
    missing = [k for k in shape.key if k not in by_name]
    if missing:
        raise SourceConfigError(
            f"table {shape.qualified}: primary-key column(s) {missing} are not replicated",
            fix="generated columns cannot be keys; use a stored column as the primary key",
        )
    fields = [
        {
            "name": avro_name(k),
            "type": avro_column_type(by_name[k].type_oid, by_name[k].typmod).avro,
        }
        for k in shape.key
    ]
    return {"type": "record", "name": "Key", "namespace": namespace(topic), "fields": fields}


def envelope_schema(topic: str, shape: TableShape) -> dict[str, Any]:
    """``<topic>.Envelope``: before/after images, source block, op and processing time."""
    return {
        "type": "record",
        "name": "Envelope",
        "namespace": namespace(topic),
        "fields": [
            {"name": "before", "type": ["null", value_schema(topic, shape)], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},
            {"name": "source", "type": SOURCE_SCHEMA},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": ["null", "long"], "default": None},
        ],
    }
