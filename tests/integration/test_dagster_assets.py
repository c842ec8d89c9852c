"""Materializing the demo products through Dagster against the real stack, end to end:
PostgreSQL -> CDC connector -> Kafka -> Flink processor -> Kafka, plus the Iceberg sink."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import psycopg2
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from psycopg2.extensions import make_dsn

from datamesh import endpoints, names
from datamesh.control import inventory
from datamesh.demo import load_demo
from datamesh.specs import load_products
from mesh_assets import DOMAINS_DIR, build_assets
from resources import resources_for
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from tests.integration.demo_state import reset_demo

pytestmark = pytest.mark.integration

PRODUCTS = load_products(DOMAINS_DIR)
ASSETS = {a.key: a for a in build_assets(PRODUCTS)}
MATERIALIZABLE = [a for a in ASSETS.values() if isinstance(a, dg.AssetsDefinition)]


@pytest.fixture(scope="module")
def demo(mesh_stack: object) -> Iterator[dg.ExecuteInProcessResult]:
    """The demo databases loaded and every demo product materialized once; torn down after."""
    reset_demo()
    load_demo(endpoints.endpoint("postgres"))
    result = dg.materialize(MATERIALIZABLE, resources=resources_for())
    yield result
    reset_demo()


def _latest_values(
    topic: str, done: Callable[[dict[Any, Any]], bool], timeout_s: float = 120
) -> dict[Any, Any]:
    """Latest decoded value per key, read until ``done(latest)`` or the timeout (a join first
    emits a movie without its production and updates it when the production arrives)."""
    registry = SchemaRegistryClient({"url": endpoints.endpoint("schema_registry")})
    decode = AvroDeserializer(registry)
    consumer = Consumer(
        {
            **KafkaResource().client_config(),
            "group.id": f"t-{time.time()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    latest: dict[Any, Any] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while not done(latest) and time.monotonic() < deadline:
            msg = consumer.poll(1)
            if msg is None or msg.error() or msg.value() is None:
                continue
            latest[msg.key()] = decode(msg.value(), SerializationContext(topic, MessageField.VALUE))
    finally:
        consumer.close()
    return latest


def _meta(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, Any]:
    [event] = result.asset_materializations_for_node(_definition(key).node_def.name)
    return {k: v.value for k, v in event.metadata.items()}


def _definition(key: dg.AssetKey) -> dg.AssetsDefinition:
    asset = ASSETS[key]
    assert isinstance(asset, dg.AssetsDefinition), asset
    return asset


def test_materialize_every_product_end_to_end(demo: dg.ExecuteInProcessResult) -> None:
    assert demo.success
    admin = KafkaResource().admin()
    for product in PRODUCTS:
        key = dg.AssetKey(names.asset_key_path(product))
        meta = _meta(demo, key)
        assert "dagster/column_lineage" in meta, key  # lineage travels with each materialization
        if product.kind == "cdc":
            assert product.topic is not None
            observed = admin.describe(names.topic(product))
            assert observed is not None and observed.partitions == product.topic.partitions
            assert observed.configs["cleanup.policy"] == product.topic.cleanup_policy
            assert meta["connector_state"] in ("streaming", "paused"), meta
            assert {"slot_lag_bytes", "last_lsn", "events_sent", "snapshot_status"} <= set(meta)
        elif product.kind in ("processor", "postgres_sink"):
            assert meta["job_state"] == "RUNNING", meta
            assert meta["job_action"] == "started"
        elif product.kind == "iceberg_sink":
            table = IcebergResource().catalog().load_table(".".join(names.iceberg_table(product)))
            assert meta["dagster/row_count"] == len(table.scan().to_arrow())
            assert meta["table"] == ".".join(names.iceberg_table(product))
    # The data flows: the demo movies arrive through CDC and the Flink join.
    movies = _latest_values("studio.public.movies", lambda got: len(got) >= 4)
    assert sorted(v["after"]["title"] for v in movies.values()) == [
        "Glass Onion",
        "Rebel Moon",
        "Red Notice",
        "The Gray Man",
    ]
    expected = {
        "Red Notice": None,
        "The Gray Man": None,
        "Glass Onion": "editing",
        "Rebel Moon": "principal photography",
    }

    def stages(latest: dict[Any, Any]) -> dict[str, Any]:
        return {v["title"]: v["stage"] for v in latest.values()}

    catalog = _latest_values("studio.movie_catalog", lambda got: stages(got) == expected)
    assert stages(catalog) == expected


def test_iceberg_sink_holds_its_input(demo: dg.ExecuteInProcessResult) -> None:
    """content.title_catalog = the latest value per key of content.localized_titles."""
    sink = ASSETS[dg.AssetKey(["content", "title_catalog"])]
    titles = _latest_values("content.localized_titles", lambda got: len(got) >= 3, 90)
    expected = {(v["movie_id"], v["locale"]): v for v in titles.values()}
    result = dg.materialize([sink], resources=resources_for())
    meta = _meta(result, dg.AssetKey(["content", "title_catalog"]))
    table = IcebergResource().catalog().load_table("content.title_catalog")
    rows = {(r["movie_id"], r["locale"]): r for r in table.scan().to_arrow().to_pylist()}
    assert rows == expected
    assert meta["dagster/row_count"] == len(expected)
    assert meta["offsets_to"] and meta["newest_event_ms"] > 0
    schema = meta["dagster/column_schema"]
    assert [c.name for c in schema.columns] == ["movie_id", "locale", "title", "artwork_url"]
    serving = psycopg2.connect(make_dsn(endpoints.endpoint("postgres"), dbname="serving"))
    try:
        with serving.cursor() as cur:
            deadline = time.monotonic() + 60
            while True:
                cur.execute("SELECT movie_id, locale, title, artwork_url FROM localized_titles")
                served = {(r[0], r[1]): dict(zip(_COLUMNS, r, strict=True)) for r in cur}
                serving.commit()
                if served == expected or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
    finally:
        serving.close()
    assert served == expected  # the postgres_sink streams the same rows


_COLUMNS = ("movie_id", "locale", "title", "artwork_url")


def test_an_update_upstream_replaces_rows_of_a_composite_key(
    demo: dg.ExecuteInProcessResult,
) -> None:
    """A movie renamed in PostgreSQL flows through the Flink join (keyed by movie_id, locale)
    and replaces — never duplicates — its rows in the Iceberg table."""
    studio = psycopg2.connect(make_dsn(endpoints.endpoint("postgres"), dbname="studio"))
    studio.autocommit = True
    with studio.cursor() as cur:
        cur.execute("UPDATE public.movies SET title = title || ' (renamed)' WHERE id = 1")
    studio.close()

    def renamed(latest: dict[Any, Any]) -> bool:
        return sum(1 for v in latest.values() if v["title"].endswith("(renamed)")) == 2

    titles = _latest_values("content.localized_titles", renamed, 90)
    expected = {(v["movie_id"], v["locale"]): v for v in titles.values()}
    sink = ASSETS[dg.AssetKey(["content", "title_catalog"])]
    assert dg.materialize([sink], resources=resources_for()).success
    table = IcebergResource().catalog().load_table("content.title_catalog")
    rows = table.scan().to_arrow().to_pylist()
    assert len(rows) == len({(r["movie_id"], r["locale"]) for r in rows}), rows
    assert {(r["movie_id"], r["locale"]): r for r in rows} == expected


def test_append_sink_keeps_every_change_of_a_cdc_product(
    demo: dg.ExecuteInProcessResult,
) -> None:
    result = dg.materialize(
        [ASSETS[dg.AssetKey(["studio", "movies_history"])]], resources=resources_for()
    )
    assert result.success
    table = IcebergResource().catalog().load_table("studio.movies_history")
    rows = table.scan().to_arrow().to_pylist()
    assert {r["title"] for r in rows} >= {"Glass Onion", "Rebel Moon", "Red Notice"}
    assert all(r["_op"] in ("r", "c", "u", "d") and r["_event_time"] for r in rows)
    assert [f.name for f in table.spec().fields] == ["_event_time_day"]


def test_materializing_again_changes_nothing(demo: dg.ExecuteInProcessResult) -> None:
    again = dg.materialize(MATERIALIZABLE, resources=resources_for())
    assert again.success
    for product in PRODUCTS:
        meta = _meta(again, dg.AssetKey(names.asset_key_path(product)))
        if product.kind in ("processor", "postgres_sink"):
            assert meta["job_action"] == "unchanged"
            assert (
                meta["job_id"] == _meta(demo, dg.AssetKey(names.asset_key_path(product)))["job_id"]
            )
        elif product.kind == "iceberg_sink":
            assert meta["table_created"] is False
        else:
            assert meta["created"] is False


def test_processor_assets_carry_column_lineage() -> None:
    spec = _definition(dg.AssetKey(["content", "localized_titles"])).specs_by_key[
        dg.AssetKey(["content", "localized_titles"])
    ]
    lineage = spec.metadata["dagster/column_lineage"]
    [dep] = lineage.deps_by_column["title"]
    assert (dep.asset_key, dep.column_name) == (dg.AssetKey(["studio", "movies"]), "title")
    [url] = lineage.deps_by_column["artwork_url"]
    assert (url.asset_key, url.column_name) == (dg.AssetKey(["content", "artwork"]), "url")


def test_dead_letter_topic_is_an_observable_asset(demo: dg.ExecuteInProcessResult) -> None:
    # Dagster keeps `observe` (the in-process runner of observable assets) out of its top level.
    from dagster._core.definitions.observe import observe

    dlq = ASSETS[dg.AssetKey(["studio", "movie_catalog_dlq"])]
    assert isinstance(dlq, dg.SourceAsset), dlq

    def dead_letters() -> int:
        result = observe([dlq], resources=resources_for())
        assert result.success
        [observation] = [
            e.asset_observation_data.asset_observation
            for e in result.all_events
            if e.is_asset_observation
        ]
        assert observation.metadata["topic"].value == "studio.movie_catalog.dlq"
        count = observation.metadata["dead_letters"].value
        assert isinstance(count, int), count
        return count

    before = dead_letters()
    producer = Producer(KafkaResource().client_config())
    producer.produce(
        "studio.movie_catalog.dlq", key=b"k", value=b"\x07not avro", headers={"mesh.error": "test"}
    )
    assert producer.flush(10) == 0
    assert dead_letters() == before + 1


def test_drift_fails_the_asset_with_expected_and_actual(demo: dg.ExecuteInProcessResult) -> None:
    key = dg.AssetKey(["studio", "productions"])
    KafkaResource().admin().alter_config("studio.public.productions", {"cleanup.policy": "delete"})
    try:
        result = dg.materialize([ASSETS[key]], resources=resources_for(), raise_on_error=False)
        assert not result.success
        [failure] = [e for e in result.all_events if e.is_step_failure]
        message = failure.step_failure_data.error.cause.message  # type: ignore[union-attr]
        assert "cleanup.policy='delete'" in message and "'compact'" in message
    finally:
        KafkaResource().admin().alter_config(
            "studio.public.productions", {"cleanup.policy": "compact"}
        )


def _mesh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datamesh.cli", *args],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=300,
    )


def test_mesh_cli_inspects_connectors_jobs_and_requests_snapshots(
    demo: dg.ExecuteInProcessResult,
) -> None:
    cdc = _mesh("cdc", "status")
    assert cdc.returncode == 0, cdc.stderr
    assert "studio-studio-cdc" in cdc.stdout and "streaming" in cdc.stdout
    job = _mesh("flink", "status", "studio.movie_catalog")
    assert job.returncode == 0, job.stderr
    assert "mesh-studio-movie_catalog: RUNNING" in job.stdout
    inventory.forget("studio.movie_catalog")  # deployed from the CLI, it is started again:
    again = _mesh("flink", "deploy", "studio.movie_catalog")  # the sensors judge it
    assert again.returncode == 0 and "RUNNING (unchanged)" in again.stdout, again.stderr
    assert "studio.movie_catalog" in inventory.load_all()
    sink = _mesh("flink", "status", "content.localized_titles_serving")
    assert sink.returncode == 0, sink.stderr
    assert "mesh-content-localized_titles_serving: RUNNING" in sink.stdout
    snap = _mesh("snapshot", "studio.movies", "--where", "id < 3")
    assert snap.returncode == 0, snap.stderr
    assert "snapshot of public.movies requested" in snap.stdout
    bad = _mesh("snapshot", "studio.movie_catalog")
    assert bad.returncode == 1 and "snapshot a cdc product" in bad.stderr
