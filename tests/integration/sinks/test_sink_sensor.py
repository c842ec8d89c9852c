"""The topic sensor keeps an Iceberg sink current, evaluated with real Kafka and a real table:
a burst between ticks is one run with the exact offset range, a restarted sensor resumes from
its cursor with nothing skipped, and the daemon of ``mesh dev`` runs the sink on its own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from datamesh import endpoints, names
from datamesh.cdc import running
from datamesh.kafka_admin import TopicAdmin
from datamesh.schema_client import SchemaClient
from datamesh.sinks.iceberg_sink import IcebergSink, SinkJob, sink_job
from datamesh.specs.product import DataProduct, SinkSettings, TopicSettings
from datamesh.stack.paths import PROJECT_ROOT
from datamesh.topic_plan import CreateTopic
from mesh_assets import DOMAINS_ENV, build_assets
from resources import resources_for
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from sensors import build_sensors
from tests.integration.flink.conftest import product, record
from tests.integration.sinks.conftest import Source, await_caught_up, table_rows

pytestmark = pytest.mark.integration

TABLE = (
    "CREATE TABLE items (id bigint PRIMARY KEY, name text);"
    " ALTER TABLE items REPLICA IDENTITY FULL"  # complete before images (DEFAULT works too)
)
ITEM = [("id", "long"), ("name", ["null", "string"])]


def products(src: Source) -> tuple[DataProduct, DataProduct]:
    items = product(
        src.domain, "items", "cdc", record("Item", src.domain, ITEM), key=("id",), table="items"
    )
    assert items.source is not None
    items = replace(items, source=replace(items.source, database=src.database))
    sink = replace(
        product(src.domain, "items_table", "iceberg_sink", inputs=(items.id,), key=("id",)),
        topic=None,
        sink=SinkSettings(mode="upsert"),
    )
    return items, sink


def _topic_sensor(sensors: list[dg.SensorDefinition]) -> dg.SensorDefinition:
    [sensor] = [s for s in sensors if s.name.endswith("__topic")]
    return sensor


def tick(
    sensor: dg.SensorDefinition, cursor: str | None, instance: dg.DagsterInstance
) -> dg.SensorResult:
    context = dg.build_sensor_context(cursor=cursor, instance=instance, resources=resources_for())
    result = sensor(context)
    assert isinstance(result, dg.SensorResult), result
    return result


def test_sensor_requests_one_run_per_range_and_resumes(
    source: Callable[..., Source], sinks: Callable[..., IcebergSink]
) -> None:
    src = source(TABLE, "items")
    items, sink = products(src)
    job = sink_job(sink, {items.id: items, sink.id: sink})
    src.run("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g")
    await_caught_up(src)
    sinks().run(job)  # the table is at the topic's end
    instance = dg.DagsterInstance.ephemeral()
    sensor = _topic_sensor(build_sensors([items, sink]))
    first = tick(sensor, None, instance)
    assert not first.run_requests  # up to date: nothing to do
    committed = IcebergResource().committed_offsets(job.table, job.topic)
    src.run("INSERT INTO items SELECT g, 'burst ' || g FROM generate_series(1001, 11000) g")
    await_caught_up(src)
    second = tick(sensor, first.cursor, instance)
    [run] = second.run_requests or []
    [(partition, start)] = committed.items()
    assert run.run_key == f"{sink.id}:{partition}:{start}-{start + 10_000}"
    assert run.asset_selection == [dg.AssetKey(names.asset_key_path(sink))]
    [observation] = second.asset_events
    assert observation.metadata["new_messages"].value == 10_000
    # A restarted sensor (fresh definitions, the stored cursor) asks for the same range again:
    # Dagster launches a run_key once, so nothing is requested twice and nothing is skipped.
    restarted = _topic_sensor(build_sensors([items, sink]))
    [again] = tick(restarted, second.cursor, instance).run_requests or []
    assert again.run_key == run.run_key
    # The run applies the range; the next tick starts exactly where it ended.
    asset = next(a for a in build_assets([items, sink]) if sink.name in a.key.to_user_string())
    assert dg.materialize([asset], resources=resources_for()).success
    assert len(table_rows(job)) == 10_100
    assert not tick(restarted, second.cursor, instance).run_requests
    src.run("UPDATE items SET name = 'renamed' WHERE id <= 5")
    await_caught_up(src)
    [later] = tick(restarted, second.cursor, instance).run_requests or []
    assert later.run_key == f"{sink.id}:{partition}:{start + 10_000}-{start + 10_005}"


def test_the_daemon_starts_the_pipeline_and_keeps_the_sink_current(
    source: Callable[..., Source], tmp_path: Path
) -> None:
    """`dagster-daemon` (what `mesh dev` runs inside `dagster dev`) with the platform's sensors
    on by default, and nothing clicked: the automation sensor materializes the CDC product (its
    connector starts and snapshots the table), the topic's sensor runs the Iceberg sink, and
    the table follows an update and a delete made afterwards; the SLO sensor evaluates the
    product's checks and records them (no run)."""
    src = source(TABLE, "items", capture=False)
    items, sink = products(src)
    domains = tmp_path / "domains"
    _declare(domains / src.domain, items, sink)
    src.run("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 50) g")
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, DOMAINS_ENV: str(domains), "DAGSTER_HOME": str(home)}
    daemon = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-daemon"),
            "run",
            "-w",
            str(PROJECT_ROOT / "workspace.yaml"),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    job = sink_job(sink, {items.id: items, sink.id: sink})
    assert items.source is not None
    connector = names.connector(items.domain, items.source.database)
    try:
        _wait(lambda: len(_rows(job)) == 50, 240, "the daemon's first sink run", daemon)
        src.run("UPDATE items SET name = 'changed' WHERE id = 7")
        src.run("DELETE FROM items WHERE id = 8")
        _wait(
            lambda: (rows := _rows(job)).get(7, {}).get("name") == "changed" and 8 not in rows,
            150,
            "the sink to follow an update and a delete",
            daemon,
        )
        key = dg.AssetKey(names.asset_key_path(items))
        checks = [dg.AssetCheckKey(key, c) for c in ("freshness", "schema")]
        _wait(lambda: _sensor_evaluated(home, checks), 150, "the SLO sensor's checks", daemon)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
        running.stop(connector)
        shutil.rmtree(home, ignore_errors=True)


def _sensor_evaluated(home: Path, checks: list[dg.AssetCheckKey]) -> bool:
    """Every check passed at an evaluation the ``mesh_slo_sensor`` recorded (runless: no run)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(checks)
    return all(
        (r := latest.get(k)) is not None and r.run_id == "" and r.status.value == "SUCCEEDED"
        for k in checks
    )


def _declare(folder: Path, items: DataProduct, sink: DataProduct) -> None:
    folder.mkdir(parents=True)
    assert items.source is not None
    (folder / "items.avsc").write_text(json.dumps(items.value_schema))
    declaration = {
        "domain": items.domain,
        "owners": ["team:test"],
        "products": [
            {
                "name": "items",
                "kind": "cdc",
                "description": "test items",
                "source": {"database": items.source.database, "table": "public.items"},
                "schema": "items.avsc",
                "key": ["id"],
                "slo": {"freshness": "10m"},
            },
            {
                "name": sink.name,
                "kind": "iceberg_sink",
                "description": "test sink",
                "inputs": [items.id],
            },
        ],
    }
    (folder / "products.yaml").write_text(yaml.safe_dump(declaration))


def _rows(job: SinkJob) -> dict[Any, dict[str, Any]]:
    try:
        return table_rows(job)
    except Exception:  # the table does not exist yet
        return {}


def _wait(
    done: Callable[[], bool], timeout_s: float, what: str, daemon: subprocess.Popen[bytes]
) -> None:
    assert daemon.stdout is not None  # started with stdout=PIPE
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return
        assert daemon.poll() is None, (
            f"dagster-daemon exited: {daemon.stdout.read().decode()[-3000:]}"
        )
        time.sleep(1)
    os.killpg(daemon.pid, signal.SIGTERM)
    out = daemon.communicate(timeout=30)[0].decode()
    log = Path(os.environ.get("MESH_HOME", "/tmp")) / "dagster-daemon-test.log"
    log.write_text(out)
    notable = [
        line
        for line in out.splitlines()
        if any(w in line for w in ("requested", "Submitted", "RUN_", "STEP_FAILURE", "Error"))
    ]
    raise AssertionError(
        f"timed out waiting for {what}; daemon log in {log}; notable lines:\n"
        + "\n".join(notable[-40:])
        + f"\n--- tail ---\n{out[-3000:]}"
    )


def test_a_new_input_schema_version_redeploys_the_postgres_sink(mesh_stack: object) -> None:
    """The streaming sink's table gains a column only when its job is redeployed: the topic's
    sensor asks for that run when the input's value subject gets a new version."""
    domain = f"pv{uuid.uuid4().hex[:8]}"
    items = product(
        domain, "items", "cdc", record("Item", domain, ITEM), key=("id",), table="items"
    )
    serving = replace(
        product(domain, "items_serving", "postgres_sink", inputs=(items.id,), key=("id",)),
        topic=None,
        sink=SinkSettings(mode="upsert", table="public.items"),
    )
    topic = names.topic(items)
    TopicAdmin(KafkaResource().client_config()).create(
        CreateTopic(topic, TopicSettings(1, 1, 3_600_000, "delete"))
    )
    registry = SchemaClient(endpoints.endpoint("schema_registry"))
    registry.register(names.value_subject(topic), record("Item", domain, ITEM))
    instance = dg.DagsterInstance.ephemeral()
    sensor = _topic_sensor(build_sensors([items, serving]))
    first = tick(sensor, None, instance)
    assert not first.run_requests
    assert not tick(sensor, first.cursor, instance).run_requests  # same version: nothing
    wider = record("Item", domain, [*ITEM, ("region", ["null", "string"])])
    version = registry.register(names.value_subject(topic), wider).version
    [run] = tick(sensor, first.cursor, instance).run_requests or []
    assert run.run_key == f"{serving.id}:schema-v{version}"
    assert run.asset_selection == [dg.AssetKey(names.asset_key_path(serving))]
