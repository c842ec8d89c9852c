"""Validation before deploy: the query is planned against the inputs; errors name product, SQL
line and column, and nothing is deployed (no job, no output topic, no registered schema)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from datamesh import names
from datamesh.flink import FlinkJobs, ProcessorJob, SqlValidationError
from datamesh.specs.product import DataProduct
from tests.integration.flink.conftest import MOVIE, Topics, product, record

pytestmark = pytest.mark.integration


@pytest.fixture
def movies(domain: str) -> DataProduct:
    return product(
        domain, "movies", "cdc", record("Movie", domain, MOVIE), key=("id",), table="movies"
    )


def _processor(domain: str, movies: DataProduct, sql: str, **kw: object) -> DataProduct:
    return product(domain, "catalog", "processor", inputs=(movies.id,), sql=sql, **kw)  # type: ignore[arg-type]


def _refused(flink: FlinkJobs, topics: Topics, job: ProcessorJob) -> SqlValidationError:
    with pytest.raises(SqlValidationError) as info:
        flink.deploy(job)
    assert flink.status(job.name).state == "NOT_FOUND"
    assert topics.admin.list_topics(timeout=10).topics.get(job.output_topic) is None
    assert names.value_subject(job.output_topic) not in topics.registry.get_subjects()
    return info.value


def test_unknown_column_names_product_line_and_column(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    movies: DataProduct,
    jobs: Callable[..., ProcessorJob],
) -> None:
    sql = f"SELECT id,\n  titel AS name\nFROM `{movies.id}`"
    job = jobs(_processor(domain, movies, sql), [movies])
    err = _refused(flink, topics, job)
    assert (err.product, err.line, err.position, err.column) == (f"{domain}.catalog", 2, 3, "titel")
    assert f"{domain}.catalog" in str(err) and ":2:3:" in str(err) and "titel" in str(err)
    assert "title" in (err.fix or "")  # the fix lists the input's columns


def test_type_mismatch_names_the_expression(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    movies: DataProduct,
    jobs: Callable[..., ProcessorJob],
) -> None:
    sql = f"SELECT id,\n  id + title AS total\nFROM `{movies.id}`"
    err = _refused(flink, topics, jobs(_processor(domain, movies, sql), [movies]))
    assert (err.line, err.position, err.column) == (2, 3, "id + title")
    assert "Cannot apply '+'" in err.problem


def test_declared_schema_mismatch_names_the_column(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    movies: DataProduct,
    jobs: Callable[..., ProcessorJob],
) -> None:
    declared = record("Catalog", domain, [("id", "long"), ("release_year", "string")])
    sql = f"SELECT id, release_year FROM `{movies.id}`"
    p = _processor(domain, movies, sql, schema=declared, key=("id",))
    err = _refused(flink, topics, jobs(p, [movies]))
    assert err.column == "release_year"
    assert "NULL" in err.problem or "int" in err.problem


def test_updating_query_needs_a_key_and_unsupported_sort_is_refused(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    movies: DataProduct,
    jobs: Callable[..., ProcessorJob],
) -> None:
    counts = f"SELECT status, COUNT(*) AS n FROM `{movies.id}` GROUP BY status"
    err = _refused(flink, topics, jobs(_processor(domain, movies, counts), [movies]))
    assert "keyed" in err.problem and "key:" in (err.fix or "")

    sort = f"SELECT id, title FROM `{movies.id}`\nORDER BY title"
    p = _processor(domain, movies, sort, key=("id",))
    err = _refused(flink, topics, jobs(p, [movies]))
    assert err.product == f"{domain}.catalog" and "sort" in err.problem.lower()
