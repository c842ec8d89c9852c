"""Field-level lineage from processor SQL (pure: no services), including the demo domains."""

from __future__ import annotations

import pytest

from datamesh.flink.lineage import column_lineage
from mesh_assets import DOMAINS_DIR

DOMAINS = DOMAINS_DIR
INPUTS = {
    "studio.movies": ["id", "title", "status", "release_year", "updated_at"],
    "studio.productions": ["id", "movie_id", "stage", "location", "budget"],
    "content.artwork": ["id", "movie_id", "locale", "url"],
}
M, P, A = "studio.movies", "studio.productions", "content.artwork"


def test_demo_processors() -> None:
    catalog = (DOMAINS / "studio" / "movie_catalog.sql").read_text()
    assert column_lineage(catalog, INPUTS) == {
        "movie_id": [(M, "id")],
        "title": [(M, "title")],
        "status": [(M, "status")],
        "stage": [(P, "stage")],
        "location": [(P, "location")],
    }
    titles = (DOMAINS / "content" / "localized_titles.sql").read_text()
    assert column_lineage(titles, INPUTS) == {
        "movie_id": [(M, "id")],
        "locale": [(A, "locale")],
        "title": [(M, "title")],
        "artwork_url": [(A, "url")],
    }


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT status, COUNT(*) AS n, MAX(release_year) latest FROM `studio.movies`"
            " WHERE title <> 'x' GROUP BY status",
            {"status": [(M, "status")], "n": [], "latest": [(M, "release_year")]},
        ),
        (
            "SELECT * FROM `studio.movies`",
            {c: [(M, c)] for c in INPUTS[M]},
        ),
        (
            "WITH m AS (SELECT id AS mid, UPPER(title) AS t FROM `studio.movies`)\n"
            "SELECT m.t || p.stage AS label, CAST(m.mid AS STRING) AS k\n"
            "FROM m JOIN `studio.productions` p ON p.movie_id = m.mid",
            {"label": [(M, "title"), (P, "stage")], "k": [(M, "id")]},
        ),
        (
            "SELECT window_start, status, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE `studio.movies`,"
            " DESCRIPTOR(updated_at), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end,"
            " status",
            {"window_start": [(M, "updated_at")], "status": [(M, "status")], "n": []},
        ),
        (
            "SELECT id, title FROM `studio.movies`\nUNION ALL\n"
            "SELECT movie_id, stage FROM `studio.productions`",
            {"id": [(M, "id"), (P, "movie_id")], "title": [(M, "title"), (P, "stage")]},
        ),
        (
            "SELECT x.id, CASE WHEN x.status = 'a' THEN x.title ELSE 'none' END AS label\n"
            "FROM (SELECT * FROM `studio.movies` WHERE id > 3) AS x -- a comment",
            {"id": [(M, "id")], "label": [(M, "status"), (M, "title")]},
        ),
    ],
)
def test_sql_shapes(sql: str, expected: dict[str, list[tuple[str, str]]]) -> None:
    assert column_lineage(sql, INPUTS) == expected


def test_output_columns_rename_positionally() -> None:
    sql = "SELECT id + 1, title FROM `studio.movies`"
    assert column_lineage(sql, INPUTS, ["EXPR$0", "title"]) == {
        "EXPR$0": [(M, "id")],
        "title": [(M, "title")],
    }
