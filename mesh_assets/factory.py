"""The one factory that turns data products into Dagster assets.

Materializing a Kafka-backed product (cdc, processor) provisions and validates its topic; an
Iceberg sink creates and validates its table from its input's Avro schema.
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg

from datamesh import names
from datamesh.specs.product import DataProduct
from mesh_assets import policy
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from resources.schema_registry import SchemaRegistryResource


def build_assets(products: Sequence[DataProduct]) -> list[dg.AssetsDefinition]:
    """One asset per product, with deps mirroring the declared inputs (across domains)."""
    by_id = {p.id: p for p in products}
    return [_build(p, by_id) for p in products]


def effective_schema(product: DataProduct, by_id: dict[str, DataProduct]) -> dict[str, Any] | None:
    """The product's own schema, or (for a sink without one) its input's."""
    if product.value_schema is not None or not product.inputs:
        return product.value_schema
    return effective_schema(by_id[product.inputs[0]], by_id)


def _spec_kwargs(p: DataProduct, by_id: dict[str, DataProduct]) -> dict[str, Any]:
    return {
        "key": policy.asset_key(p),
        "description": p.description,
        "owners": list(p.owners),
        "group_name": p.domain,
        "tags": policy.tags(p),
        "kinds": policy.KINDS[p.kind],
        "metadata": policy.metadata(p, effective_schema(p, by_id)),
        "deps": [policy.asset_key(by_id[i]) for i in p.inputs],
        "freshness_policy": policy.freshness(p),
    }


def _build(p: DataProduct, by_id: dict[str, DataProduct]) -> dg.AssetsDefinition:
    if p.is_kafka_backed:
        return _topic_asset(p, _spec_kwargs(p, by_id))
    return _sink_asset(p, _spec_kwargs(p, by_id), effective_schema(p, by_id) or {})


def _topic_asset(p: DataProduct, kwargs: dict[str, Any]) -> dg.AssetsDefinition:
    assert p.topic is not None
    topic, settings = names.topic(p), p.topic

    @dg.asset(**kwargs)
    def _asset(
        context: dg.AssetExecutionContext,
        kafka: KafkaResource,
        schema_registry: SchemaRegistryResource,
    ) -> dg.MaterializeResult:
        schema_registry.check(p)  # an incompatible schema is refused before anything changes
        report = kafka.ensure_topic(topic, settings, p.declared_in)
        context.log.info(f"topic {topic}: {'created' if report['created'] else 'validated'}")
        report.update(schema_registry.register(p))
        return dg.MaterializeResult(metadata=report)

    return _asset


def _sink_asset(
    p: DataProduct, kwargs: dict[str, Any], schema: dict[str, Any]
) -> dg.AssetsDefinition:
    namespace, table = names.iceberg_table(p)

    @dg.asset(**kwargs)
    def _asset(context: dg.AssetExecutionContext, iceberg: IcebergResource) -> dg.MaterializeResult:
        report = iceberg.ensure_table(namespace, table, schema)
        context.log.info(
            f"iceberg table {report['table']}: {'created' if report['created'] else 'validated'}"
        )
        return dg.MaterializeResult(metadata=report)

    return _asset
