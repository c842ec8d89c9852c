"""Dagster sensors that watch product topics' end offsets and trigger downstream sinks."""

from collections.abc import Sequence

import dagster as dg

from datamesh import names
from datamesh.specs.product import DataProduct
from mesh_assets.policy import asset_key
from resources.kafka import KafkaResource
from sensors.decide import decide, dump_cursor, parse_cursor

MIN_INTERVAL_S = 30


def sensor_name(product: DataProduct) -> str:
    """``<domain>__<product>__topic``."""
    return f"{product.domain}__{product.name}__topic"


def _sinks_fed_by(product: DataProduct, products: Sequence[DataProduct]) -> list[dg.AssetKey]:
    return [asset_key(p) for p in products if p.kind == "iceberg_sink" and product.id in p.inputs]


def build_sensors(products: Sequence[DataProduct]) -> list[dg.SensorDefinition]:
    """One sensor per Kafka-backed product."""
    return [_sensor(p, _sinks_fed_by(p, products)) for p in products if p.is_kafka_backed]


def _sensor(product: DataProduct, sinks: list[dg.AssetKey]) -> dg.SensorDefinition:
    topic, key = names.topic(product), asset_key(product)

    @dg.sensor(
        name=sensor_name(product),
        minimum_interval_seconds=MIN_INTERVAL_S,
        asset_selection=sinks or None,
        description=f"Watches topic {topic}; runs {', '.join(map(str, sinks)) or 'nothing'}"
        " when new messages arrive.",
    )
    def _watch(
        context: dg.SensorEvaluationContext, kafka: KafkaResource
    ) -> dg.SensorResult | dg.SkipReason:
        offsets = kafka.end_offsets(topic)
        if offsets is None:
            return dg.SkipReason(f"topic {topic} does not exist yet: materialize {key.to_string()}")
        decision = decide(parse_cursor(context.cursor), offsets)
        events = (
            [
                dg.AssetObservation(
                    key,
                    metadata={
                        "new_messages": decision.new_messages,
                        "end_offset_total": sum(offsets.values()),
                        "partitions": len(offsets),
                    },
                )
            ]
            if decision.observe
            else []
        )
        runs = [dg.RunRequest(asset_selection=sinks)] if decision.request_run and sinks else []
        return dg.SensorResult(
            run_requests=runs, asset_events=events, cursor=dump_cursor(decision.cursor)
        )

    return _watch
