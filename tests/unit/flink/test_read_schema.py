"""Processors read their inputs with the registered schema (pure): which columns, which types,
and what a typed processor's generated query then carries."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from datamesh.flink.job import from_product, read_schema
from datamesh.flink.schema import extended
from datamesh.specs import load_products
from mesh_assets import DOMAINS_DIR

BY_ID = {p.id: p for p in load_products(DOMAINS_DIR)}
MOVIES = BY_ID["studio.movies"]
OPT_STR = ["null", "string"]
DECLARED = {"type": "record", "name": "Movie", "fields": [
    {"name": "id", "type": "long"}, {"name": "title", "type": "string"},
    {"name": "status", "type": "string"},
]}  # fmt: skip


def registered(*fields: tuple[str, Any]) -> dict[str, Any]:
    """A row record as the CDC connector registers it: every column optional."""
    out = [{"name": n, "type": t, "default": None} for n, t in fields]
    return {"type": "record", "name": "Value", "namespace": "x", "fields": out}


CASES = [
    (
        "nothing registered: declared",
        None,
        [("id", "long"), ("title", "string"), ("status", "string")],
    ),
    (
        "declared columns keep their contract",
        registered(("id", ["null", "long"]), ("title", OPT_STR), ("status", OPT_STR)),
        [("id", "long"), ("title", "string"), ("status", "string")],
    ),
    (
        "an added column comes as registered",
        registered(
            ("id", ["null", "long"]),
            ("title", OPT_STR),
            ("status", OPT_STR),
            ("rating", ["null", "int"]),
        ),
        [("id", "long"), ("title", "string"), ("status", "string"), ("rating", ["null", "int"])],
    ),
    (
        "a dropped column is gone",
        registered(("id", ["null", "long"]), ("title", OPT_STR)),
        [("id", "long"), ("title", "string")],
    ),
]


@pytest.mark.parametrize(("reg", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_read_schema(reg: dict[str, Any] | None, expected: list[tuple[str, Any]]) -> None:
    got = read_schema(DECLARED, reg)
    assert got is not None
    assert [(f["name"], f["type"]) for f in got["fields"]] == expected


def test_an_undeclared_input_is_read_as_registered() -> None:
    reg = registered(("id", ["null", "long"]))
    assert read_schema(None, reg) == reg
    assert read_schema(None, None) is None


def test_a_filter_carries_an_added_column_and_its_source_table_has_it() -> None:
    spec = {"type": "filter", "where": "id > 1"}
    product = replace(BY_ID["studio.movie_catalog"], inputs=(MOVIES.id,), processor=spec)
    assert MOVIES.value_schema is not None
    columns = [(f["name"], f["type"]) for f in MOVIES.value_schema["fields"]]
    rows = registered(*columns, ("rating", ["null", "int"]))
    job = from_product(product, BY_ID, processor=spec, registered={MOVIES.id: rows})
    (table,) = job.inputs
    assert [n for n, _ in table.columns][-2:] == ["updated_at", "rating"]
    assert dict(table.columns)["rating"] == "INT" and dict(table.columns)["id"] == "BIGINT NOT NULL"
    plain = from_product(product, BY_ID, processor=spec)
    assert "rating" not in dict(plain.inputs[0].columns)


def field(name: str, t: Any) -> dict[str, Any]:
    return {"name": name, "type": t}


OUT = {"type": "record", "name": "Out", "fields": [field("id", "long"), field("title", OPT_STR)]}
EXTENDED = [
    ("no extra column", [field("id", "long"), field("title", OPT_STR)], None),
    (
        "a nullable column after the declared ones",
        [field("id", "long"), field("title", OPT_STR), field("rating", ["null", "int"])],
        [("rating", ["null", "int"])],
    ),
    (
        "a NOT NULL one is not",
        [field("id", "long"), field("title", OPT_STR), field("rating", "int")],
        None,
    ),
    (
        "nor one among the declared",
        [field("id", "long"), field("rating", ["null", "int"]), field("title", OPT_STR)],
        None,
    ),
]


@pytest.mark.parametrize(
    ("derived", "added"), [c[1:] for c in EXTENDED], ids=[c[0] for c in EXTENDED]
)
def test_the_declared_output_is_extended_by_trailing_nullable_columns(
    derived: list[dict[str, Any]], added: list[tuple[str, Any]] | None
) -> None:
    got = extended(OUT, {"type": "record", "name": "D", "fields": derived})
    if added is None:
        assert got is OUT
        return
    assert got["fields"][:2] == OUT["fields"] and got["name"] == "Out"
    assert [(f["name"], f["type"], f["default"]) for f in got["fields"][2:]] == [
        (n, t, None) for n, t in added
    ]
