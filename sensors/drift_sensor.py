"""The drift sensor: ``plan`` every few minutes, on by default.

Each tick first runs the schema controller (an upstream schema change pauses the consumers it
breaks, resumes those whose declaration no longer uses what changed, redeploys the others), then
observes the mesh and plans it; every product applied at least once gets a runless ``drift``
check evaluation (one never started has nothing running to drift from: see :func:`started`),
and a product in drift an asset observation listing the differences. Products that
declare ``repair: auto`` have their safe repairs applied first (see
:mod:`datamesh.control.drift`), through the same executors as ``mesh apply``; what was repaired
is logged and the mesh is planned again before reporting.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import dagster as dg

from datamesh.control.apply import execute
from datamesh.control.drift import Verdict, repairs, verdicts
from datamesh.control.observe import observe
from datamesh.control.pausing import reconcile_schemas
from datamesh.control.plan import plan
from datamesh.errors import MeshError
from datamesh.specs.product import DataProduct
from mesh_assets.drift import evaluations

DRIFT_SENSOR = "mesh_drift_sensor"
INTERVAL_S = 180


def build_drift_sensor(products: Sequence[DataProduct]) -> list[dg.SensorDefinition]:
    """The drift sensor (none when nothing is declared)."""
    live = [p for p in products if not p.retired]
    if not live:
        return []
    by_id = {p.id: p for p in products}

    @dg.sensor(
        name=DRIFT_SENSOR,
        minimum_interval_seconds=INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Every 3 minutes: applies upstream schema changes per consumer (pause, "
        "resume, propagate), plans the mesh, a `drift` check per product, an observation "
        "listing any difference, safe repairs for products with `repair: auto`.",
    )
    def _drift(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        try:  # upstream schema changes are decided per consumer on every tick (no opt-in)
            for action in reconcile_schemas(products):
                if action.changes:
                    context.log.warning(f"schema controller: {action.describe()}")
        except MeshError as exc:
            context.log.warning(f"schema controller could not run: {exc}")
        observed = observe(products)
        actions = plan(products, observed)
        fixes = repairs(by_id, actions)
        for action in fixes:
            try:
                note = execute(action, products)
                context.log.info(f"repaired: {action.describe()}" + (f" ({note})" if note else ""))
            except MeshError as exc:
                context.log.warning(f"repair failed: {action.describe()}: {exc}")
        if fixes:
            observed = observe(products)
            actions = plan(products, observed)
        found, waiting = started(verdicts(products, actions), observed.applied)
        drifting = [v for v in found if not v.in_sync]
        context.log.info(
            f"{len(found)} products planned, {len(drifting)} in drift"
            + "".join(f"\n  {v.product}: {v.summary}" for v in drifting)
            + (f"; not started yet (no check): {', '.join(waiting)}" if waiting else "")
        )
        return dg.SensorResult(asset_events=evaluations(products, found))

    return [_drift]


def started(found: Sequence[Verdict], applied: Collection[str]) -> tuple[list[Verdict], list[str]]:
    """The verdicts of products applied at least once, and the ids of the others. A product
    never started (by its asset, ``mesh apply``, ``mesh flink deploy`` or a repair) has nothing
    running to drift from: its start is the automation's, and failing its check until then
    would read, on a fresh ``make dev``, as if every sink were broken before its first data
    arrived. The ``drift`` check its first materialization runs (or the next tick) judges it."""
    return [v for v in found if v.product in applied], [
        v.product for v in found if v.product not in applied
    ]
