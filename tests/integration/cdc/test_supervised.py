"""Connectors started by the platform are single and supervised (real stack).

- four CDC products of one database materialized in parallel start exactly one connector;
- ``kill -9`` of the connector: its supervisor starts it again within seconds, the restart is
  reported, and every row committed meanwhile reaches the topic.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from datamesh.cdc import running
from datamesh.cdc.catalog import parse_lsn
from datamesh.cdc.config import ConnectorConfig
from datamesh.control import connectors
from resources.cdc import CdcResource
from tests.integration.cdc.conftest import DOMAIN, SourceDb, TopicReader, wait_for

pytestmark = pytest.mark.integration


def _processes(marker: str) -> list[psutil.Process]:
    """Live processes whose command line contains ``marker``."""
    out = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if marker in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            out.append(proc)
    return out


def _connector_processes(cfg: ConnectorConfig) -> list[psutil.Process]:
    return [
        p
        for p in _processes(f"--slot {cfg.slot}")
        if "datamesh.cdc.supervisor" not in " ".join(p.cmdline())
    ]


@pytest.fixture
def platform_config(endpoints: dict[str, str], source_db: SourceDb) -> Iterator[Any]:
    """Factory: the config the platform derives for ``tables`` of ``source_db``; the connector
    is stopped before the database is dropped (else its supervisor would restart it)."""
    made: list[ConnectorConfig] = []

    def make(*tables: str) -> ConnectorConfig:
        spec = connectors.ConnectorSpec(DOMAIN, source_db.name, tuple(sorted(tables)))
        cfg = connectors.config(
            spec, endpoints["postgres"], endpoints["kafka"], endpoints["schema_registry"]
        )
        cfg = dataclasses.replace(cfg, heartbeat_s=0.5, status_interval_s=0.2)
        made.append(cfg)
        return cfg

    yield make
    for cfg in made:
        running.stop(cfg.name)


def _tables(db: SourceDb, n: int) -> list[str]:
    tables = [f"public.t{i}" for i in range(n)]
    for t in tables:
        db.sql(f"CREATE TABLE {t} (id int PRIMARY KEY, val text)")
        db.sql(f"ALTER TABLE {t} REPLICA IDENTITY FULL")
    return tables


def test_parallel_materializations_start_one_connector(
    source_db: SourceDb, platform_config: Any
) -> None:
    tables = _tables(source_db, 4)
    cfg = platform_config(*tables)
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:  # four assets' steps at once
        statuses = list(pool.map(lambda _: running.ensure_running(cfg), tables))
    print(f"4 parallel ensure_running: {time.monotonic() - start:.1f}s")

    assert {s["state"] for s in statuses} == {"streaming"}
    assert len({s["pid"] for s in statuses}) == 1, statuses
    (proc,) = _connector_processes(cfg)
    assert proc.pid == statuses[0]["pid"] == running.pid_of(cfg.name)
    home = running.workdir(cfg.name)
    assert len(_processes(f"datamesh.cdc.supervisor {home}")) == 1
    assert proc.parent().pid == _processes(f"datamesh.cdc.supervisor {home}")[0].pid
    active = "SELECT count(*) FROM pg_replication_slots WHERE database = %s AND active"
    assert source_db.sql(active, (source_db.name,)) == [(1,)]
    # and a later materialization finds it too
    assert running.ensure_running(cfg)["pid"] == proc.pid


def _insert(db: SourceDb, table: str, ids: list[int], stop: threading.Event) -> None:
    """One row per transaction, until ``stop``; the committed ids go to ``ids``."""
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            i = 0
            while not stop.is_set():
                i += 1
                cur.execute(f"INSERT INTO {table} VALUES (%s, 'v')", (i,))
                conn.commit()
                ids.append(i)
                time.sleep(0.002)
    finally:
        conn.close()


def test_kill_9_restarts_the_connector_and_loses_nothing(
    source_db: SourceDb, platform_config: Any, reader: TopicReader
) -> None:
    (table,) = _tables(source_db, 1)
    cfg = platform_config(table)
    first = running.ensure_running(cfg)["pid"]
    ids: list[int] = []
    stop = threading.Event()
    writer = threading.Thread(target=_insert, args=(source_db, table, ids, stop), daemon=True)
    writer.start()
    try:
        wait_for(lambda: len(ids) > 300, 30, "rows being written")
        psutil.Process(first).kill()  # kill -9 mid-load
        killed = time.monotonic()

        def back() -> dict[str, Any] | None:
            s = running.status(cfg.name) or {}
            pid = running.pid_of(cfg.name)
            ok = pid not in (None, first) and s.get("pid") == pid and s["state"] == "streaming"
            return s if ok else None

        status = wait_for(back, 15, "the connector to stream again")
        took = time.monotonic() - killed
        print(f"streaming again {took:.1f}s after kill -9")
        assert took < 10
        wait_for(lambda: len(ids) > 600, 30, "more rows after the restart")
    finally:
        stop.set()
        writer.join(timeout=10)

    assert status["connector_restarts"] == 1
    assert status["connector_last_exit"] == "killed by SIGKILL"
    product = SimpleNamespace(source=SimpleNamespace(schema="public", table=table.split(".")[1]))
    meta = CdcResource.metadata(product, status)  # type: ignore[arg-type]
    assert meta["connector_restarts"] == 1 and meta["connector_last_exit"] == "killed by SIGKILL"
    line = running.describe(cfg.name)  # what `mesh cdc status` prints
    assert line == "supervisor running; restarts 1 (last: killed by SIGKILL)", line

    target = source_db.wal_lsn()
    wait_for(
        lambda: parse_lsn((running.status(cfg.name) or {}).get("confirmed_lsn")) >= target,
        60,
        "the connector to catch up",
    )
    events = reader.read(f"{DOMAIN}.{table}", timeout_s=60)
    seen = {v["after"]["id"] for _, v in events if v is not None and v["after"]}
    missing = set(ids) - seen
    assert not missing, f"{len(missing)} of {len(ids)} rows lost, e.g. {sorted(missing)[:10]}"
