"""A TaskManager killed mid-stream: the job recovers from its last checkpoint, nothing is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from datamesh import names
from datamesh.flink import FlinkJobs, ProcessorJob
from datamesh.stack.flink import restart_taskmanager
from tests.integration.flink.conftest import Topics, product, record, wait_for

pytestmark = pytest.mark.integration

READING = [("id", "long"), ("sensor", "string"), ("value", "double")]
TOTAL = 3000


def test_taskmanager_crash_recovers_without_loss(
    flink: FlinkJobs, topics: Topics, domain: str, jobs: Callable[..., ProcessorJob]
) -> None:
    readings = product(domain, "readings", "processor", record("Reading", domain, READING))
    topics.create(names.topic(readings), partitions=2)
    sql = f"SELECT id, sensor, `value` * 2 AS doubled FROM `{readings.id}` WHERE `value` >= 0"
    out = product(domain, "doubled", "processor", inputs=(readings.id,), sql=sql)
    job = jobs(out, [readings])
    assert flink.deploy(job).running

    def produce() -> None:
        for start in range(0, TOTAL, 100):  # ~20 s at 150 records/s
            batch = [
                {"id": i, "sensor": f"s{i % 7}", "value": float(i)}
                for i in range(start, start + 100)
            ]
            topics.produce(names.topic(readings), readings.value_schema, batch)
            time.sleep(0.66)

    writer = threading.Thread(target=produce)
    writer.start()
    wait_for(lambda: flink.status(job.name).last_checkpoint, 30, "a first checkpoint")
    wait_for(lambda: flink.status(job.name).records_out >= 300, 30, "output before the crash")
    restart_taskmanager(crash=True)  # SIGKILL the TaskManager, start a fresh one
    writer.join()

    status = wait_for(
        lambda: (s := flink.status(job.name)).running and s.restarts >= 1 and s, 120, "recovery"
    )
    assert status.last_checkpoint is not None
    output = topics.read(
        names.topic(out), lambda m: {v["id"] for _, v, _ in m} >= set(range(TOTAL)), 120
    )
    ids = [v["id"] for _, v, _ in output]
    assert set(ids) == set(range(TOTAL))  # at-least-once: replays after the checkpoint allowed
    assert all(v["doubled"] == 2.0 * v["id"] for _, v, _ in output)
