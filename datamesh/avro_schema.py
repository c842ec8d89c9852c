"""Avro schema helpers: parse and validate ``.avsc`` files, and describe fields as columns.

Parsing goes through the Apache ``avro`` package (the reference implementation, and the one whose
``avro.compatibility`` checker the registry uses) so a schema accepted here is accepted there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import avro.errors
import avro.schema


@dataclass(frozen=True)
class Column:
    """One top-level field of a record schema, as a catalog column."""

    name: str
    type: str
    nullable: bool
    doc: str


def parse_record(text: str) -> dict[str, Any]:
    """Parse Avro JSON text into its JSON form; it must be a valid schema of a record.

    Raises ``ValueError`` with the parser's reason.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    try:
        parsed = avro.schema.parse(text)
    except (avro.errors.AvroException, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"not a valid Avro schema: {exc}") from exc
    if parsed.type != "record":
        raise ValueError(f"the schema must be a record, found {parsed.type!r}")
    return dict(raw)


def type_label(avro_type: Any) -> str:
    """A short readable label for an Avro type (logical types win over their carrier)."""
    if isinstance(avro_type, str):
        return avro_type
    if isinstance(avro_type, list):
        return " | ".join(type_label(t) for t in avro_type)
    if isinstance(avro_type, dict):
        if "logicalType" in avro_type:
            logical = str(avro_type["logicalType"])
            if logical == "decimal":
                return f"decimal({avro_type.get('precision')},{avro_type.get('scale', 0)})"
            return logical
        kind = avro_type.get("type")
        if kind == "array":
            return f"array<{type_label(avro_type['items'])}>"
        if kind == "map":
            return f"map<{type_label(avro_type['values'])}>"
        if kind in ("record", "enum", "fixed"):
            return f"{kind} {avro_type.get('name')}"
        return type_label(kind)
    return str(avro_type)


def columns(record: dict[str, Any]) -> list[Column]:
    """Top-level fields of a record schema as catalog columns."""
    out = []
    for f in record.get("fields", []):
        ftype = f["type"]
        nullable = isinstance(ftype, list) and "null" in ftype
        if nullable:
            rest = [t for t in ftype if t != "null"]
            ftype = rest[0] if len(rest) == 1 else rest
        out.append(Column(f["name"], type_label(ftype), nullable, f.get("doc", "")))
    return out


def key_record(value: dict[str, Any], key_fields: tuple[str, ...]) -> dict[str, Any]:
    """The Avro key record (Debezium style ``<name>Key``) holding the key fields of ``value``."""
    by_name = {f["name"]: f for f in value.get("fields", [])}
    return {
        "type": "record",
        "name": f"{value['name']}Key",
        **({"namespace": value["namespace"]} if "namespace" in value else {}),
        "fields": [{"name": k, "type": by_name[k]["type"]} for k in key_fields],
    }
