"""``sink.partition_by`` entries: parsed, checked against the sink's Avro schema, and turned into
an Iceberg partition spec.

Accepted forms (Iceberg's transforms): ``col`` (identity), ``year(col)``, ``month(col)``,
``day(col)``, ``hour(col)``, ``bucket(n, col)``, ``truncate(w, col)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_FORM = re.compile(r"^\s*(?:(\w+)\(\s*(?:(\d+)\s*,\s*)?(\w+)\s*\)|(\w+))\s*$")
_TIME = frozenset({"date", "timestamp-micros", "timestamp-millis"})
_HOURLY = frozenset({"timestamp-micros", "timestamp-millis"})
_BUCKETABLE = frozenset({"int", "long", "string", "bytes", "decimal", "uuid", *_TIME})
_TRUNCATABLE = frozenset({"int", "long", "string", "bytes", "decimal"})
_IDENTITY = frozenset(
    {
        "int",
        "long",
        "string",
        "boolean",
        "float",
        "double",
        "bytes",
        "decimal",
        "uuid",
        "time-micros",
        *_TIME,
    }
)
TRANSFORMS = ("identity", "year", "month", "day", "hour", "bucket", "truncate")


class PartitionError(ValueError):
    """A ``partition_by`` entry that cannot apply to the schema (the message says why)."""


@dataclass(frozen=True)
class PartitionField:
    """One partition field: ``transform`` of ``column`` (``arg``: buckets or width)."""

    transform: str
    column: str
    arg: int | None = None

    @property
    def name(self) -> str:
        """The partition field's name, as Iceberg's own engines name it."""
        if self.transform == "identity":
            return self.column
        if self.arg is not None:
            return f"{self.column}_{self.transform}_{self.arg}"
        return f"{self.column}_{self.transform}"


def render(field: PartitionField) -> str:
    """The declared spelling of ``field`` (inverse of :func:`parse`): ``col``, ``day(col)``,
    ``bucket(16, col)``."""
    if field.transform == "identity":
        return field.column
    if field.arg is not None:
        return f"{field.transform}({field.arg}, {field.column})"
    return f"{field.transform}({field.column})"


def parse(text: str) -> PartitionField:
    """``day(updated_at)`` → PartitionField('day', 'updated_at'); raises PartitionError."""
    match = _FORM.match(text)
    if not match:
        raise PartitionError(f"{text!r} is not `col`, `day(col)` or `bucket(n, col)`")
    fn, arg, col, bare = match.groups()
    if bare:
        return PartitionField("identity", bare)
    if fn not in TRANSFORMS or fn == "identity":
        raise PartitionError(f"unknown transform {fn!r} in {text!r} (use one of {TRANSFORMS[1:]})")
    needs_arg = fn in ("bucket", "truncate")
    if needs_arg != (arg is not None):
        form = f"{fn}(n, col)" if needs_arg else f"{fn}(col)"
        raise PartitionError(f"{text!r}: write {form}")
    if needs_arg and int(arg) < 1:
        raise PartitionError(f"{text!r}: {fn} needs a positive number")
    return PartitionField(fn, col, int(arg) if arg is not None else None)


def avro_kind(avro_type: Any) -> str:
    """The logical type (or primitive) of a field type, nullable unions unwrapped."""
    if isinstance(avro_type, list):
        rest = [t for t in avro_type if t != "null"]
        return avro_kind(rest[0]) if len(rest) == 1 else "union"
    if isinstance(avro_type, dict):
        return str(avro_type.get("logicalType") or avro_kind(avro_type.get("type")))
    return str(avro_type)


def check(field: PartitionField, columns: dict[str, Any]) -> None:
    """Raise PartitionError unless ``field`` applies to ``columns`` (name → Avro type)."""
    if field.column not in columns:
        raise PartitionError(
            f"unknown column {field.column!r} (columns: {', '.join(columns) or 'none'})"
        )
    kind = avro_kind(columns[field.column])
    allowed = {
        "identity": _IDENTITY,
        "year": _TIME,
        "month": _TIME,
        "day": _TIME,
        "hour": _HOURLY,
        "bucket": _BUCKETABLE,
        "truncate": _TRUNCATABLE,
    }[field.transform]
    if kind not in allowed:
        raise PartitionError(
            f"{field.transform}({field.column}) cannot apply to a {kind} column "
            f"(it takes {', '.join(sorted(allowed))})"
        )
