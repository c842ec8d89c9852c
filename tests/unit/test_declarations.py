"""Declaration loading: the demo is valid, and every bad input names file, field, line and fix."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from datamesh.errors import SpecError
from datamesh.specs import load_products
from mesh_assets import DOMAINS_DIR


def test_demo_domains_load() -> None:
    products = load_products(DOMAINS_DIR)
    ids = {p.id for p in products}
    assert len(products) >= 5
    assert {"studio", "content"} <= {p.domain for p in products}
    cross = [p for p in products for i in p.inputs if i.split(".")[0] != p.domain]
    assert cross, "the demo must have a cross-domain dependency"
    assert all(i in ids for p in products for i in p.inputs)


def test_products_are_frozen() -> None:
    product = load_products(DOMAINS_DIR)[0]
    with pytest.raises(AttributeError):
        product.name = "other"  # type: ignore[misc]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"test setup: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


BAD_CASES = [
    # (id, file, old, new, field regex, problem regex, fix regex, line needle)
    (
        "unknown input",
        "studio/products.yaml",
        "inputs: [studio.movies, studio.productions]",
        "inputs: [studio.movies, studio.productionz]",
        r"products\[2\]\.inputs\[1\]",
        "unknown input 'studio.productionz'",
        "did you mean 'studio.productions'",
        "productionz",
    ),
    (
        "bad owner",
        "studio/products.yaml",
        "owners: [team:studio-eng]",
        "owners: [studio eng]",
        r"owners",
        "neither an email address nor team:",
        "change the value",
        "owners:",
    ),
    (
        "bad product owner",
        "content/products.yaml",
        "    tier: 2\n    slo: {freshness: 30m}",
        "    tier: 2\n    owners: ['Team:X']\n    slo: {freshness: 30m}",
        r"products\[0\]\.owners",
        "team:",
        "change the value",
        "Team:X",
    ),
    (
        "duplicate product",
        "studio/products.yaml",
        "  - name: productions",
        "  - name: movies",
        r"products\[1\]\.name",
        "declared twice",
        "rename",
        None,
    ),
    (
        "self input",
        "studio/products.yaml",
        "inputs: [studio.movies, studio.productions]",
        "inputs: [studio.movies, studio.movie_catalog]",
        r"products\[2\]\.inputs\[1\]",
        "lists itself",
        "remove it",
        "studio.movie_catalog]",
    ),
    (
        "missing field",
        "studio/products.yaml",
        "    kind: cdc\n    description: Every movie the studio works on, captured from the "
        "studio database.\n",
        "    kind: cdc\n",
        r"products\[0\]\.description",
        "Field required",
        "add `description:`",
        None,
    ),
    (
        "misspelt field",
        "studio/products.yaml",
        "    kind: cdc\n    description: Every movie",
        "    kind: cdc\n    descripton: Every movie",
        r"products\[0\]\.descripton",
        "`descripton`",
        "`description`?",
        "descripton:",
    ),
    (
        "unknown field",
        "studio/products.yaml",
        "    tier: 1\n    slo: {freshness: 5m, max",
        "    tier: 1\n    sla: 3\n    slo: {freshness: 5m, max",
        r"products\[0\]\.sla",
        "Extra inputs",
        "remove `sla`",
        "sla: 3",
    ),
    (
        "bad kind",
        "studio/products.yaml",
        "kind: processor",
        "kind: procesor",
        r"products\[2\]\.kind",
        "cdc",
        "change the value",
        "procesor",
    ),
    (
        "bad duration",
        "studio/products.yaml",
        "freshness: 5m",
        "freshness: five minutes",
        r"products\[0\]\.slo\.freshness",
        "not a duration",
        "change the value",
        "five minutes",
    ),
    (
        "unknown slo field",
        "studio/products.yaml",
        "slo: {freshness: 5m, max_lag: 10000}",
        "slo: {freshness: 5m, max_lagg: 10000}",
        r"products\[0\]\.slo\.max_lagg",
        "Extra inputs",
        "remove `max_lagg`",
        "max_lagg",
    ),
    (
        "bad latency duration",
        "studio/products.yaml",
        "slo: {freshness: 5m, max_lag: 10000}",
        "slo: {freshness: 5m, latency_p99: two seconds}",
        r"products\[0\]\.slo\.latency_p99",
        "not a duration",
        "change the value",
        "two seconds",
    ),
    (
        "latency on a processor",
        "studio/products.yaml",
        "    slo: {freshness: 10m}",
        "    slo: {freshness: 10m, latency_p99: 2s}",
        r"products\[2\]\.slo\.latency_p99",
        "cdc products",
        "declare it on the cdc product",
        "latency_p99: 2s",
    ),
    (
        "key not in schema",
        "studio/products.yaml",
        "key: [movie_id]",
        "key: [movie_key]",
        r"products\[2\]\.key\[0\]",
        "not in the schema",
        "use one of",
        "movie_key",
    ),
    (
        "consumed field unknown",
        "content/products.yaml",
        "studio.movies: [id, title]",
        "studio.movies: [id, titel]",
        r"consumes\.studio\.movies\[1\]",
        "no field 'titel'",
        "did you mean 'title'",
        "titel",
    ),
    (
        "colliding topics",
        "studio/products.yaml",
        "  - name: movie_catalog",
        "  - name: public_movies",
        r"products\[2\]\.name",
        "collides with 'studio.public.movies'",
        "rename",
        "public_movies",
    ),
    (
        "sink of sink",
        "content/products.yaml",
        "inputs: [content.localized_titles]",
        "inputs: [content.localized_titles, studio.movies]",
        r"products\[2\]\.inputs",
        "exactly one",
        "list one input",
        None,
    ),
    (
        "sink of a sink",
        "content/products.yaml",
        "inputs: [content.localized_titles]",
        "inputs: [studio.movies_history]",
        r"products\[2\]\.inputs\[0\]",
        "a sink reads a Kafka-backed product; studio.movies_history is iceberg_sink",
        "point the sink at a cdc or processor product",
        "studio.movies_history",
    ),
    (
        "sink of an unknown input",
        "content/products.yaml",
        "inputs: [content.localized_titles]",
        "inputs: [content.localized_titlez]",
        r"products\[2\]\.inputs\[0\]",
        "unknown input 'content.localized_titlez'",
        "did you mean 'content.localized_titles'",
        "localized_titlez",
    ),
    (
        "partition by an unknown column",
        "studio/products.yaml",
        'partition_by: ["day(_event_time)"]',
        'partition_by: ["day(released)"]',
        r"products\[3\]\.sink\.partition_by\[0\]",
        "unknown column 'released'",
        "partition by a column",
        "day(released)",
    ),
    (
        "impossible partition transform",
        "studio/products.yaml",
        'partition_by: ["day(_event_time)"]',
        'partition_by: ["day(title)"]',
        r"products\[3\]\.sink\.partition_by\[0\]",
        "cannot apply to a string column",
        "transform its type supports",
        "day(title)",
    ),
    (
        "postgres_sink without a key",
        "content/products.yaml",
        "    key: [movie_id, locale]\n",
        "",
        r"products\[3\]\.key",
        "a postgres_sink writes by key",
        "declare `key:",
        None,
    ),
    (
        "sink settings on a processor",
        "studio/products.yaml",
        "    topic: {cleanup_policy: compact}",
        "    sink: {mode: append}\n    topic: {cleanup_policy: compact}",
        r"products\[2\]\.sink",
        "only sinks",
        "remove `sink:`",
        None,
    ),
    (
        "unknown sink mode",
        "studio/products.yaml",
        "sink: {mode: append,",
        "sink: {mode: merge,",
        r"products\[3\]\.sink\.mode",
        "'upsert' or 'append'",
        "change the value",
        None,
    ),
    (
        "cdc without source",
        "studio/products.yaml",
        "    source: {database: studio, table: public.productions}\n",
        "",
        r"products\[1\]\.source",
        "needs a source",
        "add `source:",
        None,
    ),
    (
        "yaml syntax",
        "studio/products.yaml",
        "owners: [team:studio-eng]",
        "owners: [team:studio-eng",
        r"\(yaml\)",
        "not valid YAML",
        "fix the syntax",
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "file", "old", "new", "field", "problem", "fix", "needle"),
    BAD_CASES,
    ids=[c[0] for c in BAD_CASES],
)
def test_bad_declaration_names_file_field_line_and_fix(
    domains_copy: Callable[[], Path],
    case: str,
    file: str,
    old: str,
    new: str,
    field: str,
    problem: str,
    fix: str,
    needle: str | None,
) -> None:
    root = domains_copy()
    _edit(root / file, old, new)
    with pytest.raises(SpecError) as info:
        load_products(root)
    err = info.value
    assert err.file == str(root / file)
    assert re.search(field, err.field), err.field
    assert problem in err.problem, err.problem
    assert fix in (err.fix or ""), err.fix
    assert err.line is not None
    if needle:
        assert err.line == _line_of(root / file, needle), str(err)
    assert f"{root / file}:{err.line}" in str(err)


def test_invalid_avro_names_the_schema_file(domains_copy: Callable[[], Path]) -> None:
    root = domains_copy()
    (root / "studio" / "movies.avsc").write_text(
        '{"type": "record", "name": "Movie", "fields": [{"name": "id", "type": "lng"}]}'
    )
    with pytest.raises(SpecError) as info:
        load_products(root)
    assert info.value.file.endswith("studio/movies.avsc")
    assert "not a valid Avro schema" in info.value.problem
    assert "lng" in info.value.problem
    assert info.value.line == _line_of(root / "studio" / "products.yaml", "schema: movies.avsc")


def test_avro_that_is_not_json(domains_copy: Callable[[], Path]) -> None:
    root = domains_copy()
    (root / "content" / "artwork.avsc").write_text('{"type": "record",')
    with pytest.raises(SpecError, match="not JSON"):
        load_products(root)


def test_missing_schema_file(domains_copy: Callable[[], Path]) -> None:
    root = domains_copy()
    (root / "content" / "artwork.avsc").unlink()
    with pytest.raises(SpecError, match=r"'artwork\.avsc' does not exist"):
        load_products(root)


def test_domain_must_match_its_folder(domains_copy: Callable[[], Path]) -> None:
    root = domains_copy()
    _edit(root / "content" / "products.yaml", "domain: content", "domain: studio")
    with pytest.raises(SpecError, match="name the folder after the domain"):
        load_products(root)


def test_sink_inherits_its_input_schema() -> None:
    from datamesh.specs.sink_layout import effective_schema

    products = load_products(DOMAINS_DIR)
    by_id = {p.id: p for p in products}
    sink = by_id["content.title_catalog"]
    assert sink.value_schema is None
    assert effective_schema(sink, by_id) == by_id["content.localized_titles"].value_schema


def test_cycle_across_domains(domains_copy: Callable[[], Path]) -> None:
    root = domains_copy()
    _edit(
        root / "studio" / "products.yaml",
        "inputs: [studio.movies, studio.productions]",
        "inputs: [studio.movies, studio.productions, content.localized_titles]",
    )
    _edit(
        root / "content" / "products.yaml",
        "inputs: [studio.movies, content.artwork]",
        "inputs: [studio.movies, content.artwork, studio.movie_catalog]",
    )
    _edit(
        root / "content" / "products.yaml",
        "studio.movies: [id, title]",
        "studio.movies: [id, title]\n      studio.movie_catalog: [title]",
    )
    with pytest.raises(SpecError) as info:
        load_products(root)
    assert "cycle" in info.value.problem
    assert "content.localized_titles" in info.value.problem
    assert "studio.movie_catalog" in info.value.problem
    assert info.value.line is not None


def test_processor_needs_sql_or_a_typed_processor(domains_copy: Callable[[], Path]) -> None:
    root = domains_copy()
    _edit(root / "studio" / "products.yaml", "    sql: movie_catalog.sql\n", "")
    with pytest.raises(SpecError) as info:
        load_products(root)
    assert info.value.field == "products[2].sql"
    assert "typed `processor:" in (info.value.fix or "")


def test_typed_processor_and_flink_settings_load(domains_copy: Callable[[], Path]) -> None:
    root = domains_copy()
    _edit(
        root / "studio" / "products.yaml",
        "    inputs: [studio.movies, studio.productions]\n    sql: movie_catalog.sql\n",
        "    inputs: [studio.movies]\n"
        "    processor: {type: filter, where: \"status = 'released'\"}\n"
        "    flink: {parallelism: 2, delivery: exactly-once}\n",
    )
    _edit(
        root / "studio" / "products.yaml",
        "      studio.productions: [movie_id, stage, location]\n",
        "",
    )
    catalog = next(p for p in load_products(root) if p.id == "studio.movie_catalog")
    assert catalog.processor == {"type": "filter", "where": "status = 'released'"}
    assert catalog.flink["parallelism"] == 2 and catalog.flink["delivery"] == "exactly-once"


def test_bad_flink_setting_is_refused(domains_copy: Callable[[], Path]) -> None:
    root = domains_copy()
    _edit(
        root / "studio" / "products.yaml",
        "    sql: movie_catalog.sql\n",
        "    sql: movie_catalog.sql\n    flink: {delivery: twice}\n",
    )
    with pytest.raises(SpecError) as info:
        load_products(root)
    assert info.value.field == "products[2].flink.delivery"
