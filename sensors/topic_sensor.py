"""Dagster sensors that watch product topics and keep the sinks they feed current.

One sensor per Kafka-backed product, running by default. Each tick gathers the topic's end
offsets, each Iceberg sink's committed offsets (from its table) and the state of its last run,
then lets the pure :func:`sensors.sink_runs.sink_requests` decide; it records one aggregated
observation of the topic per tick (never one event per message). Streaming ``postgres_sink``
products are redeployed when the topic's registered schema gets a new version, so a column
added upstream reaches their table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import dagster as dg

from datamesh import names
from datamesh.specs.product import DataProduct
from mesh_assets.audit import checks_with_sink_runs
from mesh_assets.checks import failing_blocking_checks
from mesh_assets.policy import STREAMING_KINDS, asset_key
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from resources.schema_registry import SchemaRegistryResource
from sensors.decide import decide, parse_cursor
from sensors.sink_runs import SinkRequest, SinkState, range_text, sink_requests

MIN_INTERVAL_S = 15
AUTOMATION_SENSOR = "mesh_streaming_start"
SINK_TAG = "mesh/sink"
OFFSETS_TAG = "mesh/offsets"
_ACTIVE = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
)
_FAILED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def sensor_name(product: DataProduct) -> str:
    """``<domain>__<product>__topic``."""
    return f"{product.domain}__{product.name}__topic"


def sinks_fed_by(product: DataProduct, products: Sequence[DataProduct]) -> list[DataProduct]:
    """The sink products whose input is ``product``."""
    return [p for p in products if p.is_sink and product.id in p.inputs]


def build_topic_sensors(products: Sequence[DataProduct]) -> list[dg.SensorDefinition]:
    """One sensor per Kafka-backed product, and the automation sensor that starts streaming
    products once (their ``on_missing`` condition, see mesh_assets.policy)."""
    sensors = [_sensor(p, sinks_fed_by(p, products)) for p in products if p.is_kafka_backed]
    streaming = [asset_key(p) for p in products if p.kind in STREAMING_KINDS]
    if streaming:
        sensors.append(
            dg.AutomationConditionSensorDefinition(
                AUTOMATION_SENSOR,
                target=dg.AssetSelection.assets(*streaming),
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=MIN_INTERVAL_S,
                description="Starts each streaming product (CDC connector, Flink job) once, "
                "when it was never materialized and its inputs exist.",
            )
        )
    return sensors


def _sensor(product: DataProduct, sinks: list[DataProduct]) -> dg.SensorDefinition:
    topic, key = names.topic(product), asset_key(product)
    batch_sinks = [s for s in sinks if s.kind == "iceberg_sink"]
    streaming = [s for s in sinks if s.kind == "postgres_sink"]
    selection = [asset_key(s) for s in sinks]

    @dg.sensor(
        name=sensor_name(product),
        minimum_interval_seconds=MIN_INTERVAL_S,
        asset_selection=selection or None,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches topic {topic}; keeps "
        f"{', '.join(s.id for s in sinks) or 'no sink'} current.",
    )
    def _watch(
        context: dg.SensorEvaluationContext,
        kafka: KafkaResource,
        iceberg: IcebergResource,
        schema_registry: SchemaRegistryResource,
    ) -> dg.SensorResult | dg.SkipReason:
        offsets = kafka.end_offsets(topic)
        if offsets is None:
            return dg.SkipReason(f"topic {topic} does not exist yet: materialize {key.to_string()}")
        previous, seen_version = read_cursor(context.cursor)
        decision = decide(previous, offsets)
        states = [_sink_state(context, iceberg, s, topic) for s in batch_sinks]
        requests = sink_requests(offsets, states)
        blocked = failing_blocking_checks(context.instance, product) if requests else []
        if blocked:  # a sink does not write from an input whose blocking check fails
            context.log.warning(f"sinks of {product.id} wait: " + "; ".join(blocked))
            requests = []
        runs = [_run_request(r, s) for r, s in _with_products(requests, batch_sinks)]
        version = None
        if streaming:
            latest = schema_registry.client().latest(names.value_subject(topic))
            version = latest.version if latest else None
            if version is not None and seen_version not in (None, version):
                runs += [_redeploy(s, version) for s in streaming]
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
        cursor = write_cursor(decision.cursor, version)
        return dg.SensorResult(run_requests=runs, asset_events=events, cursor=cursor)

    return _watch


def read_cursor(text: str | None) -> tuple[dict[int, int] | None, int | None]:
    """(end offsets at the last tick, schema version seen) from the cursor (older cursors held
    the offsets alone)."""
    if not text:
        return None, None
    state = json.loads(text)
    if "offsets" not in state:
        return parse_cursor(text), None
    offsets = {int(p): int(o) for p, o in state["offsets"].items()}
    return offsets, state.get("schema_version")


def write_cursor(offsets: dict[int, int], version: int | None) -> str:
    """The cursor JSON: ``{"offsets": {"<partition>": offset}, "schema_version": n}``."""
    state: dict[str, object] = {"offsets": {str(p): offsets[p] for p in sorted(offsets)}}
    if version is not None:
        state["schema_version"] = version
    return json.dumps(state)


def _with_products(
    requests: list[SinkRequest], sinks: list[DataProduct]
) -> list[tuple[SinkRequest, DataProduct]]:
    by_id = {s.id: s for s in sinks}
    return [(r, by_id[r.sink]) for r in requests]


def _sink_state(
    context: dg.SensorEvaluationContext, iceberg: IcebergResource, sink: DataProduct, topic: str
) -> SinkState:
    committed = iceberg.committed_offsets(".".join(names.iceberg_table(sink)), topic)
    runs = context.instance.get_runs(filters=dg.RunsFilter(tags={SINK_TAG: sink.id}), limit=1)
    last = runs[0] if runs else None
    return SinkState(
        sink=sink.id,
        committed=committed,
        in_flight=last is not None and last.status in _ACTIVE,
        last_failed_key=last.tags.get("dagster/run_key")
        if last is not None and last.status in _FAILED
        else None,
    )


def _run_request(request: SinkRequest, sink: DataProduct) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=request.run_key,
        asset_selection=[asset_key(sink)],
        asset_check_keys=checks_with_sink_runs(sink),
        tags={SINK_TAG: sink.id, OFFSETS_TAG: range_text(request.start, request.end)},
    )


def _redeploy(sink: DataProduct, version: int) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"{sink.id}:schema-v{version}",
        asset_selection=[asset_key(sink)],
        asset_check_keys=checks_with_sink_runs(sink),
        tags={SINK_TAG: sink.id, "mesh/reason": f"input schema version {version}"},
    )
