"""Stop with a savepoint, then upgrade: aggregate state survives a state-compatible change; an
incompatible one falls back to the explicit, logged strategy."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from datamesh import names
from datamesh.flink import FlinkJobs, ProcessorJob
from tests.integration.flink.conftest import Topics, materialize, product, record

pytestmark = pytest.mark.integration

ORDER = [("id", "long"), ("user_id", "string"), ("amount", "long")]
SQL = (
    "SELECT user_id, COUNT(*) AS orders, SUM(amount) AS total\n"
    "FROM `{src}`\nWHERE amount >= 0{extra}\nGROUP BY user_id{group}"
)


def _orders(start: int, n: int) -> list[dict[str, object]]:
    return [{"id": i, "user_id": f"u{i % 3}", "amount": 10} for i in range(start, start + n)]


def test_savepoint_upgrade_keeps_aggregate_state(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    jobs: Callable[..., ProcessorJob],
    caplog: pytest.LogCaptureFixture,
) -> None:
    orders = product(domain, "orders", "processor", record("Order", domain, ORDER))
    topics.create(names.topic(orders))

    def totals(extra: str = "", group: str = "") -> ProcessorJob:
        sql = SQL.format(src=orders.id, extra=extra, group=group)
        p = product(domain, "totals", "processor", inputs=(orders.id,), sql=sql, key=("user_id",))
        return jobs(p, [orders])

    v1 = totals()
    out_topic = v1.output_topic
    assert flink.deploy(v1).action == "started"
    topics.produce(names.topic(orders), orders.value_schema, _orders(0, 30))
    expect_counts(topics, out_topic, 10)

    stopped = flink.stop_with_savepoint(v1.name)
    assert stopped.state == "FINISHED" and stopped.last_savepoint and stopped.last_savepoint.path

    # A state-compatible change (another filter predicate): restored from the savepoint.
    v2 = totals(extra=" AND user_id <> 'blocked'")
    upgraded = flink.deploy(v2)
    assert upgraded.action == "upgraded" and upgraded.running
    assert upgraded.sql_hash != stopped.sql_hash
    topics.produce(names.topic(orders), orders.value_schema, _orders(30, 30))
    expect_counts(topics, out_topic, 20)  # 10 before the upgrade + 10 after: state was kept

    # An incompatible change (another grouping key) while running: explicit strategy, logged.
    v3 = totals(group=", amount")
    with caplog.at_level(logging.WARNING, logger="datamesh.flink"):
        reprocessed = flink.deploy(v3, on_incompatible="reprocess")
    assert reprocessed.action == "reprocessed" and reprocessed.running
    assert "strategy 'reprocess'" in caplog.text
    expect_counts(topics, out_topic, 20)  # rebuilt from the beginning of the input


def expect_counts(topics: Topics, topic: str, n: int) -> None:
    def done(messages: list[object]) -> bool:
        table = materialize(messages, ("user_id",))  # type: ignore[arg-type]
        return sorted((k[0], v["orders"]) for k, v in table.items()) == [
            (f"u{i}", n) for i in range(3)
        ]

    topics.read(topic, done, timeout_s=90)
