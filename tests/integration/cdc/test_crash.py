"""At least once: ``kill -9`` during a 100,000-row load loses nothing (duplicates allowed)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest

from tests.integration.cdc.conftest import (
    DOMAIN,
    RunningConnector,
    SourceDb,
    TopicReader,
    latest_per_key,
)

pytestmark = pytest.mark.integration

ROWS = 100_000
BATCH = 2_000


def _load(db: SourceDb, table: str, killed: threading.Event, done: threading.Event) -> None:
    """Insert ROWS rows in batches; update and delete some of the previous batch each time.

    Half-way it waits for the test to kill the connector, so the crash always lands inside
    the load (with a backlog in flight) and the second half is written while it is down.
    """
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            for start in range(0, ROWS, BATCH):
                if start == ROWS // 2:
                    killed.wait(timeout=60)
                cur.execute(
                    f"INSERT INTO {table} SELECT g, md5(g::text), 0 FROM generate_series(%s, %s) g",
                    (start + 1, start + BATCH),
                )
                cur.execute(
                    f"UPDATE {table} SET n = n + 1, val = 'u' || val "
                    "WHERE id BETWEEN %s AND %s AND id %% 7 = 0",
                    (start - BATCH, start),
                )
                cur.execute(
                    f"DELETE FROM {table} WHERE id BETWEEN %s AND %s AND id %% 13 = 0",
                    (start - BATCH, start),
                )
                conn.commit()
    finally:
        conn.close()
        done.set()


def test_kill_9_during_load_then_restart_loses_nothing(
    source_db: SourceDb, connector: Callable[..., RunningConnector], reader: TopicReader
) -> None:
    table = f"public.load_{uuid.uuid4().hex[:8]}"
    source_db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, val text, n int)")
    source_db.sql(f"ALTER TABLE {table} REPLICA IDENTITY FULL")
    run = connector((table,), snapshot="never").start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    killed, done = threading.Event(), threading.Event()
    writer = threading.Thread(target=_load, args=(source_db, table, killed, done), daemon=True)
    writer.start()
    run.wait_status(lambda s: s["events_acked"] >= 30_000, "30,000 events in Kafka")
    run.kill9()
    killed.set()
    assert not done.is_set()
    run.start()  # same slot, same status file: resumes from the slot's confirmed position
    writer.join(timeout=120)
    assert done.is_set(), "the load did not finish"
    status = run.wait_caught_up(source_db, timeout_s=120)
    assert status["retries"] <= 3 and status["state"] == "streaming"

    events = reader.read(f"{DOMAIN}.{table}", timeout_s=60)
    table_rows = {
        i: {"id": i, "val": v, "n": n} for i, v, n in source_db.sql(f"SELECT * FROM {table}")
    }
    assert len(table_rows) > 90_000
    assert latest_per_key(events) == table_rows
