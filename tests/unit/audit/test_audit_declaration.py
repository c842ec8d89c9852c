"""``audit: {every: ...}``: parsed with clear errors, refused where nothing could act on it, and
turned into the Dagster ``audit`` check, its audit and repair jobs and its schedule sensor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from datamesh.audit.declared import check_declared
from datamesh.errors import SpecError
from datamesh.specs import load_products
from mesh_assets.audit import build_audit_checks, build_audit_jobs
from sensors.audit_schedule import build_audit_sensors

SERVING = """
  - name: movies_serving
    kind: postgres_sink
    description: Movies for serving, audited against the studio database.
    inputs: [studio.movies]
    sink: {database: serving, table: public.movies}
    audit: {every: EVERY}
"""


def _with_serving(root: Path, every: str = "1h") -> Path:
    path = root / "studio" / "products.yaml"
    path.write_text(path.read_text() + SERVING.replace("EVERY", every))
    return path


def _line(path: Path, needle: str, after: str = "") -> int:
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


def test_audit_every_is_parsed(domains_copy: Callable[[], Path]) -> None:
    root = domains_copy()
    _with_serving(root, "90m")
    [serving] = [p for p in load_products(root) if p.name == "movies_serving"]
    assert serving.audit_every == timedelta(minutes=90)


@pytest.mark.parametrize(
    ("every", "problem"),
    [("30s", "too often; audit at most once a minute"), ("soon", "is not a duration")],
)
def test_bad_audit_every_names_file_field_and_line(
    domains_copy: Callable[[], Path], every: str, problem: str
) -> None:
    root = domains_copy()
    path = _with_serving(root, every)
    with pytest.raises(SpecError) as info:
        load_products(root)
    assert info.value.file == str(path)
    assert info.value.field == "products[5].audit.every"
    assert problem in info.value.problem
    assert info.value.line == _line(path, "audit:", "movies_serving")


def test_audit_on_a_processor_is_refused(domains_copy: Callable[[], Path]) -> None:
    root = domains_copy()
    path = root / "studio" / "products.yaml"
    text = path.read_text().replace(
        "    sql: movie_catalog.sql\n", "    sql: movie_catalog.sql\n    audit: {every: 1h}\n"
    )
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_products(root)
    assert info.value.field == "products[2].audit"
    assert "a processor product is not audited" in info.value.problem
    assert "declare it on an iceberg_sink or postgres_sink" in (info.value.fix or "")
    assert info.value.line == _line(path, "audit:")


def test_audit_on_a_sink_that_cannot_be_audited_names_the_reason(
    domains_copy: Callable[[], Path],
) -> None:
    root = domains_copy()
    path = root / "content" / "products.yaml"
    text = path.read_text().replace(
        "    slo: {freshness: 1h}\n", "    slo: {freshness: 1h}\n    audit: {every: 1h}\n", 1
    )
    path.write_text(text)
    products = load_products(root)
    with pytest.raises(SpecError) as info:
        check_declared(products)
    assert info.value.file == str(path)
    assert info.value.field == "products[2].audit"
    assert "content.title_catalog declares `audit:` but is not auditable" in info.value.problem
    assert "joins or unions studio.movies, content.artwork" in info.value.problem
    assert info.value.line == _line(path, "audit:")
    with pytest.raises(SpecError):
        build_audit_checks(products)  # the code location refuses to load it too


def test_auditable_sink_gets_check_jobs_and_schedule(domains_copy: Callable[[], Path]) -> None:
    root = domains_copy()
    _with_serving(root)
    products = load_products(root)
    [check] = [c for c in build_audit_checks(products) if "movies_serving" in str(c.check_keys)]
    [key] = check.check_keys
    assert key == dg.AssetCheckKey(dg.AssetKey(["studio", "movies_serving"]), "audit")
    jobs = {j.name for j in build_audit_jobs(products)}
    assert {"studio__movies_serving__audit", "studio__movies_serving__audit_repair"} <= jobs
    [sensor] = build_audit_sensors(products)
    assert sensor.name == "studio__movies_serving__audit_schedule"
    assert sensor.minimum_interval_seconds == 3600
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.job_name == "studio__movies_serving__audit"
    defs = dg.Definitions(asset_checks=[check], jobs=build_audit_jobs(products), sensors=[sensor])
    assert defs.resolve_job_def("studio__movies_serving__audit") is not None


def test_demo_declares_no_audit_and_gets_no_check() -> None:
    from mesh_assets import DOMAINS_DIR

    products = load_products(DOMAINS_DIR)
    assert build_audit_checks(products) == [] and build_audit_sensors(products) == []


def test_sink_runs_execute_the_sinks_slo_checks_not_its_audit_nor_drift(
    domains_copy: Callable[[], Path],
) -> None:
    from mesh_assets import build_assets
    from mesh_assets.audit import check_key, checks_with_sink_runs
    from mesh_assets.checks import build_checks
    from mesh_assets.drift import DRIFT, build_drift_checks
    from resources import resources_for
    from sensors.sink_runs import SinkRequest
    from sensors.topic_sensor import _run_request

    root = domains_copy()
    _with_serving(root)
    products = load_products(root)
    [serving] = [p for p in products if p.name == "movies_serving"]
    defs = dg.Definitions(
        assets=build_assets(products),
        asset_checks=[
            *build_checks(products),
            *build_drift_checks(products),
            *build_audit_checks(products),
        ],
        resources=resources_for(),
    )
    graph = defs.resolve_asset_graph()
    every = {k for k in graph.asset_check_keys if k.asset_key == check_key(serving).asset_key}
    request = _run_request(SinkRequest(serving.id, "serving:0-10", {0: 0}, {0: 10}), serving)
    drift = dg.AssetCheckKey(check_key(serving).asset_key, DRIFT)
    assert set(request.asset_check_keys or ()) == every - {check_key(serving), drift}
    assert {check_key(serving), drift} <= every and set(checks_with_sink_runs(serving)) < every
