"""The sensor that evaluates every product's SLO checks, on by default.

Each tick gathers what the checks need in one pass and reports the results as runless asset
check evaluations (no run, no process per evaluation); the same checks run on demand from the
UI through each product's ``<domain>__<product>__slo_checks`` multi-asset check. Products that
synthetic heartbeats reach also get an asset observation of their heartbeat latency per tick
(``heartbeat_latency_ms_p50``/``_p99`` end to end, ``heartbeat_hop_latency_ms_*`` for the hop).

Only products started at least once (by their asset, ``mesh apply``, ``mesh flink deploy`` or a
repair: the controller's inventory) are judged. One never started has nothing running yet, and
a failing blocking check on it — "no event yet" at the first tick of a fresh ``make dev`` —
held its sinks back until the tick after its start.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from datamesh.checks.evaluate import checks_for
from datamesh.control import inventory
from datamesh.specs.product import DataProduct
from mesh_assets.checks import evaluate_and_observe, evaluations, systems
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from resources.schema_registry import SchemaRegistryResource

SLO_SENSOR = "mesh_slo_sensor"
INTERVAL_S = 60


def build_slo_sensor(products: Sequence[DataProduct]) -> list[dg.SensorDefinition]:
    """The SLO sensor (none when no product has a check)."""
    by_id = {p.id: p for p in products}
    checked = [p for p in products if checks_for(p)]
    if not checked:
        return []

    @dg.sensor(
        name=SLO_SENSOR,
        minimum_interval_seconds=INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Evaluates every product's SLO checks (freshness, lag, dead letters, "
        "schema, latency) once a minute.",
    )
    def _evaluate(
        context: dg.SensorEvaluationContext,
        kafka: KafkaResource,
        schema_registry: SchemaRegistryResource,
        iceberg: IcebergResource,
    ) -> dg.SensorResult:
        applied = inventory.load_all()
        live = [p for p in checked if p.id in applied]
        pairs, observations = evaluate_and_observe(
            live, by_id, context.instance, systems(kafka, schema_registry, iceberg)
        ) if live else ([], [])  # fmt: skip
        failing = [f"{p.id} {o.check}: {o.summary}" for p, o in pairs if not o.passed]
        waiting = [p.id for p in checked if p.id not in applied]
        context.log.info(
            f"{len(pairs)} checks evaluated, {len(failing)} failing"
            + "".join(f"\n  {line}" for line in failing)
            + (f"; not started yet (no check): {', '.join(waiting)}" if waiting else "")
        )
        return dg.SensorResult(asset_events=[*evaluations(pairs), *observations])

    return [_evaluate]
