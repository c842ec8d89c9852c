"""Registered schema vs declaration (pure): tables of registered schemas and subject levels."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from datamesh.cdc.pgoutput import Column
from datamesh.cdc.schemas import TableShape, envelope_schema
from datamesh.checks.evaluate import evaluate
from datamesh.checks.observed import Observed, Subject
from datamesh.checks.schema_match import problems, row_record
from datamesh.specs import DataProduct, load_products
from mesh_assets import DOMAINS_DIR

BY_ID = {p.id: p for p in load_products(DOMAINS_DIR)}
MOVIES, CATALOG = BY_ID["studio.movies"], BY_ID["studio.movie_catalog"]
CATALOG_HOP = "processor studio.movie_catalog (flink job mesh-studio-movie_catalog)"


def declared(p: DataProduct) -> dict[str, Any]:
    assert p.value_schema is not None
    return copy.deepcopy(p.value_schema)


def nullable(t: Any) -> list[Any]:
    return t if isinstance(t, list) else ["null", t]


def envelope(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """A Debezium envelope as the connector registers it: the row record defined in ``before``
    and named again in ``after``."""
    value = {"type": "record", "name": "Value", "fields": fields}
    return {
        "type": "record",
        "name": "Envelope",
        "namespace": "studio.public.movies",
        "fields": [
            {"name": "before", "type": ["null", value], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},
            {
                "name": "source",
                "type": {
                    "type": "record",
                    "name": "Source",
                    "fields": [{"name": "ts_ms", "type": "long"}, {"name": "lsn", "type": "long"}],
                },
            },
            {"name": "op", "type": "string"},
        ],
    }


def connector_fields() -> list[dict[str, Any]]:
    """The declared movie fields as the connector derives them: every column nullable."""
    return [
        {"name": f["name"], "type": nullable(f["type"]), "default": None}
        for f in declared(MOVIES)["fields"]
    ]


INT8, INT4, TEXT, TIMESTAMPTZ = 20, 23, 25, 1184
MOVIES_TABLE = (
    ("id", INT8),
    ("title", TEXT),
    ("status", TEXT),
    ("release_year", INT4),
    ("updated_at", TIMESTAMPTZ),
)


def registered_by_connector(columns: tuple[tuple[str, int], ...] = MOVIES_TABLE) -> dict[str, Any]:
    """The envelope the CDC connector itself registers for public.movies with ``columns``."""
    cols = tuple(Column(name == "id", name, oid, -1) for name, oid in columns)
    return envelope_schema("studio.public.movies", TableShape("public", "movies", cols, ("id",)))


def edit(schema: dict[str, Any], name: str, **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    out["fields"] = [{**f, **changes} if f["name"] == name else f for f in out["fields"]]
    return out


def without(schema: dict[str, Any], name: str) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    out["fields"] = [f for f in out["fields"] if f["name"] != name]
    return out


def plus(schema: dict[str, Any], field: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    out["fields"].append(field)
    return out


def declaring(p: DataProduct, level: str) -> DataProduct:
    return dataclasses.replace(p, compatibility=level)  # type: ignore[arg-type]


renamed = {**declared(CATALOG), "name": "Other", "namespace": "x.y", "doc": "d"}
PASS = [
    pytest.param(CATALOG, declared(CATALOG), "BACKWARD", id="identical"),
    pytest.param(CATALOG, declared(CATALOG), None, id="no level set: the BACKWARD default"),
    pytest.param(CATALOG, renamed, "BACKWARD", id="record renamed, docs added"),
    pytest.param(MOVIES, envelope(connector_fields()), "BACKWARD",
                 id="cdc envelope with nullable declared fields"),
    pytest.param(MOVIES, registered_by_connector(), "BACKWARD", id="the connector's own envelope"),
    pytest.param(MOVIES, registered_by_connector(MOVIES_TABLE[:-1]), "BACKWARD",
                 id="the connector's envelope after DROP COLUMN"),
    pytest.param(MOVIES, envelope(declared(MOVIES)["fields"]), "BACKWARD",
                 id="cdc envelope with the declared fields"),
    pytest.param(CATALOG, plus(declared(CATALOG), {"name": "x", "type": ["null", "string"],
                                                   "default": None}),
                 "BACKWARD", id="optional field added"),
    pytest.param(CATALOG, without(declared(CATALOG), "title"), "BACKWARD",
                 id="field dropped: BACKWARD accepts (the new reader ignores it)"),
    pytest.param(declaring(CATALOG, "NONE"), {"type": "record", "name": "R", "fields": []},
                 "NONE", id="NONE declared: anything"),
    pytest.param(declaring(CATALOG, "NONE"), {"type": "record", "name": "R",
                                              "fields": [{"name": "a", "type": "Unknown"}]},
                 "NONE", id="NONE declared: not even compared"),
    pytest.param(declaring(CATALOG, "FORWARD"), without(declared(CATALOG), "stage"), "FORWARD",
                 id="FORWARD: field with a default dropped"),
]  # fmt: skip


@pytest.mark.parametrize(("product", "registered", "level"), PASS)
def test_accepted(product: DataProduct, registered: dict[str, Any], level: str | None) -> None:
    assert problems(product, registered, level) == []


FAIL = [
    pytest.param(CATALOG, edit(declared(CATALOG), "title", type="int"), "BACKWARD",
                 ["registered schema cannot read data written by the declared schema (BACKWARD)",
                  "TYPE_MISMATCH", "int not compatible with writer type: string"],
                 id="type string -> int"),
    pytest.param(CATALOG, plus(declared(CATALOG), {"name": "x", "type": "string"}), "BACKWARD",
                 ["READER_FIELD_MISSING_DEFAULT_VALUE", "'x' has no default value"],
                 id="required field added"),
    pytest.param(declaring(CATALOG, "FORWARD"), without(declared(CATALOG), "title"), "FORWARD",
                 ["the declared schema cannot read data written by the registered schema "
                  "(FORWARD)", "'title' has no default value"],
                 id="FORWARD: field without default dropped"),
    pytest.param(declaring(CATALOG, "FULL"), without(declared(CATALOG), "title"), "FULL",
                 ["(FULL)", "'title'"], id="FULL: field without default dropped"),
    pytest.param(MOVIES, envelope(edit(declared(MOVIES), "title", type=["null", "int"])["fields"]),
                 "BACKWARD", ["MISSING_UNION_BRANCH", "lacking writer type string"],
                 id="cdc envelope with a changed type"),
    pytest.param(MOVIES, registered_by_connector((*MOVIES_TABLE[:1], ("title", INT4),
                                                  *MOVIES_TABLE[2:])),
                 "BACKWARD", ["/fields/1/type", "lacking writer type string"],
                 id="the connector's envelope after title text -> integer"),
    pytest.param(CATALOG, declared(CATALOG), "FORWARD",
                 ["the subject's level is FORWARD, declared BACKWARD", "out of band"],
                 id="level changed out of band"),
    pytest.param(CATALOG, edit(declared(CATALOG), "movie_id", type="int"), "NONE",
                 ["the subject's level is NONE, declared BACKWARD", "TYPE_MISMATCH"],
                 id="level NONE out of band does not hide an incompatible schema"),
    pytest.param(declaring(CATALOG, "NONE"), declared(CATALOG), "BACKWARD",
                 ["the subject's level is BACKWARD, declared NONE"],
                 id="NONE declared, subject level set back"),
    pytest.param(MOVIES, {"type": "record", "name": "E", "fields": [{"name": "op",
                                                                    "type": "string"}]},
                 "BACKWARD", ["the registered envelope has no row record"],
                 id="cdc subject without before/after"),
]  # fmt: skip


@pytest.mark.parametrize(("product", "registered", "level", "words"), FAIL)
def test_rejected(
    product: DataProduct, registered: dict[str, Any], level: str | None, words: list[str]
) -> None:
    found = "; ".join(problems(product, registered, level))
    for w in words:
        assert w in found, (w, found)


def test_two_problems_are_both_reported() -> None:
    found = problems(CATALOG, edit(declared(CATALOG), "title", type="int"), "FULL")
    assert len(found) == 2
    assert found[0].startswith("the subject's level is FULL, declared BACKWARD")


def test_row_record_is_the_record_defined_in_before() -> None:
    env = envelope(connector_fields())
    assert row_record(env) is env["fields"][0]["type"][1]
    after_only = copy.deepcopy(env)
    after_only["fields"][0]["name"] = "previous"  # neither before nor after defines it now
    assert row_record(after_only) is None


# -- the schema check's outcome -------------------------------------------------------------

NOW = 1_700_000_000_000


def schema_outcome(p: DataProduct, subjects: dict[str, Subject], **errors: str) -> Any:
    obs = Observed(now_ms=NOW, subjects=subjects, errors=errors)
    (o,) = [o for o in evaluate([p], BY_ID, obs, {})[p.id] if o.check == "schema"]
    return o


OUTCOMES = [
    pytest.param(MOVIES, {"studio.public.movies-value": Subject(envelope(connector_fields()), 4,
                                                                "BACKWARD")},
                 True, "ok", None,
                 "studio.public.movies-value version 4 matches the declaration (BACKWARD)",
                 id="cdc matches"),
    pytest.param(CATALOG, {"studio.movie_catalog-value": Subject(declared(CATALOG), 1, None)},
                 True, "ok", None, "version 1 matches", id="processor matches"),
    pytest.param(MOVIES, {}, False, "over", "connector studio-studio-cdc",
                 "nothing registered under studio.public.movies-value; materialize the product",
                 id="cdc nothing registered"),
    pytest.param(CATALOG, {"studio.movie_catalog-value": Subject(None, None, "BACKWARD")}, False,
                 "over", CATALOG_HOP,
                 "nothing registered under studio.movie_catalog-value",
                 id="processor subject without versions"),
    pytest.param(CATALOG, {"studio.movie_catalog-value": Subject(declared(CATALOG), 3,
                                                                 "FORWARD")},
                 False, "over", f"{CATALOG_HOP} / out of band",
                 "studio.movie_catalog-value version 3: the subject's level is FORWARD",
                 id="processor level changed"),
    pytest.param(MOVIES, {"studio.public.movies-value": Subject(
                     envelope(edit(declared(MOVIES), "id", type="string")["fields"]), 2, None)},
                 False, "over", "connector studio-studio-cdc / out of band",
                 "version 2: registered schema cannot",
                 id="cdc incompatible"),
]  # fmt: skip


@pytest.mark.parametrize(("product", "subjects", "passed", "state", "hop", "words"), OUTCOMES)
def test_schema_outcome(
    product: DataProduct,
    subjects: dict[str, Subject],
    passed: bool,
    state: str,
    hop: str | None,
    words: str,
) -> None:
    o = schema_outcome(product, subjects)
    assert (o.passed, o.state, o.hop) == (passed, state, hop), o
    assert words in o.summary, o.summary


def test_schema_outcome_details() -> None:
    subject = Subject(declared(CATALOG), 7, "BACKWARD")
    o = schema_outcome(CATALOG, {"studio.movie_catalog-value": subject})
    assert o.details == {"subject": "studio.movie_catalog-value", "version": 7, "level": "BACKWARD"}


def test_registry_unreachable() -> None:
    o = schema_outcome(MOVIES, {}, registry="connection refused")
    assert (o.passed, o.state, o.hop) == (False, "could not evaluate", "registry")
    assert "connection refused" in o.summary
