"""Sink table schemas: created from the input's row, evolved only in ways Iceberg and the data
allow — a table of cases, pure (no catalog)."""

from __future__ import annotations

from typing import Any

import pytest
from pyiceberg.types import DecimalType, DoubleType, LongType, StringType

from datamesh.sinks.table_schema import (
    AddColumn,
    SchemaRefused,
    Widen,
    iceberg_schema,
    plan_evolution,
    value_fields,
)
from datamesh.specs import partitioning

DEC = {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}


def row(*fields: tuple[str, Any]) -> list[dict[str, Any]]:
    return [{"name": n, "type": ["null", t], "default": None} for n, t in fields]


def schema(*fields: tuple[str, Any], key: tuple[str, ...] = ()) -> Any:
    return iceberg_schema(row(*fields), key, "upsert")


BASE = (("id", "long"), ("n", "int"), ("x", "float"), ("amount", DEC))


def test_keys_are_required_identifier_fields_and_the_rest_optional() -> None:
    s = schema(*BASE, key=("id",))
    assert [f.name for f in s.fields if f.required] == ["id"]
    assert s.identifier_field_names() == {"id"}
    with pytest.raises(ValueError, match="key"):
        schema(*BASE, key=("nope",))


def test_append_tables_add_the_change_log_columns() -> None:
    s = iceberg_schema(row(*BASE), ("id",), "append")
    assert [f.name for f in s.fields][-5:] == [
        "_op",
        "_lsn",
        "_event_time",
        "_partition",
        "_offset",
    ]
    assert not s.identifier_field_ids


WIDER_DEC = {**DEC, "precision": 12}
CASES = [
    # (latest fields, older writers' fields, expected steps)
    ("same", BASE, [], []),
    ("a field added", (*BASE, ("region", "string")), [], [AddColumn("region", StringType())]),
    (
        "int widened to long",
        (("id", "long"), ("n", "long"), ("x", "float"), ("amount", DEC)),
        [],
        [Widen("n", LongType())],
    ),
    (
        "float widened to double",
        (("id", "long"), ("n", "int"), ("x", "double"), ("amount", DEC)),
        [],
        [Widen("x", DoubleType())],
    ),
    (
        "decimal widened",
        (("id", "long"), ("n", "int"), ("x", "float"), ("amount", WIDER_DEC)),
        [],
        [Widen("amount", DecimalType(12, 2))],
    ),
    ("a field dropped upstream", (("id", "long"), ("n", "int")), [], []),
    (
        "older narrower writer in the batch",
        (("id", "long"), ("n", "long"), ("x", "float"), ("amount", DEC)),
        [BASE],
        [Widen("n", LongType())],
    ),
    (
        "a field only an older writer carries",
        BASE,
        [(*BASE, ("legacy", "string"))],
        [AddColumn("legacy", StringType())],
    ),
]


@pytest.mark.parametrize(("case", "latest", "older", "expected"), CASES, ids=[c[0] for c in CASES])
def test_evolution_plan(case: str, latest: Any, older: Any, expected: list[Any]) -> None:
    have = schema(*BASE, key=("id",))
    writers = [schema(*w) for w in older]
    assert plan_evolution("d.t", have, schema(*latest), writers, ("id",)) == expected


REFUSED = [
    ("long narrowed to int", (("id", "long"), ("n", "int")), "n", "long", "int"),
    ("retyped", (("id", "long"), ("n", "string")), "n", "int", "string"),
    ("key retyped", (("id", "string"),), "id", "long", "string"),
    ("key gone", (("n", "int"),), "id", "key long", "no such field"),
]


@pytest.mark.parametrize(
    ("case", "latest", "column", "old", "new"), REFUSED, ids=[c[0] for c in REFUSED]
)
def test_refused_changes_name_the_field_and_both_types(
    case: str, latest: Any, column: str, old: str, new: str
) -> None:
    have = schema(("id", "long"), ("n", "long" if case.startswith("long") else "int"), key=("id",))
    with pytest.raises(SchemaRefused) as refused:
        plan_evolution("d.t", have, schema(*latest), [], ("id",))
    assert (refused.value.column, refused.value.table_type, refused.value.writer_type) == (
        column,
        old,
        new,
    )
    assert f'"{column}"' in str(refused.value) and "nothing was written" in str(refused.value)


def test_value_fields_of_an_envelope_are_its_row() -> None:
    value = {"type": "record", "name": "Value", "fields": row(("id", "long"))}
    env = {
        "type": "record",
        "name": "Envelope",
        "fields": [
            {"name": "before", "type": ["null", value]},
            {"name": "after", "type": ["null", "Value"]},
            {"name": "source", "type": "string"},
            {"name": "op", "type": "string"},
        ],
    }
    assert [f["name"] for f in value_fields(env)] == ["id"]
    assert value_fields(value) == value["fields"]


PARTITIONS = [
    ("id", ("identity", "id", None), None),
    ("day(at)", ("day", "at", None), None),
    ("bucket(16, id)", ("bucket", "id", 16), None),
    ("truncate(4, name)", ("truncate", "name", 4), None),
    ("hour(day)", None, "cannot apply to a date column"),
    ("day(name)", None, "cannot apply to a string column"),
    ("bucket(id)", None, "write bucket"),
    ("week(at)", None, "unknown transform"),
    ("day(nope)", None, "unknown column 'nope'"),
    ("day(", None, "is not"),
]
COLUMNS = {
    "id": "long",
    "name": ["null", "string"],
    "at": {"type": "long", "logicalType": "timestamp-micros"},
    "day": {"type": "int", "logicalType": "date"},
}


@pytest.mark.parametrize(("text", "parsed", "problem"), PARTITIONS, ids=[p[0] for p in PARTITIONS])
def test_partition_by_is_parsed_and_checked(text: str, parsed: Any, problem: str | None) -> None:
    if problem is None:
        field = partitioning.parse(text)
        assert (field.transform, field.column, field.arg) == parsed
        partitioning.check(field, COLUMNS)
        return
    with pytest.raises(partitioning.PartitionError, match=problem.replace("(", r"\(")):
        partitioning.check(partitioning.parse(text), COLUMNS)
