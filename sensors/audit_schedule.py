"""``audit: {every: 1h}`` on a sink: a sensor ``<domain>__<product>__audit_schedule`` (running
by default) launching the sink's audit job (:mod:`mesh_assets.audit`) at that interval."""

from collections.abc import Sequence

import dagster as dg

from datamesh.specs.product import DataProduct
from mesh_assets.audit import audit_job_name, auditable


def build_audit_sensors(products: Sequence[DataProduct]) -> list[dg.SensorDefinition]:
    """Per sink declaring ``audit: {every: ...}``: a sensor launching its audit job that often."""
    return [_schedule(p) for p in auditable(products) if p.audit_every is not None]


def _schedule(p: DataProduct) -> dg.SensorDefinition:
    assert p.audit_every is not None

    @dg.sensor(
        name=f"{p.domain}__{p.name}__audit_schedule",
        job_name=audit_job_name(p),
        minimum_interval_seconds=int(p.audit_every.total_seconds()),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Audits {p.id} every {p.audit_every} (declared `audit: {{every: ...}}`).",
    )
    def _tick(context: dg.SensorEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest()

    return _tick
