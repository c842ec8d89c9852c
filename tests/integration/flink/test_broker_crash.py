"""kill -9 the broker while a CDC connector streams ~1,000 changes/s into a Flink processor, then
`mesh up`: the broker comes back on the same bootstrap address, and every change reaches the CDC
topic and the processor's output within 30 s — clients pointed at the old address (the
connector, the Flink job, a console consumer) reconnect instead of being cut off.

The session's own broker is killed and restarted here (the other components keep running), as
an operator's `mesh up` after a crash would.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from datamesh import names
from datamesh.cdc import supervisor
from datamesh.flink import FlinkJobs, ProcessorJob
from datamesh.process import alive, log_tail
from datamesh.stack import stack, state
from tests.integration.flink.conftest import Topics, product, record, wait_for
from tests.integration.flink.test_cdc_e2e import _await_topic, _start_connector, database

pytestmark = pytest.mark.integration

__all__ = ["database"]  # the fixture, shared with the end-to-end test

RATE_PER_S = 1000
SECONDS = 12
TOTAL = RATE_PER_S * SECONDS
READING = [("id", "long"), ("v", "long")]


def test_broker_killed_under_load_comes_back_on_its_address_and_nothing_is_lost(
    flink: FlinkJobs,
    topics: Topics,
    domain: str,
    database: str,
    jobs: Callable[..., ProcessorJob],
    tmp_path: Path,
) -> None:
    db = psycopg2.connect(database)
    db.autocommit = True
    with db.cursor() as cur:
        cur.execute("CREATE TABLE movies (id bigint PRIMARY KEY, v bigint NOT NULL)")
    pid = _start_connector(database, domain, tmp_path)
    try:
        source = product(
            domain, "movies", "cdc", record("Reading", domain, READING), key=("id",), table="movies"
        )
        sql = f"SELECT id, v * 2 AS doubled FROM `{source.id}`"
        doubled = product(domain, "doubled", "processor", inputs=(source.id,), sql=sql, key=("id",))
        _await_topic(topics, names.topic(source), tmp_path)
        job = jobs(doubled, [source])
        assert flink.deploy(job).running

        writer = threading.Thread(target=_write, args=(database,))
        writer.start()
        time.sleep(SECONDS / 3)  # mid-load
        before = state.load()["kafka"]
        os.kill(before.pids[0], signal.SIGKILL)
        wait_for(lambda: not alive(before.pids[0]), 30, "the broker to die")
        lines: list[str] = []
        after = stack.up(progress=lines.append)["kafka"]
        restarted = time.monotonic()
        assert after.pids != before.pids
        assert after.endpoint == before.endpoint, lines
        assert after.ports == before.ports
        writer.join()

        everything = set(range(TOTAL))
        left = max(1.0, 30 - (time.monotonic() - restarted))
        cdc = topics.consume(
            names.topic(source), _covers(everything, lambda k, v: k and v and k["id"]), left
        )
        seen = {k["id"] for k, v, _ in cdc if k and v}
        if not seen >= everything:
            status = supervisor.read_status(tmp_path / "cdc-status.json") or {}
            acked = {k: status.get(k) for k in ("state", "events_sent", "events_acked", "retries")}
            raise AssertionError(
                f"{len(everything - seen)} changes missing {time.monotonic() - restarted:.0f} s "
                f"after the restart (first {min(everything - seen)}); connector {acked}\n"
                f"broker log: {log_tail(Path(after.log), 30)}\n"
                f"connector log: {log_tail(tmp_path / 'cdc.log', 15)}\nup: {lines}"
            )
        left = max(1.0, 30 - (time.monotonic() - restarted))
        output = topics.read(
            names.topic(doubled), _covers(everything, lambda k, v: v and v["id"]), left
        )
        values = {v["id"]: v["doubled"] for _, v, _ in output if v}
        assert all(values[i] == 2 * (i % 97) for i in everything)
        assert time.monotonic() - restarted <= 30 + 5  # reads stop at their deadline
        assert flink.status(job.name).running
    finally:
        supervisor.stop_connector(pid, timeout_s=20)
        db.close()


def _covers(
    wanted: set[int], id_of: Callable[[Any, Any], int | None]
) -> Callable[[list[tuple[Any, Any, Any]]], bool]:
    """``until`` for Topics.consume: True once the messages hold every id in ``wanted``.
    Incremental — it looks at each message once (a set built over all messages on every poll
    is quadratic: 12,000 messages took longer than the 30 s under test)."""
    seen: set[int] = set()
    looked = 0

    def until(messages: list[tuple[Any, Any, Any]]) -> bool:
        nonlocal looked
        for key, value, _ in messages[looked:]:
            found = id_of(key, value)
            if found is not None:
                seen.add(found)
        looked = len(messages)
        return seen >= wanted

    return until


def _write(dsn: str) -> None:
    """TOTAL inserts at about RATE_PER_S, in batches of 100 committed every 0.1 s."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for start in range(0, TOTAL, 100):
                began = time.monotonic()
                cur.execute(
                    "INSERT INTO movies (id, v) SELECT i, i %% 97 FROM generate_series(%s, %s) i",
                    (start, start + 99),
                )
                time.sleep(max(0.0, 0.1 - (time.monotonic() - began)))
    finally:
        conn.close()
