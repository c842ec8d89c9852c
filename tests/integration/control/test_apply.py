"""``mesh apply`` on the real stack: everything created in order, a second apply does nothing, a
refused plan changes nothing (subjects, levels, topics, jobs compared before and after),
retirement refused while consumed then done, and an apply interrupted by a dead broker is
finished by the next one."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest
import requests
from confluent_kafka.admin import AdminClient

from datamesh import endpoints, names
from datamesh.cdc import running
from datamesh.control.apply import Report
from datamesh.flink.connections import resolve
from datamesh.flink.jobmanager import JobManager
from datamesh.kafka_config import client_config
from datamesh.process import alive
from datamesh.schema_client import SchemaClient
from datamesh.sinks.catalog import open_catalog
from datamesh.stack import stack, state
from tests.integration.control.conftest import ITEM, OWNER, Mesh
from tests.integration.flink.conftest import wait_for

pytestmark = pytest.mark.integration


def _snapshot(domain: str) -> dict[str, Any]:
    """Subjects (versions and levels), topics and jobs of the test domain."""
    registry = endpoints.endpoint("schema_registry")
    client = SchemaClient(registry)
    subjects = sorted(
        s for s in requests.get(f"{registry}/subjects", timeout=10).json() if s.startswith(domain)
    )
    admin = AdminClient(client_config(endpoints.endpoint("kafka")))
    jm = JobManager(resolve().flink_rest_url)
    return {
        "subjects": {
            s: (
                requests.get(f"{registry}/subjects/{s}/versions", timeout=10).json(),
                client.level(s),
            )
            for s in subjects
        },
        "topics": sorted(t for t in admin.list_topics(timeout=10).topics if t.startswith(domain)),
        "jobs": sorted(
            (j.job_id, j.state) for j in jm.jobs() if j.name.startswith(f"mesh-{domain}-")
        ),
    }


def _lines(report: Report, status: str = "done") -> list[str]:
    return [f"{o.action.verb} {o.action.resource}" for o in report.outcomes if o.status == status]


def test_apply_builds_the_mesh_once_refuses_safely_and_retires_what_is_no_longer_read(
    mesh: Mesh,
) -> None:
    domain = mesh.src.domain
    first = mesh.apply()
    assert first.ok, first.refusals or first.outcomes
    done = _lines(first)
    for expected in ("create topic", "create connector", "create flink_job", "create sink_table"):
        assert expected in done, done
    connector = names.connector(domain, mesh.src.database)
    wait_for(lambda: running.pid_of(connector) is not None, 30, f"{connector} to run")
    assert open_catalog().table_exists(f"{domain}.copy_table")
    jm = JobManager(resolve().flink_rest_url)
    job = jm.latest(f"mesh-{domain}-copy")
    assert job is not None and job.state == "RUNNING"

    second = mesh.apply()  # idempotent: nothing planned, nothing done
    assert second.ok and second.outcomes == [] and mesh.plan_lines() == []

    # a refused plan changes nothing, not even the level of another subject
    before = _snapshot(domain)
    copy_schema = {
        **ITEM,
        "name": "Copy",
        "fields": [*ITEM["fields"], {"name": "size", "type": "long"}],
    }
    (mesh.folder / "copy.avsc").write_text(json.dumps(copy_schema))  # no default: not BACKWARD
    mesh.product("items")["compatibility"] = "FULL"
    mesh.declaration["products"].append(
        {"name": "copy2", "kind": "processor", "description": "another copy",
         "inputs": [mesh.id("items")], "sql": "copy.sql", "schema": "items.avsc", "key": ["id"]}
    )  # fmt: skip
    refused = mesh.apply()
    assert refused.refusals and refused.outcomes == []
    assert any(f"{domain}.copy-value" in r and "size" in r for r in refused.refusals), (
        refused.refusals
    )
    assert _snapshot(domain) == before

    # back to the applied declaration
    (mesh.folder / "copy.avsc").write_text(json.dumps({**ITEM, "name": "Copy"}))
    del mesh.product("items")["compatibility"]
    mesh.declaration["products"].pop()
    assert mesh.plan_lines() == []

    # retiring a product that is still read is refused, naming its reader and owner
    mesh.product("copy")["retired"] = True
    still_read = mesh.apply()
    assert still_read.refusals and still_read.outcomes == []
    assert any(mesh.id("copy_table") in r and OWNER in r for r in still_read.refusals)

    # retire the reader too: jobs and subjects go, topics and tables wait for --allow-delete
    mesh.product("copy_table")["retired"] = True
    kept = mesh.apply()
    assert kept.ok, kept.outcomes
    assert "delete flink_job" in _lines(kept) and "delete subject" in _lines(kept)
    assert sorted(_lines(kept, "skipped")) == [
        "delete dlq_topic",
        "delete product",
        "delete product",
        "delete sink_table",
        "delete topic",
    ]
    job = jm.latest(f"mesh-{domain}-copy")
    assert job is not None and not job.active
    assert f"{domain}.copy" in _snapshot(domain)["topics"]

    gone = mesh.apply(allow_delete=True)
    assert gone.ok, gone.outcomes
    assert sorted(_lines(gone)) == [
        "delete dlq_topic",
        "delete product",
        "delete product",
        "delete sink_table",
        "delete topic",
    ]
    after = _snapshot(domain)
    assert f"{domain}.copy" not in after["topics"] and f"{domain}.copy.dlq" not in after["topics"]
    assert not any(s.startswith(f"{domain}.copy-") for s in after["subjects"])
    assert not open_catalog().table_exists(f"{domain}.copy_table")
    assert mesh.plan_lines() == []
    recorded = [p.name for p in (endpoints.control_dir() / "applied").glob(f"{domain}.*.json")]
    assert recorded == [f"{domain}.items.json"]

    # the last table of its database: the connector goes too, and with it the slot that would
    # make the source keep WAL forever
    mesh.product("items")["retired"] = True
    last = mesh.apply(allow_delete=True)
    assert last.ok, last.outcomes
    assert "delete connector" in _lines(last)
    assert not running.supervised(connector)
    slots = mesh.src.run("SELECT slot_name FROM pg_replication_slots")
    assert slots == [] or all(domain not in str(row[0]) for row in slots), slots
    assert f"{domain}.public.items" not in _snapshot(domain)["topics"]
    assert mesh.plan_lines() == []


def test_an_apply_stopped_by_a_dead_broker_is_finished_by_the_next(mesh: Mesh) -> None:
    said: list[str] = []
    broker = state.load()["kafka"]

    def kill_the_broker_midway(line: str) -> None:
        said.append(line)
        if len([s for s in said if s.startswith("done")]) == 3 and alive(broker.pids[0]):
            os.kill(broker.pids[0], signal.SIGKILL)
            wait_for(lambda: not alive(broker.pids[0]), 30, "the broker to die")

    try:
        stopped = mesh.apply(say=kill_the_broker_midway)
    finally:
        stack.up()
    assert not stopped.ok
    failed = [o for o in stopped.outcomes if o.status == "failed"]
    assert len(failed) == 1 and failed[0].action.resource in ("topic", "dlq_topic", "connector")
    assert any("apply stopped after" in s and "run `mesh apply` again" in s for s in said), said

    said.clear()
    finished = mesh.apply(say=said.append)
    assert finished.ok, finished.outcomes
    assert said[0].startswith("the apply started") and "finishing from there" in said[0]
    assert "stopped after 3 of" in said[0]
    assert mesh.plan_lines() == []
    assert not (endpoints.control_dir() / "journal.json").exists()
    jm = JobManager(resolve().flink_rest_url)
    job = jm.latest(f"mesh-{mesh.src.domain}-copy")
    assert job is not None and job.state == "RUNNING"
