"""Materializing the demo products through Dagster against the real stack."""

from __future__ import annotations

import dagster as dg
import pytest
from confluent_kafka import Producer

from datamesh import names
from datamesh.specs import load_products
from mesh_assets import DOMAINS_DIR, build_assets
from resources import resources_for
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from sensors import build_sensors

pytestmark = pytest.mark.integration

PRODUCTS = load_products(DOMAINS_DIR)


ASSETS = {a.key: a for a in build_assets(PRODUCTS)}
SENSORS = {s.name: s for s in build_sensors(PRODUCTS)}


def test_materialize_every_product(mesh_stack: object) -> None:
    assets = list(ASSETS.values())
    result = dg.materialize(assets, resources=resources_for())
    assert result.success
    admin = KafkaResource().admin()
    for product in PRODUCTS:
        key = dg.AssetKey(names.asset_key_path(product))
        [event] = result.asset_materializations_for_node(ASSETS[key].node_def.name)
        meta = event.metadata
        if product.is_kafka_backed:
            assert product.topic is not None
            observed = admin.describe(names.topic(product))
            assert observed is not None
            assert observed.partitions == product.topic.partitions
            assert observed.configs["cleanup.policy"] == product.topic.cleanup_policy
            assert meta["partitions"].value == product.topic.partitions
            assert meta["topic"].value == names.topic(product)
        else:
            table = IcebergResource().catalog().load_table(".".join(names.iceberg_table(product)))
            assert [f.name for f in table.schema().fields] == [
                "movie_id",
                "locale",
                "title",
                "artwork_url",
            ]
            assert meta["columns"].value == 4
    # Materializing again validates instead of creating: idempotent.
    again = dg.materialize(assets, resources=resources_for())
    assert again.success
    for mat in again.get_asset_materialization_events():
        assert mat.materialization.metadata["created"].value is False


def test_topic_sensor_observes_new_messages_and_requests_the_sink(mesh_stack: object) -> None:
    dg.materialize(list(ASSETS.values()), resources=resources_for())
    sensor = SENSORS["content__localized_titles__topic"]
    kafka = KafkaResource()
    first = sensor(dg.build_sensor_context(cursor=None, resources={"kafka": kafka}))
    assert isinstance(first, dg.SensorResult) and not first.run_requests
    producer = Producer(kafka.client_config())
    for i in range(7):
        producer.produce("content.localized_titles", key=str(i), value=b"x")
    assert producer.flush(10) == 0
    second = sensor(dg.build_sensor_context(cursor=first.cursor, resources={"kafka": kafka}))
    assert isinstance(second, dg.SensorResult)
    [observation] = second.asset_events
    assert observation.metadata["new_messages"].value == 7
    [run] = second.run_requests
    assert run.asset_selection == [dg.AssetKey(["content", "title_catalog"])]


def test_drift_fails_the_asset_with_expected_and_actual(mesh_stack: object) -> None:
    key = dg.AssetKey(["studio", "productions"])
    assert dg.materialize([ASSETS[key]], resources=resources_for()).success
    KafkaResource().admin().alter_config("studio.public.productions", {"cleanup.policy": "delete"})
    result = dg.materialize([ASSETS[key]], resources=resources_for(), raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message  # type: ignore[union-attr]
    assert "cleanup.policy='delete'" in message and "'compact'" in message
