"""Avro contracts end to end: registry, Confluent wire format through Kafka, kcat, Dagster."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import dagster as dg
import fastavro
import pytest
import requests
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from datamesh import endpoints, names
from datamesh.specs import load_products
from datamesh.specs.product import DataProduct
from mesh_assets import DOMAINS_DIR, build_assets
from resources import resources_for
from resources.kafka import KafkaResource
from resources.schema_registry import SchemaRegistryResource

pytestmark = pytest.mark.integration

PRODUCTS = load_products(DOMAINS_DIR)
CATALOG = next(p for p in PRODUCTS if p.id == "studio.movie_catalog")
ROWS = [
    {"movie_id": 1, "title": "Red Notice", "status": "released", "stage": None, "location": None},
    {
        "movie_id": 3,
        "title": "Glass Onion",
        "status": "post",
        "stage": "editing",
        "location": "Los Angeles",
    },
]


def _variant(name: str, **changes: Any) -> DataProduct:
    return dataclasses.replace(CATALOG, name=name, **changes)


def _provision(product: DataProduct) -> dict[str, Any]:
    """What a processor's materialization does to Kafka and the registry, without the Flink job
    (deployed jobs are covered in tests/integration/flink and test_dagster_assets.py)."""
    registry = SchemaRegistryResource()
    registry.check(product)
    assert product.topic is not None
    report = KafkaResource().ensure_topic(names.topic(product), product.topic, "test")
    return {**report, **registry.register(product)}


def _materialize(product: DataProduct) -> dg.ExecuteInProcessResult:
    assets = {a.key: a for a in build_assets([*PRODUCTS, product])}
    key = dg.AssetKey(names.asset_key_path(product))
    return dg.materialize([assets[key]], resources=resources_for(), raise_on_error=False)


def _produce(topic: str, schema: dict[str, Any]) -> None:
    registry = SchemaRegistryClient({"url": endpoints.endpoint("schema_registry")})
    serialize = AvroSerializer(registry, json.dumps(schema))
    producer = Producer(KafkaResource().client_config())
    for row in ROWS:
        value = serialize(row, SerializationContext(topic, MessageField.VALUE))
        producer.produce(topic, key=str(row["movie_id"]).encode(), value=value)
    assert producer.flush(15) == 0


def test_provision_registers_key_and_value_with_the_level(
    mesh_stack: object, unique_name: Callable[[str], str]
) -> None:
    product = _variant(unique_name("catalog"), compatibility="FULL")
    meta = _provision(product)
    client = SchemaRegistryResource().client()
    topic = names.topic(product)
    value = client.latest(names.value_subject(topic))
    key = client.latest(names.key_subject(topic))
    assert value is not None and key is not None
    assert meta["value_schema_id"] == value.id
    assert [f["name"] for f in key.schema["fields"]] == ["movie_id"]
    assert client.level(names.value_subject(topic)) == "FULL"
    again = _provision(product)
    assert (again["value_schema_id"], again["value_schema_version"]) == (value.id, 1)


def test_incompatible_change_fails_the_asset_and_changes_nothing(
    mesh_stack: object, unique_name: Callable[[str], str]
) -> None:
    product = _variant(unique_name("catalog"))
    _provision(product)
    schema = json.loads(json.dumps(product.value_schema))
    schema["fields"].append({"name": "budget", "type": "long"})  # no default: not BACKWARD
    result = _materialize(dataclasses.replace(product, value_schema=schema))
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message  # type: ignore[union-attr]
    assert "not BACKWARD compatible" in message and "budget" in message
    client = SchemaRegistryResource().client()
    latest = client.latest(names.value_subject(names.topic(product)))
    assert latest is not None and latest.version == 1


def test_incompatible_schema_of_a_new_product_creates_no_topic(
    mesh_stack: object, unique_name: Callable[[str], str]
) -> None:
    product = _variant(unique_name("catalog"))
    topic = names.topic(product)
    client = SchemaRegistryResource().client()
    client.register(
        names.value_subject(topic),
        {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "int"}]},
    )
    assert not _materialize(product).success
    assert KafkaResource().admin().describe(topic) is None


def test_wire_format_round_trip_through_kafka(
    mesh_stack: object, unique_name: Callable[[str], str]
) -> None:
    product = _variant(unique_name("catalog"))
    _provision(product)
    topic = names.topic(product)
    _produce(topic, CATALOG.value_schema or {})
    registry = SchemaRegistryClient({"url": endpoints.endpoint("schema_registry")})
    deserialize = AvroDeserializer(registry)
    consumer = Consumer(
        {
            **KafkaResource().client_config(),
            "group.id": unique_name("g"),
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    got: list[Any] = []
    try:
        while len(got) < len(ROWS):
            msg = consumer.poll(10)
            assert msg is not None, "timed out waiting for messages"
            raw = msg.value()
            assert raw is not None
            assert raw[0] == 0  # Confluent magic byte, then a 4-byte big-endian schema id
            value_id = SchemaRegistryResource().client().latest(names.value_subject(topic))
            assert value_id is not None and int.from_bytes(raw[1:5], "big") == value_id.id
            got.append(deserialize(raw, SerializationContext(topic, MessageField.VALUE)))
    finally:
        consumer.close()
    assert got == ROWS


def _kcat(topic: str, *args: str) -> bytes:
    argv = ["kcat", "-b", endpoints.endpoint("kafka"), "-C", "-t", topic, "-e", "-q", *args]
    return subprocess.run(argv, capture_output=True, timeout=60, check=True).stdout


def test_kcat_reads_the_confluent_frame_of_a_product_topic(
    mesh_stack: object, unique_name: Callable[[str], str]
) -> None:
    """Debian's kcat 1.7.1 is built without libserdes (``-s value=avro`` answers "This build of
    kcat lacks Avro/Schema-Registry support"), so kcat unpacks the Confluent frame with its pack
    format and the body is decoded with the writer schema fetched by that id from the registry."""
    product = _variant(unique_name("catalog"))
    _provision(product)
    topic = names.topic(product)
    _produce(topic, CATALOG.value_schema or {})
    frames = _kcat(topic, "-o", "beginning", "-s", "value=>B I", "-f", "%o %s\n").decode()
    registered = SchemaRegistryResource().client().latest(names.value_subject(topic))
    assert registered is not None
    assert frames.split() == ["0", "0", str(registered.id), "1", "0", str(registered.id)]
    decoded = []
    for offset in range(len(ROWS)):
        raw = _kcat(topic, "-o", str(offset), "-c", "1", "-f", "%s")
        schema_id = int.from_bytes(raw[1:5], "big")
        writer = requests.get(
            f"{endpoints.endpoint('schema_registry')}/schemas/ids/{schema_id}", timeout=10
        ).json()["schema"]
        decoded.append(
            fastavro.schemaless_reader(
                io.BytesIO(raw[5:]), fastavro.parse_schema(json.loads(writer)), None
            )
        )
    assert decoded == ROWS


def test_mesh_schema_check_shows_diff_and_verdict(
    mesh_stack: object, unique_name: Callable[[str], str]
) -> None:
    _provision(CATALOG)
    cli = [sys.executable, "-m", "datamesh.cli", "schema", "check", "studio.movie_catalog"]
    same = subprocess.run(cli, capture_output=True, text=True, env=os.environ, timeout=60)
    assert same.returncode == 0, same.stderr
    assert "(no change)" in same.stdout and "verdict: compatible" in same.stdout
