"""Field-level lineage from processor SQL (pure: no services), including the demo domains."""

from __future__ import annotations

import pytest

from datamesh.flink.lineage import LineageError, column_lineage, columns_read
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


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param(
            "SELECT COALESCE(p.location, m.title, 'x') AS place,\n"
            "  CASE p.stage WHEN 'done' THEN m.status ELSE NULL END AS state\n"
            "FROM `studio.movies` m JOIN `studio.productions` p ON p.movie_id = m.id",
            {"place": [(P, "location"), (M, "title")], "state": [(P, "stage"), (M, "status")]},
            id="coalesce-and-case",
        ),
        pytest.param(
            "SELECT CONCAT(m.title, ' / ', p.stage, CAST(p.budget AS STRING)) AS label\n"
            "FROM `studio.movies` m, `studio.productions` p WHERE m.id = p.movie_id",
            {"label": [(M, "title"), (P, "stage"), (P, "budget")]},
            id="function-of-several-columns",
        ),
        pytest.param(
            "SELECT y.t FROM (SELECT x.t FROM (SELECT UPPER(title) AS t FROM `studio.movies`) x) y",
            {"t": [(M, "title")]},
            id="nested-subqueries",
        ),
        pytest.param(
            "WITH a AS (SELECT id, title FROM `studio.movies`),\n"
            "     b AS (SELECT id AS k, LOWER(title) AS t FROM a)\n"
            "SELECT k, t FROM b",
            {"k": [(M, "id")], "t": [(M, "title")]},
            id="cte-chain",
        ),
        pytest.param(
            "SELECT id AS key, title AS label FROM `studio.movies`\nUNION ALL\n"
            "SELECT movie_id, stage FROM `studio.productions`\nUNION ALL\n"
            "SELECT movie_id, url FROM `content.artwork`",
            {
                "key": [(M, "id"), (P, "movie_id"), (A, "movie_id")],
                "label": [(M, "title"), (P, "stage"), (A, "url")],
            },
            id="union-all-of-differently-named-columns",
        ),
        pytest.param(
            "SELECT p.*, a.url FROM `studio.productions` p\n"
            "JOIN `content.artwork` a ON a.movie_id = p.movie_id",
            {**{c: [(P, c)] for c in INPUTS[P]}, "url": [(A, "url")]},
            id="table-star-across-a-join",
        ),
        pytest.param(
            "SELECT m.id, (SELECT MAX(p.budget) FROM `studio.productions` p\n"
            "  WHERE p.movie_id = m.id) AS top_budget FROM `studio.movies` m",
            {"id": [(M, "id")], "top_budget": [(P, "budget")]},
            id="correlated-scalar-subquery",
        ),
        pytest.param(
            "SELECT m.id, p.stage FROM `studio.movies` m\n"
            "LEFT JOIN `studio.productions` FOR SYSTEM_TIME AS OF m.updated_at AS p\n"
            "  ON p.movie_id = m.id",
            {"id": [(M, "id")], "stage": [(P, "stage")]},
            id="temporal-join",
        ),
        pytest.param(
            "SELECT m.id, t.word FROM `studio.movies` m\n"
            "CROSS JOIN UNNEST(ARRAY(m.title, m.status)) AS t(word)",
            {"id": [(M, "id")], "word": [(M, "title"), (M, "status")]},
            id="unnest",
        ),
        pytest.param(
            "SELECT w.window_start, w.window_end, w.status, COUNT(*) AS n FROM TABLE(\n"
            "  HOP(TABLE `studio.movies`, DESCRIPTOR(`updated_at`), INTERVAL '1' MINUTE,\n"
            "      INTERVAL '5' MINUTE)) AS w\n"
            "GROUP BY w.window_start, w.window_end, w.status",
            {
                "window_start": [(M, "updated_at")],
                "window_end": [(M, "updated_at")],
                "status": [(M, "status")],
                "n": [],
            },
            id="hop-window-with-alias",
        ),
        pytest.param(
            "WITH recent AS (SELECT id, updated_at FROM `studio.movies`)\n"
            "SELECT window_time, id FROM TABLE(\n"
            "  TUMBLE(DATA => TABLE recent, TIMECOL => DESCRIPTOR(updated_at),\n"
            "         SIZE => INTERVAL '1' MINUTE))",
            {"window_time": [(M, "updated_at")], "id": [(M, "id")]},
            id="window-over-a-cte-with-named-arguments",
        ),
        pytest.param(
            "SELECT id + 1, title, ROW_NUMBER() OVER (PARTITION BY status ORDER BY updated_at)\n"
            "FROM `studio.movies`",
            {
                "EXPR$0": [(M, "id")],
                "title": [(M, "title")],
                "EXPR$2": [(M, "status"), (M, "updated_at")],
            },
            id="unnamed-expressions-are-named-as-in-flink",
        ),
    ],
)
def test_sql_shapes_the_parser_resolves(
    sql: str, expected: dict[str, list[tuple[str, str]]]
) -> None:
    assert column_lineage(sql, INPUTS) == expected


def test_identifiers_keep_their_case() -> None:
    inputs = {"s.events": ["movieId", "releaseYear"]}
    sql = "SELECT movieId, releaseYear + 1 AS nextYear FROM `s.events`"
    assert column_lineage(sql, inputs) == {
        "movieId": [("s.events", "movieId")],
        "nextYear": [("s.events", "releaseYear")],
    }
    with pytest.raises(LineageError, match="'movieid' is in no input"):
        column_lineage("SELECT movieid FROM `s.events`", inputs)


@pytest.mark.parametrize(
    ("sql", "problem", "line"),
    [
        ("SELECT id,\n  nope\nFROM `studio.movies`", "'nope' is in no input", 2),
        ("SELECT m.id,\n  m.titel\nFROM `studio.movies` m", "'m' has no column 'titel'", 2),
        (
            "SELECT id FROM `studio.movies` m\nJOIN `studio.productions` p ON p.movie_id = m.id",
            "'id' is in no input, or in several",
            1,
        ),
        ("SELECT id\nFROM studio.movies", "reads 'studio.movies', which is not an input", 2),
        ("SELECT *\nFROM `studio.nothing`", "reads 'studio.nothing'", 2),
        ("SELECT id,\n  title FROM `studio.movies` WHERE (", "Required keyword", 2),
        ("DELETE FROM `studio.movies`", "not a query: DELETE", None),
        ("SELECT id, title FROM `studio.movies` UNION ALL SELECT 1", "different numbers", None),
        (
            "SELECT window_start FROM TABLE(\n"
            "  TUMBLE(TABLE `studio.movies`, INTERVAL '1' MINUTE))",
            "needs DESCRIPTOR",
            2,
        ),
    ],
)
def test_underivable_lineage_is_a_lineage_error(sql: str, problem: str, line: int | None) -> None:
    with pytest.raises(LineageError) as raised:
        column_lineage(sql, INPUTS)
    assert problem in raised.value.problem
    assert raised.value.line == line


READ_INPUTS = {"s.m": ["id", "title", "status", "ts"], "s.p": ["movie_id", "stage"]}
READ = [
    ("selected", "SELECT id, title FROM `s.m`", {"s.m": ("id", "title"), "s.p": ()}),
    (
        "filtered only",
        "SELECT id FROM `s.m` WHERE status = 'x'",
        {"s.m": ("id", "status"), "s.p": ()},
    ),
    (
        "joined on",
        "SELECT m.title, p.stage FROM `s.m` AS m JOIN `s.p` AS p ON p.movie_id = m.id",
        {"s.m": ("id", "title"), "s.p": ("movie_id", "stage")},
    ),
    ("grouped", "SELECT COUNT(*) AS n FROM `s.m` GROUP BY status", {"s.m": ("status",), "s.p": ()}),
    ("star", "SELECT * FROM `s.p`", {"s.m": (), "s.p": ("movie_id", "stage")}),
    (
        "derived table",
        "SELECT x FROM (SELECT id AS x FROM `s.m` WHERE ts > 0) t",
        {"s.m": ("id", "ts"), "s.p": ()},
    ),
    (  # a window table function reads its table as SELECT *: every column counts (conservative)
        "window",
        "SELECT window_start, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE `s.m`, DESCRIPTOR(ts), "
        "INTERVAL '1' MINUTE)) GROUP BY window_start, window_end",
        {"s.m": ("id", "title", "status", "ts"), "s.p": ()},
    ),
]


@pytest.mark.parametrize(("sql", "expected"), [r[1:] for r in READ], ids=[r[0] for r in READ])
def test_columns_read_anywhere_in_the_query(sql: str, expected: dict[str, tuple[str, ...]]) -> None:
    assert columns_read(sql, READ_INPUTS) == expected


@pytest.mark.parametrize("sql", ["SELECT nope FROM `s.m`", "SELECT id FROM `s.x`", "SELEC"])
def test_columns_read_refuses_what_it_cannot_derive(sql: str) -> None:
    with pytest.raises(LineageError):
        columns_read(sql, READ_INPUTS)
