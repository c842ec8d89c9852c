"""Flink upgrades with a way back (issue 12, item 4): an upgrade returns once the new job ran its
first checkpoint after the restore; a new job failing at runtime on real data is cancelled, the
previous deployment runs again from the same savepoint, the asset fails naming the cause, and
every order written before, during and after the failed upgrade is counted exactly once."""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg
import pytest

from datamesh import names
from datamesh.flink import FlinkJobs, JobSettings, ProcessorJob, UpgradeFailed, record
from datamesh.flink.first_checkpoint import all_tasks_running
from datamesh.specs.product import DataProduct
from mesh_assets import build_assets
from resources import resources_for
from tests.integration.flink.conftest import Topics, product, wait_for
from tests.integration.flink.conftest import record as avro_record
from tests.integration.flink.test_upgrade import ORDER, SQL, _orders, expect_counts

pytestmark = pytest.mark.integration

# Valid for the planner, fails on every order at runtime: Flink 2.2.1 throws
# java.lang.NumberFormatException: For input string: 'u0'. Invalid character found.
FAILS_ON_DATA = " AND CAST(user_id AS INT) >= 0"
MIN_PAUSE = "execution.checkpointing.min-pause"
RUNNING = re.compile(r"RUNNING after ([\d.]+)s; waiting for its first checkpoint")
PROVEN = re.compile(r"first checkpoint (\d+) completed ([\d.]+)s after its submission")


def _declare(domain: str, topics: Topics) -> tuple[DataProduct, Callable[[str], DataProduct]]:
    orders = product(domain, "orders", "processor", avro_record("Order", domain, ORDER))
    topics.create(names.topic(orders))

    def totals(extra: str) -> DataProduct:
        sql = SQL.format(src=orders.id, extra=extra, group="")
        p = product(domain, "totals", "processor", inputs=(orders.id,), sql=sql, key=("user_id",))
        return dataclasses.replace(p, flink={"checkpoint_interval": "1s"})

    return orders, totals


def _materialize(*products: DataProduct) -> dg.ExecuteInProcessResult:
    """Materialize the last product's asset as the platform does (its inputs are external)."""
    key = dg.AssetKey(names.asset_key_path(products[-1]))
    [asset] = [a for a in build_assets(products) if getattr(a, "key", None) == key]
    return dg.materialize([asset], resources=resources_for(), raise_on_error=False)


@contextmanager
def _ordering(topics: Topics, orders: DataProduct, first_id: int) -> Iterator[list[int]]:
    """Produce one order per user every 0.1 s while the block runs; yields the count of
    rounds so far (each round adds one order to every user's count)."""
    rounds = [0]
    stop = threading.Event()
    errors: list[BaseException] = []
    own = Topics(topics.conn)  # its own producer: the test's one is not shared across threads

    def produce() -> None:
        try:
            while not stop.is_set():
                start = first_id + 3 * rounds[0]
                own.produce(names.topic(orders), orders.value_schema, _orders(start, 3))
                rounds[0] += 1
                time.sleep(0.1)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        yield rounds
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors


def test_an_upgrade_failing_at_runtime_runs_the_previous_job_again_from_the_savepoint(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    jobs: Callable[..., ProcessorJob],
    caplog: pytest.LogCaptureFixture,
) -> None:
    orders, totals = _declare(domain, topics)
    v1 = totals("")
    job = jobs(v1, [orders])  # the job the asset deploys, cancelled after the test
    name = job.name
    assert _materialize(orders, v1).success
    first = flink.status(name)
    topics.produce(names.topic(orders), orders.value_schema, _orders(0, 30))
    expect_counts(topics, job.output_topic, 10)

    with _ordering(topics, orders, first_id=30) as rounds:
        wait_for(lambda: rounds[0] >= 10, 30, "orders produced before the upgrade")
        began = time.monotonic()
        with caplog.at_level(logging.INFO, logger="datamesh.flink"):
            result = _materialize(orders, totals(FAILS_ON_DATA))
        failed_s = time.monotonic() - began
        during = rounds[0]
        wait_for(lambda: rounds[0] >= during + 20, 30, "orders produced after the upgrade")
    print(f"failed upgrade, rolled back and running again in {failed_s:.1f}s")

    # The materialization failed, naming the runtime cause and the savepoint the old job runs from.
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    data = failure.step_failure_data.user_failure_data
    assert data is not None and data.description is not None
    meta = {k: str(v.value) for k, v in data.metadata.items()}
    savepoint = meta["restored_from"]
    assert "java.lang.NumberFormatException: For input string: 'u" in meta["cause"]
    assert f"upgrade of job {name} failed" in data.description
    assert meta["cause"] in data.description
    assert f"runs again as job {meta['job_id']}, restored from {savepoint}" in data.description
    assert "failed before its first checkpoint" in caplog.text  # the log says it too

    # The failed job was cancelled; the previous deployment runs again from that savepoint.
    assert flink.jm.get(f"/jobs/{meta['failed_job_id']}")["state"] == "CANCELED"
    now = flink.status(name)
    assert now.running and now.job_id == meta["job_id"] != first.job_id
    assert now.sql_hash == first.sql_hash
    restored = flink.jm.get(f"/jobs/{now.job_id}/checkpoints")["latest"]["restored"]
    assert restored["external_path"] == savepoint and restored["is_savepoint"]
    rec = record.load(name)
    assert rec is not None and (rec.job_id, rec.sql_hash) == (now.job_id, first.sql_hash)
    assert rec.savepoint is not None and rec.savepoint.path == savepoint

    # Counts continue from the savepoint: the 10 per user from before, then every round.
    expect_counts(topics, job.output_topic, 10 + rounds[0])


def test_a_new_job_failing_once_it_runs_is_caught_before_its_first_checkpoint(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    jobs: Callable[..., ProcessorJob],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No input arrives while the new job starts, so it reaches RUNNING with every task; orders
    written then make it fail. A minimum pause of a whole interval puts its first checkpoint
    20 s after the start (Flink's first trigger comes between the pause and the interval), so
    only the wait for that checkpoint can catch the failure."""
    slow = JobSettings(checkpoint_interval_ms=20_000, extra=((MIN_PAUSE, "20 s"),))
    orders = product(domain, "orders", "processor", avro_record("Order", domain, ORDER))
    topics.create(names.topic(orders))

    def totals(extra: str) -> ProcessorJob:
        sql = SQL.format(src=orders.id, extra=extra, group="")
        p = product(domain, "totals", "processor", inputs=(orders.id,), sql=sql, key=("user_id",))
        return jobs(p, [orders], settings=slow)

    v1 = totals("")
    first = flink.deploy(v1)
    topics.produce(names.topic(orders), orders.value_schema, _orders(0, 30))
    expect_counts(topics, v1.output_topic, 10)

    seen: list[str] = []
    errors: list[BaseException] = []

    def order_once_it_runs() -> None:
        try:
            seen.append(
                wait_for(
                    lambda: _new_job_running(flink, v1.name, first.job_id),
                    120,
                    "the new job RUNNING",
                )
            )
            topics.produce(names.topic(orders), orders.value_schema, _orders(30, 30))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    watcher = threading.Thread(target=order_once_it_runs, daemon=True)
    watcher.start()
    # "fail" (the change is state-compatible) skips from-offsets' wait for a 20 s commit.
    with (
        caplog.at_level(logging.INFO, logger="datamesh.flink"),
        pytest.raises(UpgradeFailed) as failed,
    ):
        flink.deploy(totals(FAILS_ON_DATA), on_incompatible="fail")
    watcher.join(60)
    assert not errors, errors
    assert seen == [failed.value.failed_job_id]
    assert f"job {seen[0]} RUNNING after" in caplog.text  # failed after submit saw it RUNNING
    assert "java.lang.NumberFormatException: For input string: 'u" in failed.value.cause

    now = flink.status(v1.name)
    assert now.running and now.job_id == failed.value.running_job_id != first.job_id
    assert now.sql_hash == first.sql_hash
    topics.produce(names.topic(orders), orders.value_schema, _orders(60, 30))
    expect_counts(topics, v1.output_topic, 30)  # 10 before, 10 the failed job failed on, 10 after


def _new_job_running(flink: FlinkJobs, name: str, old_id: str | None) -> str | None:
    """The id of a job called ``name`` other than ``old_id`` with every task RUNNING."""
    new = [j for j in flink.jm.jobs() if j.name == name and j.job_id != old_id]
    running = [j for j in new if j.state == "RUNNING"]
    return next(
        (j.job_id for j in running if all_tasks_running(flink.jm.get(f"/jobs/{j.job_id}"))), None
    )


def test_an_upgrade_returns_after_the_first_checkpoint_of_the_new_job(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    jobs: Callable[..., ProcessorJob],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the declared default checkpoint interval (10 s): the figures of the report."""
    orders = product(domain, "orders", "processor", avro_record("Order", domain, ORDER))
    topics.create(names.topic(orders))

    def totals(extra: str) -> ProcessorJob:
        sql = SQL.format(src=orders.id, extra=extra, group="")
        p = product(domain, "totals", "processor", inputs=(orders.id,), sql=sql, key=("user_id",))
        return jobs(p, [orders], settings=JobSettings())

    v1 = totals("")
    flink.deploy(v1)
    topics.produce(names.topic(orders), orders.value_schema, _orders(0, 30))
    expect_counts(topics, v1.output_topic, 10)

    began = time.monotonic()
    with caplog.at_level(logging.INFO, logger="datamesh.flink"):
        upgraded = flink.deploy(totals(" AND user_id <> 'blocked'"))
    total_s = time.monotonic() - began
    assert upgraded.action == "upgraded" and upgraded.running
    restored = flink.jm.get(f"/jobs/{upgraded.job_id}/checkpoints")["latest"]["restored"]
    assert upgraded.last_checkpoint is not None  # it returned once it had checkpointed
    assert upgraded.last_checkpoint.id > restored["id"]  # its own, after the restore
    [running_s] = RUNNING.findall(caplog.text)
    [(checkpoint, proven_s)] = PROVEN.findall(caplog.text)
    assert upgraded.last_checkpoint.id == int(checkpoint)
    print(
        f"upgrade (10 s checkpoint interval): the deploy call returned after {total_s:.1f}s; "
        f"the new job was RUNNING {running_s}s after its submission and completed its first "
        f"checkpoint ({checkpoint}) {proven_s}s after it"
    )
