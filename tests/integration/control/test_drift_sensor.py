"""The drift sensor on the real stack: out-of-band changes (a topic's retention edited, a job
cancelled) fail the product's ``drift`` check naming each difference and its owner, with an
observation recording them; once the product declares ``repair: auto`` the sensor repairs them
and the check passes."""

from __future__ import annotations

import dagster as dg
import pytest

from datamesh import endpoints
from datamesh.flink.connections import resolve
from datamesh.flink.jobmanager import JobManager
from datamesh.kafka_admin import TopicAdmin
from datamesh.kafka_config import client_config
from sensors.drift_sensor import build_drift_sensor
from tests.integration.control.conftest import OWNER, Mesh

pytestmark = pytest.mark.integration


def _tick(mesh: Mesh) -> tuple[dict[str, dg.AssetCheckEvaluation], list[dg.AssetObservation]]:
    [sensor] = build_drift_sensor(mesh.products())
    with dg.DagsterInstance.ephemeral() as instance:
        result = sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SensorResult)
    checks = {
        e.asset_key.path[-1]: e
        for e in result.asset_events
        if isinstance(e, dg.AssetCheckEvaluation) and e.asset_key.path[0] == mesh.src.domain
    }
    observations = [
        e
        for e in result.asset_events
        if isinstance(e, dg.AssetObservation) and e.asset_key.path[0] == mesh.src.domain
    ]
    return checks, observations


def test_drift_fails_the_check_names_the_difference_and_is_repaired_on_request(
    mesh: Mesh,
) -> None:
    checks, observations = _tick(mesh)
    assert checks == {} and observations == []  # nothing started yet: nothing to drift from
    assert mesh.apply().ok
    checks, observations = _tick(mesh)
    assert sorted(checks) == ["copy", "copy_table", "items"]
    assert all(c.passed for c in checks.values()), {k: c.description for k, c in checks.items()}
    assert observations == []

    topic = mesh.id("copy")
    admin = TopicAdmin(client_config(endpoints.endpoint("kafka")))
    admin.alter_config(topic, {"retention.ms": "1000"})
    jm = JobManager(resolve().flink_rest_url)
    job = jm.latest(f"mesh-{mesh.src.domain}-copy")
    assert job is not None and job.active
    jm.cancel(job.job_id)
    jm.wait_for_end(job.job_id)

    checks, observations = _tick(mesh)
    copy = checks["copy"]
    assert not copy.passed and copy.check_name == "drift"
    text = f"{copy.description} {copy.metadata['plan'].value}"
    assert "retention.ms is 1000" in text and f"flink_job mesh-{mesh.src.domain}-copy" in text
    assert OWNER in (copy.description or "") and copy.metadata["differences"].value == 2
    assert checks["items"].passed and checks["copy_table"].passed
    assert [o.asset_key.path[-1] for o in observations] == ["copy"]

    mesh.product("copy")["repair"] = "auto"
    checks, _ = _tick(mesh)  # the sensor repairs, plans again, then reports
    assert checks["copy"].passed, checks["copy"].description
    observed = admin.describe(topic)
    assert observed is not None and observed.configs["retention.ms"] == "604800000"
    job = jm.latest(f"mesh-{mesh.src.domain}-copy")
    assert job is not None and job.state == "RUNNING"
