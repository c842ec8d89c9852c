"""`snapshot --where` takes exactly one expression: everything else is refused before PostgreSQL."""

from __future__ import annotations

import pytest

from datamesh.cdc.errors import SnapshotFilterRefused
from datamesh.cdc.snapshot_filter import parse_where
from datamesh.errors import TerminalError

GOOD = [
    "id <= 100",
    "id BETWEEN 10 AND 20 AND status = 'a;b'",  # a `;` inside a string is data
    "id IN (SELECT movie_id FROM public.productions)",
    "now() - updated_at < interval '1 day'",
    "(id < 1) OR val IS NULL",
    "true",
]

REFUSED = [
    # (filter, what the error says)
    ("id <= 100; DROP TABLE public.movies", "`;` ends a statement"),
    ("id <= 100;", "`;` ends a statement"),
    ("DROP TABLE public.movies", "a DROP statement is not an expression"),
    ("DELETE FROM public.movies", "a DELETE statement is not an expression"),
    ("SELECT 1", "a SELECT statement is not an expression"),
    ("VACUUM", "a VACUUM statement is not an expression"),
    ("TRUNCATE public.movies", "a TRUNCATE statement is not an expression"),
    ("id < 1 -- ) OR (true", "comments are not allowed"),
    ("id < 1 /* x */", "comments are not allowed"),
    ("id < 1) OR (true", "Invalid expression"),
    ("1", "1 is not a boolean"),
    ("'yes'", "is not a boolean"),
    ("   ", "the filter is empty"),
]


@pytest.mark.parametrize("where", GOOD)
def test_one_expression_is_accepted(where: str) -> None:
    parse_where(where, "public.movies")


@pytest.mark.parametrize(("where", "problem"), REFUSED, ids=[r[0] for r in REFUSED])
def test_anything_else_is_refused_with_a_named_error(where: str, problem: str) -> None:
    with pytest.raises(SnapshotFilterRefused) as info:
        parse_where(where, "public.movies")
    err = info.value
    assert isinstance(err, TerminalError) and not err.retryable
    assert problem in err.problem
    assert err.where == where and err.table == "public.movies"
    assert "public.movies" in str(err) and 'e.g. --where "id < 1000"' in (err.fix or "")
