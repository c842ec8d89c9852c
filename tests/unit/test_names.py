"""Derived names: documented formats, and no collisions across the demo."""

from __future__ import annotations

from datamesh import names
from datamesh.specs import load_products
from mesh_assets import DOMAINS_DIR

PRODUCTS = {p.id: p for p in load_products(DOMAINS_DIR)}


def test_formats() -> None:
    movies, catalog = PRODUCTS["studio.movies"], PRODUCTS["studio.movie_catalog"]
    assert names.topic(movies) == "studio.public.movies"
    assert names.topic(catalog) == "studio.movie_catalog"
    assert names.value_subject("studio.public.movies") == "studio.public.movies-value"
    assert names.key_subject("studio.public.movies") == "studio.public.movies-key"
    assert names.dlq_topic("studio.movie_catalog") == "studio.movie_catalog.dlq"
    assert names.asset_key_path(catalog) == ["studio", "movie_catalog"]
    assert names.connector("studio", "studio") == "studio-studio-cdc"
    assert names.flink_job(catalog) == "mesh-studio-movie_catalog"
    assert names.iceberg_table(PRODUCTS["content.title_catalog"]) == ("content", "title_catalog")
    assert names.consumer_group(catalog) == "mesh-studio-movie_catalog"
    serving = PRODUCTS["content.localized_titles_serving"]
    assert names.consumer_group(serving) == "mesh-content-localized_titles_serving"
    sink = PRODUCTS["content.title_catalog"]
    assert names.consumer_group(sink) == "mesh-sink-content-title_catalog"
    assert names.principal(catalog.id) == "User:studio.movie_catalog"


def test_a_principal_names_a_product_or_nothing() -> None:
    assert names.principal_product(names.principal("studio.movie_catalog")) == (
        "studio.movie_catalog"
    )
    for other in ("User:mesh-test", "User:ANONYMOUS", "Group:studio.x", "User:a.b.c", "User:.x"):
        assert names.principal_product(other) is None, other


def test_kafka_collision_key_treats_dot_and_underscore_alike() -> None:
    assert names.kafka_collision_key("a.b_c") == names.kafka_collision_key("a_b.c")
    assert names.kafka_collision_key("a.b") != names.kafka_collision_key("a.c")


def test_demo_derived_names_are_unique() -> None:
    kafka = [p for p in PRODUCTS.values() if p.is_kafka_backed]
    topics = [names.topic(p) for p in kafka]
    derived = topics + [names.dlq_topic(t) for t in topics]
    assert len({names.kafka_collision_key(t) for t in derived}) == len(derived)
    subjects = [names.value_subject(t) for t in topics] + [names.key_subject(t) for t in topics]
    assert len(set(subjects)) == len(subjects)
    keys = [tuple(names.asset_key_path(p)) for p in PRODUCTS.values()]
    assert len(set(keys)) == len(keys)
