"""DBLog snapshots: under concurrent writes, on demand for a key range, resumed after a crash."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable

import pytest

from datamesh.cdc.errors import SnapshotFilterRefused
from datamesh.cdc.snapshot_filter import plan_where
from tests.integration.cdc.conftest import (
    DOMAIN,
    RunningConnector,
    SourceDb,
    TopicReader,
    latest_per_key,
)

pytestmark = pytest.mark.integration


def _filled_table(db: SourceDb, rows: int, identity: str = "FULL") -> str:
    table = f"public.snap_{uuid.uuid4().hex[:8]}"
    db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, val text, n int)")
    db.sql(f"ALTER TABLE {table} REPLICA IDENTITY {identity}")
    db.sql(f"INSERT INTO {table} SELECT g, md5(g::text), 0 FROM generate_series(1, %s) g", (rows,))
    db.sql(f"ANALYZE {table}")
    return table


def _table_state(db: SourceDb, table: str) -> dict[int, dict[str, object]]:
    return {i: {"id": i, "val": v, "n": n} for i, v, n in db.sql(f"SELECT * FROM {table}")}


def _random_writes(db: SourceDb, table: str, rows: int, stop: threading.Event) -> None:
    """Small transactions of updates, deletes and re-inserts on random keys until ``stop``."""
    rng = random.Random(7)
    conn = db.connect()
    with conn.cursor() as cur:
        while not stop.is_set():
            for _ in range(20):
                key = rng.randint(1, rows)
                action = rng.random()
                if action < 0.6:
                    cur.execute(
                        f"UPDATE {table} SET n = n + 1, val = %s WHERE id = %s",
                        (uuid.uuid4().hex, key),
                    )
                elif action < 0.85:
                    cur.execute(f"DELETE FROM {table} WHERE id = %s", (key,))
                else:
                    cur.execute(
                        f"INSERT INTO {table} VALUES (%s, 'back', -1) "
                        "ON CONFLICT (id) DO UPDATE SET n = -1",
                        (key,),
                    )
            conn.commit()
    conn.close()


@pytest.mark.parametrize("identity", ["FULL", "DEFAULT"])
def test_snapshot_under_concurrent_updates_and_deletes_converges(
    source_db: SourceDb,
    connector: Callable[..., RunningConnector],
    reader: TopicReader,
    identity: str,
) -> None:
    """The window needs only keys: key-only deletes and image-less updates (DEFAULT) drop the
    chunk's rows they touch like full images do."""
    rows = 20_000
    table = _filled_table(source_db, rows, identity)
    stop = threading.Event()
    writer = threading.Thread(target=_random_writes, args=(source_db, table, rows, stop))
    writer.start()
    try:
        run = connector((table,), chunk_size=500, snapshot_pause_s=0.05).start()
        status = run.wait_snapshot_done(table, timeout_s=120)
    finally:
        stop.set()
        writer.join()
    # the snapshot did the bulk of the work (a quarter of the concurrent writes are deletes, and
    # on a loaded machine the snapshot is slower, so more rows go before their chunk is read);
    # the convergence below is what proves it right
    assert status["snapshot"][table]["rows_done"] >= rows * 0.5
    run.wait_caught_up(source_db)
    events = reader.read(f"{DOMAIN}.{table}")
    ops = {v["op"] for _, v in events if v is not None}
    assert {"r", "u", "d"} <= ops, "writes must have overlapped the snapshot"
    assert latest_per_key(events) == _table_state(source_db, table)
    assert f"snapshot {table}: " in run.log.read_text() and ") done" in run.log.read_text()


def test_on_demand_snapshot_of_a_key_range(
    source_db: SourceDb, connector: Callable[..., RunningConnector], reader: TopicReader
) -> None:
    table = _filled_table(source_db, 1_000)
    run = connector((table,), snapshot="never", chunk_size=30).start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    cfg = run.config
    request = [
        sys.executable,
        "-m",
        "datamesh.cdc",
        "snapshot",
        "--dsn",
        cfg.dsn,
        "--database",
        cfg.database,
        "--domain",
        cfg.domain,
        "--table",
        table,
    ]
    out = subprocess.run([*request, "--where", "id <= 100"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    status = run.wait_snapshot_done(table)
    assert status["snapshot"][table] == {
        "status": "done",
        "rows_done": 100,
        "total_estimate": 100,
        "where": "id <= 100",
    }
    run.wait_caught_up(source_db)
    events = reader.read(f"{DOMAIN}.{table}")
    assert [k["id"] for k, _ in events] == list(range(1, 101))
    flags = [v["source"]["snapshot"] for _, v in events]
    assert set(flags[:-1]) == {"true"} and flags[-1] == "last"
    refused = {
        "no_such_column > 1": "not a valid filter",
        "n + 1": "argument of WHERE must be type boolean",
        f"id <= 100; DROP TABLE {table}": "`;` ends a statement",
        f"TRUNCATE {table}": "a TRUNCATE statement is not an expression",
    }
    for where, problem in refused.items():
        bad = subprocess.run([*request, "--where", where], capture_output=True, text=True)
        assert bad.returncode == 2 and problem in bad.stderr, (where, bad.stderr)
        assert "--where" in bad.stderr and "fix:" in bad.stderr
    assert source_db.sql(f"SELECT count(*) FROM {table}") == [(1_000,)]
    assert run.status()["snapshot"][table]["where"] == "id <= 100", "nothing was recorded"


def test_the_database_check_of_a_filter_cannot_write(source_db: SourceDb) -> None:
    """Past the parser, a second statement still meets a READ ONLY transaction."""
    table = _filled_table(source_db, 10)
    conn = source_db.connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            plan_where(cur, table, "id < 5")
            with pytest.raises(SnapshotFilterRefused, match="read-only transaction"):
                plan_where(cur, table, f"true); DROP TABLE {table}; SELECT (1")
            with pytest.raises(SnapshotFilterRefused, match="must be type boolean"):
                plan_where(cur, table, "id")
            cur.execute("SELECT current_setting('transaction_read_only')")
            assert cur.fetchone() == ("off",), "the check's transaction was rolled back"
    finally:
        conn.close()
    assert source_db.sql(f"SELECT count(*) FROM {table}") == [(10,)]


def test_snapshot_resumes_after_kill_9(
    source_db: SourceDb, connector: Callable[..., RunningConnector], reader: TopicReader
) -> None:
    rows = 30_000
    table = _filled_table(source_db, rows)
    run = connector((table,), chunk_size=1_000, snapshot_pause_s=0.1).start()
    run.wait_status(
        lambda s: s["snapshot"].get(table, {}).get("rows_done", 0) >= 5_000,
        "5,000 snapshot rows persisted",
    )
    run.kill9()
    first_log = run.log.read_text()
    run.start()
    status = run.wait_snapshot_done(table, timeout_s=120)
    resumed = run.log.read_text()[len(first_log) :]
    assert f"snapshot {table}: from row 0 " not in resumed
    assert f"snapshot {table}: from row " in resumed
    assert status["snapshot"][table]["rows_done"] == rows
    run.wait_caught_up(source_db)
    events = reader.read(f"{DOMAIN}.{table}")
    assert latest_per_key(events) == _table_state(source_db, table)
