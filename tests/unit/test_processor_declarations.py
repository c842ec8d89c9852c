"""Typed processors are checked at load: unknown options, arity and the columns they name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from datamesh.errors import SpecError
from datamesh.specs import load_products

TWO_INPUTS = "    inputs: [studio.movies, studio.productions]\n    sql: movie_catalog.sql\n"
CONSUMES = "      studio.productions: [movie_id, stage, location]\n"


def _declare(root: Path, inputs: str, processor: str) -> Path:
    """movie_catalog as a typed processor over ``inputs``; returns the edited file."""
    file = root / "studio" / "products.yaml"
    text = file.read_text()
    assert TWO_INPUTS in text and CONSUMES in text, "test setup: the demo changed"
    text = text.replace(TWO_INPUTS, f"    inputs: [{inputs}]\n    processor: {processor}\n")
    if "studio.productions" not in inputs:
        text = text.replace(CONSUMES, "")
    file.write_text(text)
    return file


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, start=1) if needle in line)


def _error(root: Path) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_products(root)
    return info.value


BAD = [
    # (id, inputs, processor, field, problem, fix)
    (
        "misspelt option",
        "studio.movies",
        '{type: filter, wher: "id > 1"}',
        "products[2].processor.wher",
        "unknown option `wher` of a filter processor",
        "did you mean `where`?",
    ),
    (
        "filter over two inputs",
        "studio.movies, studio.productions",
        '{type: filter, where: "id > 1"}',
        "products[2].inputs",
        "a filter processor reads exactly one input, found 2",
        "`type: union` or `type: join`",
    ),
    (
        "unknown type",
        "studio.movies",
        '{type: filtr, where: "id > 1"}',
        "products[2].processor.type",
        "unknown processor type 'filtr'",
        "filter, projection, rename, union, join, window, sql",
    ),
    (
        "missing option",
        "studio.movies",
        "{type: projection}",
        "products[2].processor.columns",
        "Field required",
        "add `columns:`",
    ),
    (
        "option of another type",
        "studio.movies",
        '{type: union, where: "id > 1"}',
        "products[2].processor.where",
        "unknown option `where` of a union processor (it takes no options)",
        "remove `where`",
    ),
    (
        "bad window size",
        "studio.movies",
        '{type: window, time: updated_at, size: 1x, aggregates: {n: "COUNT(*)"}}',
        "products[2].processor.size",
        "not a duration",
        "change the value",
    ),
    (
        "window over an unknown column",
        "studio.movies",
        "{type: window, time: updated_at, size: 1m, group_by: [stauts], "
        'aggregates: {n: "COUNT(*)"}}',
        "products[2].processor.group_by[0]",
        "studio.movies has no column 'stauts'",
        "did you mean `status`?",
    ),
    (
        "rename of an unknown column",
        "studio.movies",
        "{type: rename, columns: {titel: movie_title}}",
        "products[2].processor.columns.titel",
        "studio.movies has no column 'titel'",
        "did you mean `title`?",
    ),
    (
        "union of one input",
        "studio.movies",
        "{type: union}",
        "products[2].inputs",
        "a union combines two or more inputs, found 1",
        "add the inputs",
    ),
    (
        "union of different columns",
        "studio.movies, studio.productions",
        "{type: union}",
        "products[2].inputs[1]",
        "a union pairs columns by position",
        "same columns in the same order",
    ),
    (
        "join of one input",
        "studio.movies",
        '{type: join, "on": "movies.id = movies.id", select: [movies.id]}',
        "products[2].inputs",
        "a join reads exactly two inputs, found 1",
        "list two inputs",
    ),
    (
        "join on an unknown column",
        "studio.movies, studio.productions",
        '{type: join, on: "productions.movie_idd = movies.id", select: [movies.id]}',
        "products[2].processor.on",
        "studio.productions has no column 'movie_idd'",
        "did you mean `movie_id`?",
    ),
    (
        "join on an unknown alias",
        "studio.movies, studio.productions",
        '{type: join, on: "p.movie_id = m.id", select: [m.id]}',
        "products[2].processor.on",
        "`on` refers to p.movie_id but the inputs are movies (studio.movies)",
        "left_alias",
    ),
    (
        "misspelt join option",
        "studio.movies, studio.productions",
        '{type: join, on: "productions.movie_id = movies.id", select: [movies.id], hw: left}',
        "products[2].processor.hw",
        "unknown option `hw` of a join processor",
        "did you mean `how`?",
    ),
]


@pytest.mark.parametrize(
    ("case", "inputs", "processor", "field", "problem", "fix"), BAD, ids=[c[0] for c in BAD]
)
def test_bad_typed_processor_names_file_line_field_and_fix(
    domains_copy: Callable[[], Path],
    case: str,
    inputs: str,
    processor: str,
    field: str,
    problem: str,
    fix: str,
) -> None:
    root = domains_copy()
    file = _declare(root, inputs, processor)
    err = _error(root)
    assert err.field == field, str(err)
    assert problem in err.problem, str(err)
    assert fix in (err.fix or ""), str(err)
    assert err.file == str(file)
    needle = "    inputs: [" if field.endswith("inputs") or "inputs[" in field else "processor:"
    assert err.line == _line_of(file, needle), str(err)


GOOD = [
    ("studio.movies", '{type: filter, where: "id > 1"}'),
    ("studio.movies", "{type: projection, columns: [id, title], where: \"status = 'x'\"}"),
    ("studio.movies", "{type: rename, columns: {title: movie_title}}"),
    ("studio.movies, studio.movies", "{type: union}"),
    (
        "studio.movies, studio.productions",
        '{type: join, how: left, on: "p.movie_id = m.id", select: [m.id, p.stage], '
        "left_alias: m, right_alias: p}",
    ),
    (
        "studio.movies",
        "{type: window, time: updated_at, size: 1m, delay: 5s, group_by: [status], "
        'aggregates: {n: "COUNT(*)"}}',
    ),
]


@pytest.mark.parametrize(("inputs", "processor"), GOOD)
def test_good_typed_processors_load(
    domains_copy: Callable[[], Path], inputs: str, processor: str
) -> None:
    root = domains_copy()
    _declare(root, inputs, processor)
    product = next(p for p in load_products(root) if p.id == "studio.movie_catalog")
    assert product.processor is not None and product.processor["type"] in processor


def test_a_typed_processor_with_a_sql_file_is_refused(domains_copy: Callable[[], Path]) -> None:
    root = domains_copy()
    file = root / "studio" / "products.yaml"
    file.write_text(
        file.read_text().replace(TWO_INPUTS, f"{TWO_INPUTS}    processor: {{type: union}}\n")
    )
    err = _error(root)
    assert err.field == "products[2].sql" and "would be ignored" in err.problem, str(err)
    assert err.line == _line_of(file, "sql: movie_catalog.sql")


def test_unquoted_yaml_on_key_is_the_join_condition(domains_copy: Callable[[], Path]) -> None:
    """PyYAML reads `on:` as the boolean true; a join still gets its condition."""
    root = domains_copy()
    _declare(
        root,
        "studio.movies, studio.productions",
        '{type: join, on: "productions.movie_id = movies.id", select: [movies.id]}',
    )
    product = next(p for p in load_products(root) if p.id == "studio.movie_catalog")
    assert product.processor is not None
    assert product.processor["on"] == "productions.movie_id = movies.id"
