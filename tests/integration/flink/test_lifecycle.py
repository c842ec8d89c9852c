"""Deploy / status / idempotence / cancel of a projection+filter processor over an event topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from datamesh import names
from datamesh.flink import FlinkJobs, JobSettings, ProcessorJob
from tests.integration.flink.conftest import Topics, product, record, wait_for

pytestmark = pytest.mark.integration

EVENTS = [("id", "long"), ("user_id", "string"), ("amount", "long"), ("note", ["null", "string"])]


def test_deploy_is_idempotent_reports_status_and_cancels(
    flink: FlinkJobs, topics: Topics, domain: str, jobs: Callable[..., ProcessorJob]
) -> None:
    events = product(domain, "events", "processor", record("Event", domain, EVENTS))
    topics.create(names.topic(events))
    big = product(
        domain,
        "big_spenders",
        "processor",
        None,
        inputs=(events.id,),
        sql=f"SELECT id, UPPER(user_id) AS user_id, amount\nFROM `{events.id}`\n"
        "WHERE amount >= 100",
    )
    job = jobs(big, [events])

    first = flink.deploy(job)
    assert first.action == "started" and first.state == "RUNNING" and first.sql_hash
    again = flink.deploy(job)
    assert again.action == "unchanged" and again.job_id == first.job_id

    values: list[Any] = [
        {"id": i, "user_id": f"u{i % 3}", "amount": i * 10, "note": None} for i in range(20)
    ]
    topics.produce(names.topic(events), events.value_schema, values)
    out = topics.read(names.topic(big), lambda m: len(m) >= 10)
    assert [v for _, v, _ in out] == [
        {"id": i, "user_id": f"U{i % 3}", "amount": i * 10} for i in range(10, 20)
    ]
    # the derived output schema is registered under <topic>-value
    latest = topics.registry.get_latest_version(names.value_subject(names.topic(big)))
    schema_str = latest.schema.schema_str
    assert schema_str is not None and '"name": "BigSpenders"' in schema_str.replace('":"', '": "')

    status = wait_for(lambda: (s := flink.status(job.name)).records_out >= 10 and s, 30, "counters")
    assert status.running and status.records_in == 20 and status.restarts == 0
    assert wait_for(lambda: flink.status(job.name).last_checkpoint, 30, "a checkpoint")

    cancelled = flink.cancel(job.name)
    assert cancelled.state == "CANCELED" and cancelled.action == "cancelled"


def test_exactly_once_writes_through_kafka_transactions(
    flink: FlinkJobs, topics: Topics, domain: str, jobs: Callable[..., ProcessorJob]
) -> None:
    events = product(domain, "payments", "processor", record("Payment", domain, EVENTS))
    topics.create(names.topic(events))
    sql = f"SELECT id, user_id, amount FROM `{events.id}` WHERE amount > 0"
    paid = product(domain, "paid", "processor", inputs=(events.id,), sql=sql, key=("id",))
    job = jobs(paid, [events], JobSettings(checkpoint_interval_ms=1000, delivery="exactly-once"))
    assert flink.deploy(job).running

    values: list[Any] = [{"id": i, "user_id": "u", "amount": i, "note": None} for i in range(10)]
    topics.produce(names.topic(events), events.value_schema, values)
    # read_committed: records appear once the checkpoint commits their transaction
    out = topics.read(names.topic(paid), lambda m: len(m) >= 9)
    assert [(k, v["id"]) for k, v, _ in out] == [({"id": i}, i) for i in range(1, 10)]
