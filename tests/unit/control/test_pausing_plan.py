"""The schema controller's plan (pure): pause a consumer a change breaks, resume it once its
declaration or the upstream is fixed, propagate what it does not consume — tables of cases."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from datamesh.cdc.pgoutput import Column
from datamesh.cdc.schemas import TableShape, envelope_schema
from datamesh.control.actions import Affected
from datamesh.control.pausing import plan_evolution
from datamesh.flink.deployed_inputs import InputSchema
from datamesh.pauses import Pause
from datamesh.specs import load_products
from mesh_assets import DOMAINS_DIR

PRODUCTS = load_products(DOMAINS_DIR)
BY_ID = {p.id: p for p in PRODUCTS}
CATALOG = BY_ID["studio.movie_catalog"]
INT8, INT4, TEXT, TIMESTAMPTZ = 20, 23, 25, 1184
TABLE = (
    ("id", INT8),
    ("title", TEXT),
    ("status", TEXT),
    ("release_year", INT4),
    ("updated_at", TIMESTAMPTZ),
)
SUBJECT = "studio.public.movies-value"


def movies(schema_id: int, columns: tuple[tuple[str, int], ...] = TABLE) -> InputSchema:
    cols = tuple(Column(name == "id", name, oid, -1) for name, oid in columns)
    shape = TableShape("public", "movies", cols, ("id",))
    return InputSchema(
        SUBJECT, schema_id, schema_id, envelope_schema("studio.public.movies", shape)
    )


def productions(schema_id: int) -> InputSchema:
    schema: dict[str, Any] = BY_ID["studio.productions"].value_schema or {}
    return InputSchema("studio.public.productions-value", schema_id, 1, schema)


V1 = movies(1)
NO_STATUS = movies(2, tuple(c for c in TABLE if c[0] != "status"))
RATED = movies(3, (*TABLE, ("rating", INT4)))
REVERTED = movies(4, (*(c for c in TABLE if c[0] != "status"), ("status", TEXT)))
DEPLOYED = {"studio.movies": V1, "studio.productions": productions(10)}
PAUSED = Pause(
    "studio.movie_catalog",
    "studio.movies",
    ("status",),
    "drop column studio.movies.status",
    ("team:studio-eng",),
    "products.yaml",
    2,
    "file:/sp/1",
)
NO_STATUS_SQL = replace(
    CATALOG,
    sql="SELECT m.id AS movie_id, m.title, p.stage, p.location FROM `studio.movies` AS m "
    "LEFT JOIN `studio.productions` AS p ON p.movie_id = m.id",
    consumes={},
)

CASES: list[tuple[str, Any, InputSchema, Pause | None, tuple[str, str] | None]] = [
    ("nothing changed", CATALOG, V1, None, None),
    ("consumed column dropped: pause", CATALOG, NO_STATUS, None, ("pause", "status")),
    ("column added: update", CATALOG, RATED, None, ("update", "")),
    ("still broken while paused: in sync", CATALOG, NO_STATUS, PAUSED, ("in_sync", "")),
    (
        "paused, never stopped: pause again",
        CATALOG,
        NO_STATUS,
        replace(PAUSED, savepoint=None),
        ("pause", "status"),
    ),
    ("declaration updated: resume", NO_STATUS_SQL, NO_STATUS, PAUSED, ("resume", "")),
    ("upstream change reverted: resume", CATALOG, REVERTED, PAUSED, ("resume", "")),
]


@pytest.mark.parametrize(
    ("consumer", "latest", "pause", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_plan_evolution(
    consumer: Any, latest: InputSchema, pause: Pause | None, expected: tuple[str, str] | None
) -> None:
    products = [consumer if p.id == consumer.id else p for p in PRODUCTS]
    paused = {} if pause is None else {pause.product: pause}
    actions = plan_evolution(
        products,
        {consumer.id: DEPLOYED},
        {"studio.movies": latest, "studio.productions": productions(10)},
        paused,
    )
    got = [(a.verb, ",".join(a.params.get("fields", []))) for a in actions]
    assert got == ([] if expected is None else [expected])
    for a in actions:
        assert (a.product, a.resource, a.name) == (
            "studio.movie_catalog",
            "flink_job",
            "mesh-studio-movie_catalog",
        )


def test_a_pause_names_field_change_consumer_and_owner() -> None:
    (action,) = plan_evolution(PRODUCTS, {CATALOG.id: DEPLOYED}, {"studio.movies": NO_STATUS}, {})
    assert action.impact == (
        Affected("studio.movie_catalog", ("team:studio-eng",), "breaks", ("status",)),
    )
    assert action.breaks
    assert action.describe() == (
        "PAUSE    flink_job mesh-studio-movie_catalog: drop column studio.movies.status → breaks "
        "studio.movie_catalog (consumes status; owner team:studio-eng); pauses 1 pipeline"
    )
    assert dict(action.params) == {
        "input": "studio.movies",
        "fields": ["status"],
        "change": "drop column studio.movies.status",
        "owners": ["team:studio-eng"],
        "declared_in": str(CATALOG.declared_in),
        "schema_id": 2,
    }


def test_a_resume_restores_the_pause_savepoint_and_moves_to_the_latest_schemas() -> None:
    products = [NO_STATUS_SQL if p.id == CATALOG.id else p for p in PRODUCTS]
    (action,) = plan_evolution(
        products, {CATALOG.id: DEPLOYED}, {"studio.movies": NO_STATUS}, {CATALOG.id: PAUSED}
    )
    assert dict(action.params) == {
        "savepoint": "file:/sp/1",
        "inputs": {"studio.movies": 2, "studio.productions": 10},
    }


def test_consumers_never_deployed_or_retired_are_left_alone() -> None:
    latest = {"studio.movies": NO_STATUS}
    assert plan_evolution(PRODUCTS, {}, latest, {}) == []
    retired = [replace(p, retired=True) if p.id == CATALOG.id else p for p in PRODUCTS]
    assert plan_evolution(retired, {CATALOG.id: DEPLOYED}, latest, {}) == []


def test_a_sink_job_is_not_paused_by_a_dropped_column_it_only_carries() -> None:
    serving = BY_ID["content.localized_titles_serving"]
    schema: dict[str, Any] = BY_ID["content.localized_titles"].value_schema or {}
    old = InputSchema("content.localized_titles-value", 1, 1, schema)
    fields = [f for f in schema["fields"] if f["name"] != "artwork_url"]
    new = InputSchema("content.localized_titles-value", 2, 2, {**schema, "fields": fields})
    (action,) = plan_evolution(
        PRODUCTS,
        {serving.id: {"content.localized_titles": old}},
        {"content.localized_titles": new},
        {},
    )
    assert action.verb == "update"
    assert action.impact[0].fields == ("artwork_url",)
