"""Typed processors (``processor: {type: ...}``): generated SQL, lineage, and a tumbling window
aggregate with event-time watermarks deployed end to end."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from datamesh import names
from datamesh.flink import FlinkJobs, ProcessorJob
from datamesh.flink.lineage import column_lineage
from datamesh.flink.templates import TemplateError, processor_sql
from tests.integration.flink.conftest import Topics, product, record

INPUTS = {"s.movies": ["id", "title", "status"], "s.prods": ["id", "movie_id", "stage"]}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"type": "filter", "where": "status = 'post'"},
            {c: [("s.movies", c)] for c in INPUTS["s.movies"]},
        ),
        (
            {"type": "rename", "columns": {"title": "movie_title"}},
            {"id": [("s.movies", "id")], "movie_title": [("s.movies", "title")],
             "status": [("s.movies", "status")]},
        ),
        (
            {"type": "projection", "columns": ["id", "UPPER(title) AS shout"], "where": "id > 1"},
            {"id": [("s.movies", "id")], "shout": [("s.movies", "title")]},
        ),
    ],
)  # fmt: skip
def test_single_input_templates_and_their_lineage(
    spec: dict[str, object], expected: dict[str, list[tuple[str, str]]]
) -> None:
    sql = processor_sql(spec, {"s.movies": INPUTS["s.movies"]})
    assert column_lineage(sql, INPUTS) == expected


def test_join_and_union_templates() -> None:
    join = {"type": "join", "how": "left", "on": "prods.movie_id = movies.id",
            "select": ["movies.id AS movie_id", "prods.stage"]}  # fmt: skip
    sql = processor_sql(join, INPUTS)
    assert "LEFT JOIN `s.prods` AS prods ON prods.movie_id = movies.id" in sql
    assert column_lineage(sql, INPUTS) == {
        "movie_id": [("s.movies", "id")],
        "stage": [("s.prods", "stage")],
    }
    with pytest.raises(TemplateError, match="needs `where:`"):
        processor_sql({"type": "filter"}, {"s.movies": INPUTS["s.movies"]})


@pytest.mark.integration
def test_window_processor_counts_per_tumbling_minute(
    flink: FlinkJobs, topics: Topics, domain: str, jobs: Callable[..., ProcessorJob]
) -> None:
    ts = {"type": "long", "logicalType": "timestamp-millis"}
    views = product(
        domain, "views", "processor", record("View", domain, [("page", "string"), ("ts", ts)])
    )
    topics.create(names.topic(views))
    per_minute = product(domain, "views_per_minute", "processor", inputs=(views.id,))
    spec = {"type": "window", "time": "ts", "size": "1m", "delay": "0s", "group_by": ["page"],
            "aggregates": {"views": "COUNT(*)"}}  # fmt: skip
    job: ProcessorJob = jobs(per_minute, [views], processor_spec=spec)
    assert flink.deploy(job).running

    minute = 60_000
    t0 = 1_700_000_000_000 // minute * minute
    at = [(10, "a"), (20, "a"), (30, "b"), (70, "a"), (150, "b")]  # seconds after t0
    topics.produce(
        names.topic(views), views.value_schema, [{"page": p, "ts": t0 + s * 1000} for s, p in at]
    )
    out = topics.read(names.topic(per_minute), lambda m: len(m) >= 3)
    rows = sorted(
        (int(v["window_start"].timestamp() * 1000) - t0, v["page"], v["views"]) for _, v, _ in out
    )
    assert rows == [(0, "a", 2), (0, "b", 1), (minute, "a", 1)]  # minute 2 is still open
