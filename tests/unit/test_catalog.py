"""``mesh catalog``: ranked search over the demo declarations, product cards, CLI output."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench.catalog_bench import generate, queries
from datamesh.catalog import add_parser, run
from datamesh.catalog.ranking import index, search, tokens
from datamesh.specs import load_products
from datamesh.specs.product import DataProduct, Slo, TopicSettings
from datamesh.specs.sink_layout import CHANGELOG_FIELDS as CHANGELOG
from datamesh.specs.sink_layout import effective_schema
from mesh_assets import DOMAINS_DIR

RESULT_KEYS = {
    "id", "kind", "owners", "access", "tier", "topic", "table", "freshness_s", "health",
    "score", "matched_words", "matched",
}  # fmt: skip
CARD_KEYS = {
    "id", "domain", "name", "kind", "description", "owners", "access", "allow", "tier", "key",
    "fields",
    "inputs", "consumes", "outputs", "topic", "schema_subject", "table", "freshness", "max_lag",
    "tags", "declared_in", "health",
}  # fmt: skip


@pytest.fixture(autouse=True)
def no_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads health from ``DAGSTER_HOME``: an empty one here (health ``unknown``)."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "no-dagster-home"))


@pytest.fixture(scope="module")
def demo() -> tuple[DataProduct, ...]:
    return load_products(DOMAINS_DIR)


def _ids(products: Sequence[DataProduct], query: str, limit: int = 10) -> list[str]:
    return [r.id for r in search(index(products), query, limit)]


def _product(domain: str, name: str, description: str, fields: list[str]) -> DataProduct:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [{"name": f, "type": "long"} for f in fields],
    }
    return DataProduct(
        domain=domain,
        name=name,
        kind="processor",
        description=description,
        owners=(f"team:{domain}",),
        access="internal",
        tier=2,
        slo=Slo(),
        key=(),
        inputs=(),
        value_schema=schema,
        topic=TopicSettings(1, 1, 3_600_000, "delete"),
        compatibility="BACKWARD",
        declared_in=Path(f"/tmp/catalog/{domain}/products.yaml"),
    )


def _cli(products: Sequence[DataProduct], *argv: str) -> int:
    root = argparse.ArgumentParser(prog="mesh")
    add_parser(root.add_subparsers(dest="command", required=True))
    return run(root.parse_args(["catalog", *argv]), products)


def test_tokens_split_on_non_alphanumerics_in_lower_case() -> None:
    assert tokens("movie_id Title-2, team:studio-eng") == [
        "movie", "id", "title", "2", "team", "studio", "eng",
    ]  # fmt: skip


def test_a_word_only_in_a_field_doc_finds_the_product(demo: tuple[DataProduct, ...]) -> None:
    # "Working title." is the doc of studio.movies' `title` (movies.avsc) and nothing else.
    results = search(index(demo), "working", 10)
    assert [r.id for r in results] == ["studio.movies", "studio.movies_history"]
    assert results[0].matched == ("doc of title",)


def test_a_sink_is_found_by_its_inputs_fields(demo: tuple[DataProduct, ...]) -> None:
    assert "content.title_catalog" in _ids(demo, "artwork_url")


def test_sinks_take_their_inputs_schema(demo: tuple[DataProduct, ...]) -> None:
    by_id = {p.id: p for p in demo}
    history = effective_schema(by_id["studio.movies_history"], by_id) or {}
    names = [f["name"] for f in history["fields"]]
    assert names == [*by_id["studio.movies"].field_names(), *(f["name"] for f in CHANGELOG)]
    catalog = effective_schema(by_id["content.title_catalog"], by_id)
    assert catalog == by_id["content.localized_titles"].value_schema


def test_an_owner_finds_that_domains_products_first(demo: tuple[DataProduct, ...]) -> None:
    content = sorted(p.id for p in demo if p.domain == "content")
    found = _ids(demo, "team:content-platform")
    assert sorted(found[: len(content)]) == content


def test_the_exact_name_ranks_first(demo: tuple[DataProduct, ...]) -> None:
    assert _ids(demo, "movies")[0] == "studio.movies"
    assert _ids(demo, "localized_titles")[:2] == [
        "content.localized_titles",
        "content.localized_titles_serving",
    ]
    assert _ids(demo, "studio.movies")[0] == "studio.movies"


def test_name_beats_field_beats_description() -> None:
    products = [
        _product("a", "ledger", "Every invoice, invoiced twice: invoice invoice.", ["id"]),
        _product("b", "payments", "Money in.", ["invoice_id"]),
        _product("c", "invoice_lines", "Lines.", ["id"]),
    ]
    assert _ids(products, "invoice") == ["c.invoice_lines", "b.payments", "a.ledger"]


def test_more_matched_words_rank_higher() -> None:
    products = [
        _product("a", "title_only", "x", ["id"]),
        _product("b", "other", "The title and its url.", ["id"]),
    ]
    results = search(index(products), "title url", 10)
    assert [(r.id, r.matched_words) for r in results] == [("b.other", 2), ("a.title_only", 1)]


def test_limit_and_no_match(demo: tuple[DataProduct, ...]) -> None:
    assert len(search(index(demo), "studio", 2)) == 2
    assert search(index(demo), "zzz-nothing", 10) == []


def test_search_json_has_the_documented_keys(
    demo: tuple[DataProduct, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(demo, "search", "movies", "--json", "--limit", "3") == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert out["query"] == "movies" and len(out["results"]) == 3
    first = out["results"][0]
    assert set(first) == RESULT_KEYS
    assert first["id"] == "studio.movies" and first["topic"] == "studio.public.movies"
    assert (first["freshness_s"], first["health"]) == (300, "unknown")


def test_search_text_is_a_table(
    demo: tuple[DataProduct, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(demo, "search", "working") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["PRODUCT", "KIND"]
    assert lines[1].startswith("studio.movies ") and "doc of title" in lines[1]
    assert _cli(demo, "search", "zzz") == 0
    assert "no product matches 'zzz'" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        _cli(demo, "search", "studio", "--limit", "0")


def test_show_of_a_sink_lists_its_input_and_table(
    demo: tuple[DataProduct, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(demo, "show", "content.localized_titles_serving") == 0
    text = capsys.readouterr().out
    assert "inputs       content.localized_titles" in text
    assert "table        serving.public.localized_titles" in text
    assert "declared in  mesh_assets/domains/content/products.yaml" in text
    assert _cli(demo, "show", "title_catalog", "--json") == 0
    card = json.loads(capsys.readouterr().out)
    assert set(card) == CARD_KEYS
    assert (card["inputs"], card["table"]) == (
        ["content.localized_titles"],
        "content.title_catalog",
    )
    assert "artwork_url" in [f["name"] for f in card["fields"]]


def test_show_lists_fields_with_docs_consumers_and_slos(
    demo: tuple[DataProduct, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(demo, "show", "studio.movies", "--json") == 0
    card = json.loads(capsys.readouterr().out)
    assert {"name": "title", "type": "string", "nullable": False, "doc": "Working title."} in (
        card["fields"]
    )
    assert "content.localized_titles" in card["outputs"]
    assert (card["freshness"], card["max_lag"]) == ("5m", 10000)
    assert card["schema_subject"] == "studio.public.movies-value"


def test_show_names_the_domains_an_internal_product_allows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    shared = replace(_product("studio", "productions", "x", ["id"]), allow=("content", "search"))
    assert _cli([shared, _product("studio", "budgets", "y", ["id"])], "show", "productions") == 0
    assert "access       internal (also read by content, search)" in capsys.readouterr().out
    assert _cli([shared], "show", "productions", "--json") == 0
    assert json.loads(capsys.readouterr().out)["allow"] == ["content", "search"]
    assert _cli([shared, _product("studio", "budgets", "y", ["id"])], "show", "budgets") == 0
    assert "access       internal\n" in capsys.readouterr().out


def test_unknown_product_exits_1_with_a_suggestion(
    demo: tuple[DataProduct, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(demo, "show", "studio.movie") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no product 'studio.movie'" in captured.err
    assert "did you mean 'studio.movies'" in captured.err


def test_a_name_in_two_domains_is_ambiguous(capsys: pytest.CaptureFixture[str]) -> None:
    products = [_product("a", "orders", "x", ["id"]), _product("b", "orders", "y", ["id"])]
    assert _cli(products, "show", "orders") == 1
    assert "'a.orders' or 'b.orders'" in capsys.readouterr().err
    assert _cli(products, "show", "b.orders") == 0


def test_search_over_1000_products_is_fast() -> None:
    products = generate(1000)
    idx = index(products)
    took = []
    for query in queries(products, 50):
        start = time.perf_counter()
        search(idx, query, 10)
        took.append(time.perf_counter() - start)
    assert statistics.median(took) < 0.2  # about 2 ms here; loose for a loaded 2-core machine


def test_the_mesh_command_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    from datamesh import cli

    assert cli.main(["catalog", "search", "artwork", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["results"][0]["id"] == "content.artwork"


def test_health_is_the_last_check_results_in_the_instance(
    demo: tuple[DataProduct, ...], tmp_path: Path
) -> None:
    import dagster as dg

    from mesh_assets.cli_entry import catalog_health as health

    by_id = {p.id: p for p in demo}
    movies, productions = by_id["studio.movies"], by_id["studio.productions"]
    assert health([movies], home=tmp_path / "none") == {"studio.movies": "unknown"}
    home = tmp_path / "dagster"
    home.mkdir()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for check, passed in (("freshness", True), ("lag", False), ("lag", True)):
            instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(
                    asset_key=dg.AssetKey(["studio", "movies"]), check_name=check, passed=passed
                )
            )
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(["studio", "productions"]), check_name="lag", passed=False
            )
        )
    assert health([movies, productions], home=home) == {
        "studio.movies": "ok",  # lag failed, then passed: the last result counts
        "studio.productions": "failing: lag",
    }
