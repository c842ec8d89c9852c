"""Is the registered value schema the declared one, or a successor the declared level accepts?

A processor's subject holds its declared record itself. A CDC product's subject holds the
Debezium envelope its connector derives from the table; the row record is the ``after`` field,
compared with the declared ``.avsc``. Record names are aligned first (the connector names its
record ``<topic>.Value``): a rename alone is not a contract change.
"""

from __future__ import annotations

import json
from typing import Any

import avro.errors
import avro.schema

from datamesh.registry import compat
from datamesh.specs.product import DataProduct


def problems(p: DataProduct, registered: dict[str, Any], level: str | None) -> list[str]:
    """Why ``registered`` does not satisfy ``p``'s declaration; [] when it does."""
    found: list[str] = []
    if (level or "BACKWARD") != p.compatibility:
        found.append(
            f"the subject's level is {level}, declared {p.compatibility} (changed out of band; "
            "materializing the product sets it back)"
        )
    declared = p.value_schema
    record = row_record(registered) if p.kind == "cdc" else registered
    if record is None:
        return [*found, "the registered envelope has no row record (before/after)"]
    if declared is None or p.compatibility == "NONE" or _fields(record) == _fields(declared):
        return found  # NONE: the declaration accepts any successor
    try:
        reasons = compat.check(
            _parse(record),
            [compat.PreviousVersion(0, _parse(_renamed(declared, record)))],
            p.compatibility,
        )
    except (avro.errors.AvroException, ValueError) as exc:
        return [*found, f"cannot compare with the declared schema: {exc}"]
    return found + [
        r.replace("version 0", "the declared schema").replace("new schema", "registered schema")
        for r in reasons
    ]


def row_record(envelope: dict[str, Any]) -> dict[str, Any] | None:
    """The row record of a Debezium envelope (defined in ``before``, named again in ``after``)."""
    for f in envelope.get("fields", []):
        if f.get("name") not in ("before", "after"):
            continue
        types = f["type"] if isinstance(f["type"], list) else [f["type"]]
        for t in types:
            if isinstance(t, dict) and t.get("type") == "record":
                return t
    return None


def _fields(record: dict[str, Any]) -> list[tuple[str, str]]:
    """Field names and types, ignoring docs, defaults' formatting and record names."""
    return [(f["name"], json.dumps(_strip(f["type"]), sort_keys=True)) for f in record["fields"]]


def _strip(t: Any) -> Any:
    if isinstance(t, list):
        return [_strip(x) for x in t]
    if isinstance(t, dict):
        return {k: _strip(v) for k, v in t.items() if k not in ("doc", "name", "namespace")}
    return t


def _renamed(declared: dict[str, Any], like: dict[str, Any]) -> dict[str, Any]:
    out = {**declared, "name": like.get("name", declared.get("name"))}
    out.pop("namespace", None)
    if "namespace" in like:
        out["namespace"] = like["namespace"]
    return out


def _parse(record: dict[str, Any]) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(record))
