"""Which sinks can be audited: tables of declarations, each with the reason or the mapping."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from datamesh.audit.auditability import analyse, analyse_all, query_step
from datamesh.specs import load_products
from datamesh.specs.product import CdcSource, DataProduct, SinkSettings, Slo

DOMAINS = Path(__file__).resolve().parents[3] / "mesh_assets" / "domains"
MOVIE_FIELDS = ("id", "title", "status", "budget")


def _schema(fields: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "record",
        "name": "r",
        "fields": [{"name": f, "type": "string"} for f in fields],
    }


def _product(name: str, kind: str, **kw: Any) -> DataProduct:
    fields = kw.pop("fields", None)
    return DataProduct(
        domain="d",
        name=name,
        kind=kind,  # type: ignore[arg-type]
        description="x",
        owners=("team:x",),
        access="public",
        tier=2,
        slo=Slo(),
        key=kw.pop("key", ()),
        inputs=kw.pop("inputs", ()),
        value_schema=_schema(fields) if fields else None,
        topic=None,
        compatibility="BACKWARD",
        declared_in=Path("d/products.yaml"),
        **kw,
    )


MOVIES = _product(
    "movies", "cdc", key=("id",), fields=MOVIE_FIELDS, source=CdcSource("db", "public", "movies")
)
CREW = _product(
    "crew",
    "cdc",
    key=("id",),
    fields=("id", "movie_id", "name"),
    source=CdcSource("db", "public", "crew"),
)


def _sink(
    kind: str, inputs: tuple[str, ...], key: tuple[str, ...], mode: str = "upsert"
) -> DataProduct:
    return _product("sink", kind, key=key, inputs=inputs, sink=SinkSettings(mode=mode))  # type: ignore[arg-type]


def _processor(
    sql: str,
    key: tuple[str, ...],
    fields: tuple[str, ...] | None = None,
    inputs: tuple[str, ...] = ("d.movies",),
) -> DataProduct:
    return _product("proc", "processor", key=key, inputs=inputs, sql=sql, fields=fields)


@pytest.mark.parametrize(
    ("processor", "sink_key", "reason"),
    [
        (
            _processor(
                "SELECT status, COUNT(*) AS n FROM `d.movies` GROUP BY status",
                ("status",),
                ("status", "n"),
            ),
            ("status",),
            "d.proc: aggregation changes the key",
        ),
        (
            _processor(
                "SELECT m.id, c.name FROM `d.movies` m JOIN `d.crew` c ON c.movie_id = m.id",
                ("id",),
                ("id", "name"),
                inputs=("d.movies", "d.crew"),
            ),
            ("id",),
            "d.proc joins or unions d.movies, d.crew",
        ),
        (
            _processor(
                "SELECT id, title FROM `d.movies` WHERE status = 'x'", ("id",), ("id", "title")
            ),
            ("id",),
            "d.proc: a filter keeps a subset of the source's keys",
        ),
        (
            _processor("SELECT DISTINCT id, title FROM `d.movies`", ("id",), ("id", "title")),
            ("id",),
            "d.proc: aggregation changes the key",
        ),
        (
            _processor("SELECT id + 1 AS id, title FROM `d.movies`", ("id",), ("id", "title")),
            ("id",),
            "d.proc: its key (id) is not the plain key (id) of d.movies",
        ),
        (
            _processor("SELECT title, status FROM `d.movies`", ("title",), ("title", "status")),
            ("title",),
            "d.proc: its key (title) is not the plain key (id) of d.movies",
        ),
    ],
)
def test_not_auditable_names_the_step(
    processor: DataProduct, sink_key: tuple[str, ...], reason: str
) -> None:
    sink = _sink("postgres_sink", ("d.proc",), sink_key)
    result = analyse(sink, {p.id: p for p in (MOVIES, CREW, processor, sink)})
    assert not result.auditable
    assert result.reason == reason
    assert result.describe() == f"d.sink: not auditable: {reason}"


def test_append_table_is_not_auditable() -> None:
    sink = _sink("iceberg_sink", ("d.movies",), ("id",), mode="append")
    result = analyse(sink, {p.id: p for p in (MOVIES, sink)})
    assert not result.auditable and "append table" in result.reason


@pytest.mark.parametrize("kind", ["iceberg_sink", "postgres_sink"])
def test_sink_of_cdc_carries_every_column(kind: str) -> None:
    sink = _sink(kind, ("d.movies",), ("id",))
    result = analyse(sink, {p.id: p for p in (MOVIES, sink)})
    assert result.auditable, result.reason
    assert result.source == CdcSource("db", "public", "movies")
    assert result.source_product == "d.movies"
    assert result.key == (("id", "id"),)
    assert result.columns == tuple((f, f) for f in MOVIE_FIELDS)
    assert result.describe() == "d.sink: auditable against db.public.movies (key id; 4 columns)"


def test_renames_and_computed_columns_through_a_processor() -> None:
    proc = _processor(
        "SELECT m.id AS movie_id, m.title AS name, UPPER(m.status) AS status FROM `d.movies` AS m",
        ("movie_id",),
        ("movie_id", "name", "status"),
    )
    sink = _sink("iceberg_sink", ("d.proc",), ("movie_id",))
    result = analyse(sink, {p.id: p for p in (MOVIES, proc, sink)})
    assert result.auditable, result.reason
    assert result.key == (("movie_id", "id"),)
    assert result.columns == (("movie_id", "id"), ("name", "title"))
    assert result.not_compared == ("status",)
    assert "key movie_id = id" in result.describe() and "not compared: status" in result.describe()


def test_star_carries_the_input_columns() -> None:
    assert query_step("SELECT * FROM `d.movies`", MOVIE_FIELDS) == {f: f for f in MOVIE_FIELDS}


def test_window_function_is_an_aggregation() -> None:
    sql = (
        "SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE `d.movies`, "
        "DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start"
    )
    assert query_step(sql, MOVIE_FIELDS) == "windowed aggregation changes the key"


def test_demo_sinks_are_not_auditable_and_say_why() -> None:
    results = {r.product: r for r in analyse_all(load_products(DOMAINS))}
    assert set(results) == {
        "analytics.productions_started_daily_table",
        "analytics.productions_daily_serving",
        "analytics.talent_credits",
        "content.title_catalog",
        "content.localized_titles_serving",
        "studio.movies_history",
    }
    assert not any(r.auditable for r in results.values())
    assert results["analytics.productions_started_daily_table"].reason == (
        "analytics.productions_started_daily: aggregation changes the key"
    )
    assert results["content.title_catalog"].reason == (
        "content.localized_titles joins or unions studio.movies, content.artwork"
    )
    assert "append table" in results["studio.movies_history"].reason


def test_key_order_may_differ_but_not_its_columns() -> None:
    pair = _product(
        "pair",
        "cdc",
        key=("a", "b"),
        fields=("a", "b", "v"),
        source=CdcSource("db", "public", "pair"),
    )
    swapped = _sink("postgres_sink", ("d.pair",), ("b", "a"))
    result = analyse(swapped, {p.id: p for p in (pair, swapped)})
    assert result.auditable and result.key == (("b", "b"), ("a", "a"))
    partial = replace(swapped, key=("a",))
    result = analyse(partial, {p.id: p for p in (pair, partial)})
    assert result.reason == "its key (a) does not map to the source key (a, b) of d.pair"
