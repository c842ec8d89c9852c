"""Flink state survives a JobManager restart, and an incompatible change applies the declared
``on_incompatible`` strategy — never a silent empty restart (issue 11, item 2)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from datamesh import names
from datamesh.flink import FlinkJobs, JobStateIncompatible, ProcessorJob, offsets, record
from datamesh.specs.product import DataProduct
from datamesh.stack.flink import restart_cluster
from resources.flink import job_log_line, status_metadata
from tests.integration.flink.conftest import Topics, product, wait_for
from tests.integration.flink.conftest import record as avro_record
from tests.integration.flink.test_upgrade import ORDER, SQL, _orders, expect_counts

pytestmark = pytest.mark.integration

Totals = Callable[..., ProcessorJob]


def _setup(
    domain: str, topics: Topics, jobs: Callable[..., ProcessorJob]
) -> tuple[DataProduct, Totals]:
    orders = product(domain, "orders", "processor", avro_record("Order", domain, ORDER))
    topics.create(names.topic(orders))

    def totals(extra: str = "", group: str = "", total: str = "SUM(amount)") -> ProcessorJob:
        sql = SQL.format(src=orders.id, extra=extra, group=group).replace("SUM(amount)", total)
        p = product(domain, "totals", "processor", inputs=(orders.id,), sql=sql, key=("user_id",))
        return jobs(p, [orders])

    return orders, totals


def _orders_of(start: int, n: int, amount: int) -> list[dict[str, object]]:
    return [{"id": i, "user_id": f"u{i % 3}", "amount": amount} for i in range(start, start + n)]


def test_jobmanager_restart_then_upgrade_keeps_aggregate_state(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    jobs: Callable[..., ProcessorJob],
    caplog: pytest.LogCaptureFixture,
) -> None:
    orders, totals = _setup(domain, topics, jobs)
    v1 = totals()
    started = flink.deploy(v1)
    assert started.action == "started"
    topics.produce(names.topic(orders), orders.value_schema, _orders(0, 30))
    expect_counts(topics, v1.output_topic, 10)
    counted_ms = int(time.time() * 1000)

    # Status polling records a checkpoint completed after the counts were output.
    def recorded() -> Any:
        flink.status(v1.name)
        rec = record.load(v1.name)
        return rec and rec.checkpoint and rec.checkpoint.completed_at_ms > counted_ms and rec

    rec = wait_for(recorded, 30, "a recorded checkpoint")
    assert rec.job_id == started.job_id and rec.sql_hash == started.sql_hash

    restart_cluster(crash=True)  # SIGKILL JobManager and TaskManager, start a new cluster
    assert flink.jm.latest(v1.name) is None  # the new JobManager knows nothing of the job
    topics.produce(names.topic(orders), orders.value_schema, _orders(30, 30))

    v2 = totals(extra=" AND user_id <> 'blocked'")  # a state-compatible change
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="datamesh.flink"):
        upgraded = flink.deploy(v2)
    restore_s = time.monotonic() - began
    print(f"deploy after a JobManager restart, restored and RUNNING in {restore_s:.1f}s")
    assert upgraded.action == "upgraded" and upgraded.running
    assert upgraded.restored_from and "/checkpoints/" in upgraded.restored_from
    assert "no longer knows job" in caplog.text
    assert status_metadata(upgraded)["restored_from"] == upgraded.restored_from
    assert status_metadata(upgraded)["on_incompatible"] == "none"
    expect_counts(topics, v1.output_topic, 20)  # 10 before the crash + 10 after: state kept


def test_from_offsets_starts_without_state_from_the_committed_offsets(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    jobs: Callable[..., ProcessorJob],
    caplog: pytest.LogCaptureFixture,
) -> None:
    orders, totals = _setup(domain, topics, jobs)
    v1 = totals()
    flink.deploy(v1)
    topics.produce(names.topic(orders), orders.value_schema, _orders_of(0, 30, 10))
    expect_counts(topics, v1.output_topic, 10)
    before = _end_offset(topics, v1.output_topic)

    v3 = totals(group=", amount")  # another grouping key: the aggregate's state cannot map
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="datamesh.flink"):
        fresh = flink.deploy(v3, on_incompatible="from-offsets")
    deploy_s = time.monotonic() - began
    assert fresh.running and fresh.on_incompatible == "from-offsets" and not fresh.restored_from
    assert status_metadata(fresh)["on_incompatible"] == "from-offsets"
    assert "on_incompatible 'from-offsets' applied" in job_log_line(fresh)
    assert "java.lang.IllegalStateException thrown by org.apache.flink.runtime.checkpoint" in (
        caplog.text
    )
    assert "on_incompatible strategy 'from-offsets'" in caplog.text

    assert "has no committed offsets" not in caplog.text
    topic = names.topic(orders)
    assert offsets.uncommitted(flink.conn, v3.name, [topic]) == []

    topics.produce(topic, orders.value_schema, _orders_of(30, 30, 5))
    messages = topics.read(
        v1.output_topic,
        lambda m: len(m) > before and all(v["total"] == 50 for v in _latest(m[before:]).values()),
        timeout_s=90,
    )
    after = [v for _, v, _ in messages[before:] if v is not None]
    reread = [v for v in after if v["total"] != 5 * v["orders"]]
    print(f"from-offsets: {fresh.action} in {deploy_s:.1f}s, {len(reread)} old orders reread")
    assert fresh.action == "restarted-fresh"
    assert after and not reread  # the fresh job read only what came after the committed offsets
    assert {u: (v["orders"], v["total"]) for u, v in _latest(messages[before:]).items()} == {
        f"u{i}": (10, 50) for i in range(3)
    }


def test_a_group_without_committed_offsets_is_named(flink: FlinkJobs, topics: Topics) -> None:
    """What makes ``from-offsets`` reread an input from its beginning (and say ``reprocessed``):
    its consumer group never committed on it."""
    topic = f"ft{uuid.uuid4().hex[:8]}.orders"
    topics.create(topic)
    assert offsets.uncommitted(flink.conn, "mesh-test-unused", [topic]) == []  # empty: no reread
    topics.produce(topic, None, [b"x"])
    group = f"mesh-test-{uuid.uuid4().hex[:8]}"
    assert offsets.uncommitted(flink.conn, group, [topic]) == [topic]
    assert offsets.wait_committed(flink.conn, group, [topic], timeout_s=0.5) == [topic]


def test_fail_refuses_and_keeps_the_old_job_running(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    jobs: Callable[..., ProcessorJob],
) -> None:
    orders, totals = _setup(domain, topics, jobs)
    v1 = totals()
    flink.deploy(v1)
    topics.produce(names.topic(orders), orders.value_schema, _orders(0, 30))
    expect_counts(topics, v1.output_topic, 10)
    old = flink.status(v1.name)

    # Another accumulator type: the same operators, but their state serializer changed.
    v4 = totals(total="CAST(SUM(CAST(amount AS DOUBLE)) AS BIGINT)")
    with pytest.raises(JobStateIncompatible) as refused:
        flink.deploy(v4, on_incompatible="fail")
    assert refused.value.strategy == "fail"
    assert "on_incompatible 'fail' refused" in str(refused.value)
    assert "runs again" in refused.value.kept

    now = flink.status(v1.name)
    assert now.running and now.sql_hash == old.sql_hash and now.job_id != old.job_id
    topics.produce(names.topic(orders), orders.value_schema, _orders(30, 30))
    expect_counts(topics, v1.output_topic, 20)  # the old job resumed from its savepoint


def _end_offset(topics: Topics, topic: str) -> int:
    """Messages in the (one-partition) topic so far."""
    consumer = Consumer({"bootstrap.servers": topics.conn.bootstrap, "group.id": "mesh-test-end"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        consumer.close()
    return int(high)


def _latest(messages: list[Any]) -> dict[Any, Any]:
    return {k["user_id"]: v for k, v, _ in messages if v is not None}
