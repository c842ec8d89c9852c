"""`snapshot --where` takes exactly one expression: everything else is refused before PostgreSQL;
what PostgreSQL says while planning it is reported as what it is."""

from __future__ import annotations

import psycopg2
import psycopg2.errors as pg  # one class per SQLSTATE
import pytest

from datamesh.cdc.errors import SnapshotFilterRefused, SourceUnavailable
from datamesh.cdc.snapshot_filter import check_failure, parse_where
from datamesh.errors import MeshError, TerminalError

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


@pytest.mark.parametrize(
    ("error", "kind", "says"),
    [
        (pg.UndefinedColumn('column "nope" does not exist'), SnapshotFilterRefused, "nope"),
        (pg.InvalidTextRepresentation("invalid input syntax"), SnapshotFilterRefused, "valid"),
        (pg.ReadOnlySqlTransaction("cannot execute INSERT"), SnapshotFilterRefused, "INSERT"),
        (pg.QueryCanceled("canceling statement"), SnapshotFilterRefused, "did not plan it"),
        (pg.InsufficientPrivilege("permission denied"), TerminalError, "may not read"),
        (psycopg2.OperationalError("server closed the connection"), SourceUnavailable, "failed"),
        (pg.DiskFull("could not extend file"), TerminalError, "may be fine"),
    ],
)
def test_a_failed_check_is_reported_as_what_it_is(
    error: psycopg2.Error, kind: type[MeshError], says: str
) -> None:
    """Only PostgreSQL's verdicts on the filter blame the filter; a lost connection is
    transient (the request can be made again), anything else is said as it is."""
    found = check_failure(error, "public.movies", "id < 10")
    assert type(found) is kind, found
    text = f"{found} {found.fix}"
    assert says in text
    if kind is not SnapshotFilterRefused:
        assert "refused" not in str(found)
