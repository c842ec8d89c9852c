"""Avro ⇄ Flink SQL types, as the platform's Java format (``mesh-avro``) reads and writes them.

``avro_to_sql`` gives the column type of a source table from an input product's Avro field;
``parse_sql_type`` and ``sql_to_avro`` turn a query's result types (as ``DESCRIBE`` prints them)
into the Avro type of the output schema. Timestamps keep their precision both ways:
``timestamp-millis`` ⇄ ``TIMESTAMP(3)``, ``timestamp-micros`` ⇄ ``TIMESTAMP(6)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_PRIMITIVE_SQL = {
    "boolean": "BOOLEAN",
    "int": "INT",
    "long": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "string": "STRING",
    "bytes": "BYTES",
}
_LOGICAL_SQL = {
    "date": "DATE",
    "time-millis": "TIME(3)",
    "time-micros": "TIME(3)",
    "timestamp-millis": "TIMESTAMP(3)",
    "timestamp-micros": "TIMESTAMP(6)",
    "local-timestamp-millis": "TIMESTAMP(3)",
    "local-timestamp-micros": "TIMESTAMP(6)",
}


class UnsupportedType(ValueError):
    """A type that has no mapping between Avro and Flink SQL."""


def quote(name: str) -> str:
    """A Flink SQL identifier in backticks (backticks inside doubled)."""
    return "`" + name.replace("`", "``") + "`"


def avro_to_sql(avro_type: Any) -> str:
    """Flink SQL type (with ``NOT NULL`` unless the Avro type is a union with null)."""
    if isinstance(avro_type, list):
        rest = [t for t in avro_type if t != "null"]
        if len(rest) != 1:
            raise UnsupportedType(f"unions other than [null, T] are not supported: {avro_type}")
        inner = avro_to_sql(rest[0])
        nullable = "null" in avro_type
        return inner.removesuffix(" NOT NULL") if nullable else inner
    return f"{_non_null(avro_type)} NOT NULL"


def _non_null(t: Any) -> str:
    if isinstance(t, str):
        if t in _PRIMITIVE_SQL:
            return _PRIMITIVE_SQL[t]
        raise UnsupportedType(f"Avro type {t!r} has no Flink SQL column type")
    logical = t.get("logicalType")
    if logical == "decimal":
        return f"DECIMAL({t['precision']}, {t.get('scale', 0)})"
    if logical in _LOGICAL_SQL:
        return _LOGICAL_SQL[logical]
    kind = t.get("type")
    if kind == "record":
        fields = ", ".join(f"{quote(f['name'])} {avro_to_sql(f['type'])}" for f in t["fields"])
        return f"ROW<{fields}>"
    if kind == "array":
        return f"ARRAY<{avro_to_sql(t['items'])}>"
    if kind == "map":
        return f"MAP<STRING NOT NULL, {avro_to_sql(t['values'])}>"
    if kind == "enum":
        return "STRING"
    if kind == "fixed":
        return "BYTES"
    return _non_null(kind)


@dataclass(frozen=True)
class SqlType:
    """A parsed Flink SQL type: root name, parameters, nullability and nested fields/elements."""

    root: str
    params: tuple[int, ...] = ()
    nullable: bool = True
    fields: tuple[tuple[str, SqlType], ...] = ()
    elements: tuple[SqlType, ...] = ()

    def __str__(self) -> str:
        text = self.root + (f"({', '.join(map(str, self.params))})" if self.params else "")
        if self.fields:
            text = "ROW<" + ", ".join(f"{quote(n)} {t}" for n, t in self.fields) + ">"
        elif self.elements:
            text = f"{self.root}<{', '.join(map(str, self.elements))}>"
        return text if self.nullable else f"{text} NOT NULL"


_TOKEN = re.compile(r"\s*(`(?:[^`]|``)*`|[A-Za-z_][A-Za-z0-9_]*|\d+|[<>(),])")


def parse_sql_type(text: str, nullable: bool = True) -> SqlType:
    """Parse a type as ``DESCRIBE`` prints it, e.g. ``ROW<`a` BIGINT NOT NULL, `b` STRING>``."""
    text = re.sub(r"\*\w+\*", "", text)  # time attribute markers: TIMESTAMP(3) *ROWTIME*
    tokens = [m.group(1) for m in _TOKEN.finditer(text)]
    parsed, rest = _parse(tokens)
    if rest:
        raise UnsupportedType(f"cannot parse Flink type {text!r}")
    return parsed if nullable else SqlType(**{**parsed.__dict__, "nullable": False})


def _parse(tokens: list[str]) -> tuple[SqlType, list[str]]:
    root, rest = tokens[0].upper(), tokens[1:]
    while (
        rest
        and rest[0].upper() in ("WITH", "WITHOUT", "LOCAL", "TIME", "ZONE")
        and root
        in (
            "TIMESTAMP",
            "TIMESTAMP_LTZ",
            "TIME",
        )
    ):
        rest = rest[1:]  # TIMESTAMP(3) WITH LOCAL TIME ZONE is read as TIMESTAMP_LTZ below
        root = "TIMESTAMP_LTZ" if root == "TIMESTAMP" else root
    params: list[int] = []
    if rest and rest[0] == "(":
        rest = rest[1:]
        while rest[0] != ")":
            if rest[0] != ",":
                params.append(int(rest[0]))
            rest = rest[1:]
        rest = rest[1:]
        while rest and rest[0].upper() in ("WITH", "LOCAL", "TIME", "ZONE"):
            rest, root = rest[1:], "TIMESTAMP_LTZ"
    fields: list[tuple[str, SqlType]] = []
    elements: list[SqlType] = []
    if rest and rest[0] == "<":
        rest = rest[1:]
        while rest[0] != ">":
            if rest[0] == ",":
                rest = rest[1:]
                continue
            if root == "ROW":
                name = rest[0].strip("`").replace("``", "`")
                child, rest = _parse(rest[1:])
                fields.append((name, child))
            else:
                child, rest = _parse(rest)
                elements.append(child)
        rest = rest[1:]
    nullable = True
    if len(rest) >= 2 and rest[0].upper() == "NOT" and rest[1].upper() == "NULL":
        nullable, rest = False, rest[2:]
    return SqlType(root, tuple(params), nullable, tuple(fields), tuple(elements)), rest


def sql_to_avro(t: SqlType, name: str) -> Any:
    """The Avro type a column of type ``t`` is written as (``["null", T]`` when nullable)."""
    inner = _avro_non_null(t, name)
    return ["null", inner] if t.nullable else inner


def _avro_non_null(t: SqlType, name: str) -> Any:
    root = t.root
    simple = {
        "BOOLEAN": "boolean",
        "TINYINT": "int",
        "SMALLINT": "int",
        "INT": "int",
        "INTEGER": "int",
        "BIGINT": "long",
        "FLOAT": "float",
        "DOUBLE": "double",
        "STRING": "string",
        "VARCHAR": "string",
        "CHAR": "string",
        "BYTES": "bytes",
        "VARBINARY": "bytes",
        "BINARY": "bytes",
    }
    if root in simple:
        return simple[root]
    if root == "DECIMAL":
        precision, scale = (*t.params, 0)[:2] if t.params else (10, 0)
        return {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}
    if root == "DATE":
        return {"type": "int", "logicalType": "date"}
    if root == "TIME":
        return {"type": "int", "logicalType": "time-millis"}
    if root in ("TIMESTAMP", "TIMESTAMP_LTZ"):
        precision = t.params[0] if t.params else 6
        unit = "millis" if precision <= 3 else "micros"
        return {"type": "long", "logicalType": f"timestamp-{unit}"}
    if root == "ROW":
        return {
            "type": "record",
            "name": f"{name}_record",
            "fields": [_field(n, c, f"{name}_{n}") for n, c in t.fields],
        }
    if root == "ARRAY":
        return {"type": "array", "items": sql_to_avro(t.elements[0], name)}
    if root == "MAP":
        return {"type": "map", "values": sql_to_avro(t.elements[1], name)}
    raise UnsupportedType(f"Flink type {t} has no Avro mapping (column {name!r})")


def _field(name: str, t: SqlType, record_name: str) -> dict[str, Any]:
    field: dict[str, Any] = {"name": name, "type": sql_to_avro(t, record_name)}
    if t.nullable:
        field["default"] = None
    return field


def avro_field(name: str, t: SqlType) -> dict[str, Any]:
    """An output-schema field for a result column (nullable ones default to null)."""
    return _field(name, t, name)


@dataclass(frozen=True)
class Watermark:
    """Event time of an input: ``column`` with bounded out-of-orderness ``delay_ms``."""

    column: str
    delay_ms: int
