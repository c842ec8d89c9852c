"""`mesh lineage`: the lineage graph of the demo domains and the command's three outputs."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from datamesh import lineage_graph
from datamesh.lineage_graph import build, downstream, upstream, warnings
from datamesh.specs import load_products
from datamesh.specs.product import DataProduct
from mesh_assets import DOMAINS_DIR

STUDIO_OWNER = "team:studio-eng"
CONTENT_OWNERS = ("team:content-platform", "content-data@example.com")


@pytest.fixture(scope="module")
def products() -> tuple[DataProduct, ...]:
    return load_products(DOMAINS_DIR)


@pytest.fixture(scope="module")
def graph(products: tuple[DataProduct, ...]) -> lineage_graph.LineageGraph:
    return build(products)


def _mesh(products: tuple[DataProduct, ...], *argv: str) -> int:
    root = argparse.ArgumentParser(prog="mesh")
    lineage_graph.add_parser(root.add_subparsers(dest="command", required=True))
    return lineage_graph.run(root.parse_args(["lineage", *argv]), products)


def test_title_flows_downstream_across_domains(graph: lineage_graph.LineageGraph) -> None:
    reached = downstream(graph, "studio.movies.title")
    assert {
        "content.localized_titles.title",
        "content.title_catalog.title",
        "content.localized_titles_serving.title",
        "studio.movie_catalog.title",
        "studio.movies_history.title",
    } == set(reached)
    assert reached.index("content.localized_titles.title") < reached.index(
        "content.title_catalog.title"
    )  # nearest first


def test_processor_fields_come_from_their_sql(graph: lineage_graph.LineageGraph) -> None:
    assert upstream(graph, "content.localized_titles.movie_id") == ["studio.movies.id"]
    assert upstream(graph, "content.localized_titles.artwork_url") == ["content.artwork.url"]
    assert upstream(graph, "studio.movie_catalog.stage") == ["studio.productions.stage"]
    assert upstream(graph, "content.title_catalog.artwork_url") == [
        "content.localized_titles.artwork_url",
        "content.artwork.url",
    ]
    # the analytics aggregate sums it, and both its sinks carry the sum
    assert downstream(graph, "studio.productions.budget") == [
        "analytics.productions_started_daily.budget",
        "analytics.productions_daily_serving.budget",
        "analytics.productions_started_daily_table.budget",
    ]
    assert downstream(graph, "studio.productions.stage") == ["studio.movie_catalog.stage"]


def test_cdc_and_changelog_fields_are_roots(graph: lineage_graph.LineageGraph) -> None:
    assert upstream(graph, "studio.movies.title") == []
    assert upstream(graph, "studio.movies_history._op") == []
    assert upstream(graph, "studio.movies_history.title") == ["studio.movies.title"]


def test_product_upstream_reaches_inputs_and_source_tables(
    graph: lineage_graph.LineageGraph,
) -> None:
    reached = set(upstream(graph, "content.title_catalog"))
    assert reached == {
        "content.localized_titles",
        "studio.movies",
        "content.artwork",
        "postgres://studio/public.movies",
        "postgres://content/public.artwork",
    }
    assert "studio.productions" not in reached
    assert downstream(graph, "content.title_catalog") == []


def test_every_node_carries_its_owners(graph: lineage_graph.LineageGraph) -> None:
    assert graph.nodes["content.title_catalog.title"].owners == CONTENT_OWNERS
    assert graph.nodes["studio.movies"].owners == (STUDIO_OWNER,)
    assert graph.nodes["postgres://studio/public.movies"].owners == (STUDIO_OWNER,)


def test_unknown_node_raises_key_error(graph: lineage_graph.LineageGraph) -> None:
    with pytest.raises(KeyError):
        upstream(graph, "studio.nothing")


def test_demo_lineage_is_fully_derivable(graph: lineage_graph.LineageGraph) -> None:
    assert warnings(graph) == []


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT 1 AS movie_id, 'x' AS locale, 'y' AS title, 'z' AS artwork_url",
            "no input column",
        ),
        ("DELETE FROM `studio.movies`", "not derivable"),
        (
            "SELECT m.id AS movie_id, a.locale,\n  m.titel AS title, a.url AS artwork_url\n"
            "FROM `studio.movies` AS m JOIN `content.artwork` AS a ON a.movie_id = m.id",
            "localized_titles.sql:2 ('m' has no column 'titel')",
        ),
        (
            "\n\nSELECT m.id AS movie_id,\n  titel\nFROM `studio.movies` AS m",
            "localized_titles.sql:4 (column 'titel' is in no input",  # leading lines count
        ),
    ],
)
def test_underivable_processor_is_a_warning_not_a_gap(
    products: tuple[DataProduct, ...], sql: str, expected: str
) -> None:
    broken = [replace(p, sql=sql) if p.id == "content.localized_titles" else p for p in products]
    graph = build(broken)
    [message] = warnings(graph)
    assert message.startswith("content.localized_titles: ")
    assert expected in message
    assert "localized_titles.sql" in message  # the file to fix
    assert upstream(graph, "content.localized_titles.title") == []  # the field stays, unlinked
    assert "content.localized_titles.title" not in downstream(graph, "studio.movies.title")
    assert downstream(graph, "content.localized_titles.title") == [
        "content.localized_titles_serving.title",
        "content.title_catalog.title",
    ]
    assert "studio.movies" in upstream(graph, "content.localized_titles")  # product level holds


def test_text_is_a_tree_with_owners(
    products: tuple[DataProduct, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _mesh(products, "--field", "studio.movies.title", "--downstream") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("studio.movies.title (cdc field)")
    assert STUDIO_OWNER in lines[0]
    assert "upstream:" not in out
    child = next(line for line in lines if "content.localized_titles.title" in line)
    grandchild = next(line for line in lines if "content.title_catalog.title" in line)
    assert len(grandchild) - len(grandchild.lstrip()) > len(child) - len(child.lstrip())
    assert all(owner in grandchild for owner in CONTENT_OWNERS)


def test_text_shows_both_directions_by_default(
    products: tuple[DataProduct, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _mesh(products, "content.localized_titles", "--field", "title") == 0
    out = capsys.readouterr().out
    assert "upstream:\n  studio.movies.title" in out
    assert "downstream:" in out and "content.title_catalog.title" in out


def test_json_has_nodes_and_edges(
    products: tuple[DataProduct, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _mesh(products, "content.title_catalog", "--upstream", "--format", "json") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["root"] == "content.title_catalog"
    ids = {node["id"] for node in document["nodes"]}
    assert {"studio.movies", "content.artwork", "postgres://studio/public.movies"} <= ids
    assert {"from": "studio.movies", "to": "content.localized_titles"} in document["edges"]
    owners = {node["id"]: node["owners"] for node in document["nodes"]}
    assert owners["studio.movies"] == [STUDIO_OWNER]
    assert document["warnings"] == []


def test_dot_is_a_digraph_with_the_edges(
    products: tuple[DataProduct, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _mesh(products, "content.title_catalog", "--format", "dot") == 0
    out = capsys.readouterr().out.strip()
    assert re.fullmatch(r"digraph \w+ \{\n.*\n\}", out, re.S)
    assert '"content.localized_titles" -> "content.title_catalog";' in out
    assert '"postgres://content/public.artwork" -> "content.artwork";' in out
    assert out.count("{") == out.count("}")


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["studio.movies", "--field", "titel"], "'title'"),
        (["--field", "studio.movies.titel"], "'studio.movies.title'"),
        (["studio.movie"], "'studio.movies'"),
    ],
)
def test_unknown_product_or_field_exits_1_with_a_suggestion(
    products: tuple[DataProduct, ...],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    suggestion: str,
) -> None:
    assert _mesh(products, *argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: no ")
    assert f"did you mean {suggestion}?" in captured.err


def test_a_product_or_full_field_is_required(
    products: tuple[DataProduct, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _mesh(products) == 1
    assert "--field <domain>.<product>.<field>" in capsys.readouterr().err


def test_field_of_another_product_is_refused(
    products: tuple[DataProduct, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _mesh(products, "studio.movie_catalog", "--field", "studio.movies.title") == 1
    assert "is not a field of studio.movie_catalog" in capsys.readouterr().err


def test_directions_are_mutually_exclusive(products: tuple[DataProduct, ...]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _mesh(products, "studio.movies", "--upstream", "--downstream")
    assert exit_info.value.code == 2


def test_typed_processor_lineage_comes_from_its_template(
    products: tuple[DataProduct, ...],
) -> None:
    catalog = next(p for p in products if p.id == "studio.movie_catalog")
    movies = next(p for p in products if p.id == "studio.movies")
    assert movies.value_schema is not None
    fields = [
        {**f, "name": "movie_title"} if f["name"] == "title" else f
        for f in movies.value_schema["fields"]
    ]
    renamed = replace(
        catalog,
        name="renamed_movies",
        inputs=("studio.movies",),
        sql=None,
        sql_file=None,
        processor={"type": "rename", "columns": {"title": "movie_title"}},
        value_schema={**movies.value_schema, "fields": fields},
    )
    graph = build([*products, renamed])
    assert warnings(graph) == []
    assert upstream(graph, "studio.renamed_movies.movie_title") == ["studio.movies.title"]
    assert "studio.renamed_movies.movie_title" in downstream(graph, "studio.movies.title")


def test_the_mesh_command_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    from datamesh import cli

    code = cli.main(
        ["lineage", "--field", "studio.movies.title", "--downstream", "--format", "json"]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert "content.title_catalog.title" in json.dumps(out)


def test_mesh_validate_warns_about_a_processor_without_derivable_lineage(
    domains_copy: Callable[[], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from datamesh import cli
    from mesh_assets import DOMAINS_ENV

    domains = domains_copy()
    (domains / "studio" / "movie_catalog.sql").write_text(
        "SELECT 1 AS movie_id, 'x' AS title, 'y' AS status, 'z' AS stage, 'w' AS location\n"
        "FROM `studio.movies`\n"
    )
    monkeypatch.setenv(DOMAINS_ENV, str(domains))
    assert cli.main(["validate"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "studio.movie_catalog" in err and "movie_catalog.sql" in err


def test_mesh_validate_names_the_file_line_and_reason_of_an_underivable_query(
    domains_copy: Callable[[], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from datamesh import cli
    from mesh_assets import DOMAINS_ENV

    domains = domains_copy()
    (domains / "studio" / "movie_catalog.sql").write_text(
        "SELECT m.id AS movie_id, m.title, m.status,\n"
        "  p.stage, p.location\n"
        "FROM `studio.movies` AS m\n"
        "LEFT JOIN studio.productions AS p ON p.movie_id = m.id\n"  # not quoted: another table
    )
    monkeypatch.setenv(DOMAINS_ENV, str(domains))
    assert cli.main(["validate"]) == 0  # lineage is informative: the declarations stay valid
    [warning] = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert warning.startswith("warning: studio.movie_catalog: field lineage not derivable from ")
    assert warning.endswith(
        "movie_catalog.sql:4 (reads 'studio.productions', which is not an input)"
    )
