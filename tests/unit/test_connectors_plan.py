"""The CDC connector plan is pure: CDC products grouped per (domain, source database)."""

from __future__ import annotations

import dataclasses

from datamesh.control.connectors import ConnectorSpec, plan
from datamesh.specs import load_products
from mesh_assets import DOMAINS_DIR

PRODUCTS = load_products(DOMAINS_DIR)


def test_one_connector_per_source_database() -> None:
    assert plan(PRODUCTS) == [
        ConnectorSpec("content", "content", ("public.artwork",)),
        ConnectorSpec("studio", "studio", ("public.movies", "public.productions", "public.talent")),
    ]
    assert [s.name for s in plan(PRODUCTS)] == ["content-content-cdc", "studio-studio-cdc"]


def test_non_cdc_products_need_no_connector() -> None:
    assert plan([p for p in PRODUCTS if p.kind != "cdc"]) == []


def test_a_second_database_gets_its_own_connector() -> None:
    movies = next(p for p in PRODUCTS if p.id == "studio.movies")
    assert movies.source is not None
    archive = dataclasses.replace(
        movies, name="archive", source=dataclasses.replace(movies.source, database="archive")
    )
    names = [s.name for s in plan([*PRODUCTS, archive])]
    assert names == ["content-content-cdc", "studio-archive-cdc", "studio-studio-cdc"]
