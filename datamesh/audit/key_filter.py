"""Filters selecting given keys of an Iceberg table (re-reads, repairs)."""

from __future__ import annotations

from collections.abc import Sequence

from pyiceberg.expressions import And, BooleanExpression, EqualTo, In, Or

from datamesh.audit.sides import RawKey


def iceberg_filter(key: Sequence[str], keys: Sequence[RawKey]) -> BooleanExpression:
    """The pyiceberg filter selecting ``keys``."""
    # pyiceberg's expression constructors are typed for its pydantic fields: ignore (as in
    # datamesh.sinks.iceberg_table)
    if len(key) == 1:
        return In(key[0], {k[0] for k in keys})  # type: ignore[call-arg,arg-type]
    rows: list[BooleanExpression] = []
    for raw in keys:
        parts: list[BooleanExpression] = [
            EqualTo(k, v)  # type: ignore[call-arg,arg-type]
            for k, v in zip(key, raw, strict=True)
        ]
        rows.append(parts[0] if len(parts) == 1 else And(*parts))
    return rows[0] if len(rows) == 1 else Or(*rows)
