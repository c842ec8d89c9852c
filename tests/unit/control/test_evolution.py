"""Schema evolution decided by consumers (pure): field changes of records and CDC envelopes,
what each consumer uses, and whom a change breaks or updates — tables of cases."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from datamesh.cdc.pgoutput import Column
from datamesh.cdc.schemas import TableShape, envelope_schema
from datamesh.control.actions import Action, Affected, Effect
from datamesh.control.evolution import (
    Consumer,
    FieldChange,
    classify,
    consumed_fields,
    consumer_of,
    field_changes,
    impact_of_schema_change,
)
from datamesh.specs import DataProduct, load_products
from mesh_assets import DOMAINS_DIR

PRODUCTS = load_products(DOMAINS_DIR)
BY_ID = {p.id: p for p in PRODUCTS}
MOVIES = BY_ID["studio.movies"]
STUDIO, CONTENT = ("team:studio-eng",), ("team:content-platform", "content-data@example.com")
INT8, INT4, TEXT, TIMESTAMPTZ, NUMERIC = 20, 23, 25, 1184, 1700
TABLE = (
    ("id", INT8),
    ("title", TEXT),
    ("status", TEXT),
    ("release_year", INT4),
    ("updated_at", TIMESTAMPTZ),
)


def rec(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "Row", "namespace": "t", "fields": list(fields)}


def f(name: str, t: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": t, **extra}


def envelope(columns: tuple[tuple[str, int], ...] = TABLE) -> dict[str, Any]:
    """The envelope the CDC connector registers for public.movies with ``columns``."""
    cols = tuple(Column(name == "id", name, oid, -1) for name, oid in columns)
    return envelope_schema("studio.public.movies", TableShape("public", "movies", cols, ("id",)))


def without(name: str) -> tuple[tuple[str, int], ...]:
    return tuple(c for c in TABLE if c[0] != name)


TS = {"type": "long", "logicalType": "timestamp-micros"}
BASE = rec(f("id", "long"), f("title", "string", doc="Working title."), f("year", ["null", "int"]))

CHANGES: list[tuple[str, dict[str, Any], dict[str, Any], list[tuple[str, str]]]] = [
    ("same", BASE, copy.deepcopy(BASE), []),
    ("renamed record only", BASE, {**BASE, "name": "Other", "namespace": "x"}, []),
    (
        "added with default",
        BASE,
        rec(*BASE["fields"], f("rating", ["null", "int"], default=None)),
        [("rating", "added")],
    ),
    (
        "added without default",
        BASE,
        rec(*BASE["fields"], f("rating", "int")),
        [("rating", "added")],
    ),
    ("removed", BASE, rec(BASE["fields"][0], BASE["fields"][2]), [("title", "removed")]),
    (
        "retyped",
        BASE,
        rec(f("id", "long"), f("title", "int"), BASE["fields"][2]),
        [("title", "retyped")],
    ),
    (
        "made nullable",
        BASE,
        rec(f("id", ["null", "long"]), *BASE["fields"][1:]),
        [("id", "retyped")],
    ),
    (
        "logical type",
        rec(f("at", "long")),
        rec(f("at", TS)),
        [("at", "retyped")],
    ),
    (
        "doc only",
        BASE,
        rec(BASE["fields"][0], f("title", "string", doc="Final title."), BASE["fields"][2]),
        [("title", "doc")],
    ),
    (
        "nested record renamed only",
        rec(f("n", {"type": "record", "name": "A", "fields": [f("x", "int")]})),
        rec(f("n", {"type": "record", "name": "B", "doc": "d", "fields": [f("x", "int")]})),
        [],
    ),
    (
        "nested field retyped",
        rec(f("n", {"type": "record", "name": "A", "fields": [f("x", "int")]})),
        rec(f("n", {"type": "record", "name": "A", "fields": [f("x", "long")]})),
        [("n", "retyped")],
    ),
    ("cdc: drop column", envelope(), envelope(without("status")), [("status", "removed")]),
    (
        "cdc: add column",
        envelope(),
        envelope((*TABLE, ("rating", INT4))),
        [("rating", "added")],
    ),
    (
        "cdc: retype column",
        envelope(),
        envelope(tuple((n, INT8 if n == "release_year" else o) for n, o in TABLE)),
        [("release_year", "retyped")],
    ),
    ("cdc: same table", envelope(), envelope(), []),
    (
        "cdc envelope against a plain record (declared .avsc)",
        MOVIES.value_schema or {},
        envelope(without("status")),
        # the connector makes every column optional: a retype (nullability) for the rest
        [
            ("id", "retyped"),
            ("title", "retyped"),
            ("status", "removed"),
            ("updated_at", "retyped"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"), [c[1:] for c in CHANGES], ids=[c[0] for c in CHANGES]
)
def test_field_changes(
    old: dict[str, Any], new: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert [(c.field, c.kind) for c in field_changes(old, new)] == expected


def test_added_fields_say_whether_they_have_a_default() -> None:
    new = rec(*BASE["fields"], f("a", ["null", "int"], default=None), f("b", "int"))
    assert [(c.field, c.default) for c in field_changes(BASE, new)] == [("a", True), ("b", False)]


DESCRIBED = [
    (FieldChange("status", "removed", "string"), "drop column studio.movies.status"),
    (
        FieldChange("r", "added", None, "int", default=True),
        "add column studio.movies.r (with default)",
    ),
    (
        FieldChange("id", "retyped", "long", ["null", "long"]),
        'retype column studio.movies.id: "long" -> ["null","long"] (nullability: now optional)',
    ),
    (
        FieldChange("at", "retyped", "long", TS),
        'retype column studio.movies.at: "long" -> {"type":"long","logicalType":"timestamp-micros"}'
        " (logical type)",
    ),
    (
        FieldChange("t", "retyped", "string", "int"),
        'retype column studio.movies.t: "string" -> "int" (type)',
    ),
]


@pytest.mark.parametrize(("change", "text"), DESCRIBED, ids=[d[1][:20] for d in DESCRIBED])
def test_describe(change: FieldChange, text: str) -> None:
    assert change.describe("studio.movies") == text


def processor(sql: str | None = None, **kw: Any) -> DataProduct:
    base = BY_ID["studio.movie_catalog"]
    return replace(base, name="p", inputs=(MOVIES.id,), consumes={}, sql=sql, **kw)


CONSUMED: list[tuple[str, DataProduct, tuple[str, ...] | None]] = [
    ("consumes: declared", BY_ID["studio.movie_catalog"], ("id", "title", "status")),
    ("consumes: cross-domain", BY_ID["content.localized_titles"], ("id", "title")),
    (
        "sql: selected and filtered",
        processor("SELECT id, title FROM `studio.movies` WHERE status = 'released'"),
        ("id", "title", "status"),
    ),
    (
        "sql: star",
        processor("SELECT * FROM `studio.movies`"),
        ("id", "title", "status", "release_year", "updated_at"),
    ),
    (
        "sql: grouped, aggregated",
        processor("SELECT status, COUNT(*) AS n FROM `studio.movies` GROUP BY status"),
        ("status",),
    ),
    ("sql: unknown column", processor("SELECT nope FROM `studio.movies`"), None),
    ("sql: does not parse", processor("SELEC id FROM"), None),
    (
        "typed: filter reads everything it passes on",
        processor(processor={"type": "filter", "where": "release_year > 2000"}),
        ("id", "title", "status", "release_year", "updated_at"),
    ),
    (
        "typed: projection",
        processor(
            processor={"type": "projection", "columns": ["id", "title"], "where": "status = 'x'"}
        ),
        ("id", "title", "status"),
    ),
    ("sink: every field", BY_ID["studio.movies_history"], MOVIES.field_names()),
]


@pytest.mark.parametrize(
    ("consumer", "expected"), [c[1:] for c in CONSUMED], ids=[c[0] for c in CONSUMED]
)
def test_consumed_fields(consumer: DataProduct, expected: tuple[str, ...] | None) -> None:
    assert consumed_fields(consumer, MOVIES, BY_ID) == expected


def test_star_reads_a_column_only_the_new_schema_has() -> None:
    star = processor("SELECT * FROM `studio.movies`")
    fields = (*MOVIES.field_names(), "rating")
    assert consumed_fields(star, MOVIES, BY_ID, fields) == fields


def test_a_sink_needs_its_key_and_partition_sources() -> None:
    history = consumer_of(BY_ID["studio.movies_history"], MOVIES, BY_ID)
    assert history.carries and history.needs == ("id",)  # _event_time is its own column
    sink = BY_ID["studio.movies_history"].sink
    assert sink is not None
    by_day = replace(
        BY_ID["studio.movies_history"],
        sink=replace(sink, partition_by=("day(updated_at)", "status")),
    )
    assert consumer_of(by_day, MOVIES, BY_ID).needs == ("id", "updated_at", "status")


USES = Consumer("d.uses", ("team:d",), "s.t", ("id", "status"))
UNKNOWN = Consumer("d.unknown", ("team:d",), "s.t", None)
SINK = Consumer("d.sink", ("team:d",), "s.t", ("id", "status", "x"), carries=True, needs=("id",))
DROP_STATUS = FieldChange("status", "removed", "string")
DROP_X = FieldChange("x", "removed", "string")
RETYPE_X = FieldChange("x", "retyped", "int", "long")
ADD = FieldChange("rating", "added", None, "int", default=True)
DOC = FieldChange("status", "doc", "string", "string")
DROP_ID = FieldChange("id", "removed", "long")

CLASSIFIED: list[tuple[str, list[FieldChange], Consumer, tuple[Effect, tuple[str, ...]] | None]] = [
    ("consumed field dropped", [DROP_STATUS], USES, ("breaks", ("status",))),
    ("unused field dropped", [DROP_X], USES, ("updates", ())),
    ("unused field retyped", [RETYPE_X], USES, ("updates", ())),
    ("column added", [ADD], USES, ("updates", ())),
    ("doc only", [DOC], USES, None),
    ("unknown use: any removal breaks", [DROP_X], UNKNOWN, ("breaks", ("x",))),
    ("unknown use: an addition updates", [ADD], UNKNOWN, ("updates", ("rating",))),
    ("sink: carried column dropped", [DROP_X], SINK, ("updates", ("x",))),
    ("sink: key column dropped", [DROP_ID], SINK, ("breaks", ("id",))),
    ("sink: carried column retyped", [RETYPE_X], SINK, ("breaks", ("x",))),
    ("sink: column added", [ADD], SINK, ("updates", ("rating",))),
    ("break wins over update", [ADD, DROP_STATUS, DROP_X], USES, ("breaks", ("status",))),
]


@pytest.mark.parametrize(
    ("changes", "consumer", "expected"), [c[1:] for c in CLASSIFIED], ids=[c[0] for c in CLASSIFIED]
)
def test_classify(
    changes: list[FieldChange],
    consumer: Consumer,
    expected: tuple[Effect, tuple[str, ...]] | None,
) -> None:
    want = [] if expected is None else [Affected(consumer.product, consumer.owners, *expected)]
    assert classify(changes, [consumer]) == want


def test_dropping_a_consumed_cdc_column_breaks_its_consumer_naming_field_and_owner() -> None:
    impact = impact_of_schema_change(MOVIES.id, envelope(), envelope(without("status")), PRODUCTS)
    assert impact == (
        Affected("content.localized_titles", CONTENT, "updates", ()),
        Affected("studio.movie_catalog", STUDIO, "breaks", ("status",)),
        Affected("studio.movies_history", STUDIO, "updates", ("status",)),
    )
    line = Action(
        MOVIES.id,
        "subject",
        "studio.public.movies-value",
        "update",
        "drop column studio.movies.status",
        impact=impact[1:2],
    ).describe()
    assert line.endswith(
        "→ breaks studio.movie_catalog (consumes status; owner team:studio-eng); pauses 1 pipeline"
    )


def test_an_added_column_updates_every_consumer_and_flows_on_through_star() -> None:
    star = replace(processor("SELECT * FROM `studio.movies`"), value_schema=None, key=())
    star_sink = replace(BY_ID["studio.movies_history"], name="star_history", inputs=(star.id,))
    products = [*PRODUCTS, star, star_sink]
    impact = impact_of_schema_change(
        MOVIES.id, envelope(), envelope((*TABLE, ("rating", INT4))), products
    )
    assert [(a.product, a.effect, a.fields) for a in impact] == [
        ("content.localized_titles", "updates", ()),
        ("studio.movie_catalog", "updates", ()),
        ("studio.movies_history", "updates", ("rating",)),
        ("studio.p", "updates", ("rating",)),
        ("studio.star_history", "updates", ("rating",)),  # further down, through SELECT *
    ]
    assert not any(a.effect == "breaks" for a in impact)


def test_nothing_downstream_of_a_broken_consumer_is_listed_as_updated() -> None:
    # studio.p carries status into its output (SELECT *): dropping it breaks p, and p's sink
    # is behind the paused pipeline, not "updated"
    star = replace(processor("SELECT * FROM `studio.movies`"), value_schema=None, key=())
    star_sink = replace(BY_ID["studio.movies_history"], name="star_history", inputs=(star.id,))
    impact = impact_of_schema_change(
        MOVIES.id, envelope(), envelope(without("status")), [*PRODUCTS, star, star_sink]
    )
    assert ("studio.p", "breaks", ("status",)) in [(a.product, a.effect, a.fields) for a in impact]
    assert "studio.star_history" not in {a.product for a in impact}


def test_a_doc_only_change_affects_nobody() -> None:
    old = MOVIES.value_schema or {}
    new = copy.deepcopy(old)
    new["fields"][1]["doc"] = "Final title."
    assert impact_of_schema_change(MOVIES.id, old, new, PRODUCTS) == ()
